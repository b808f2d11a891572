// Package sim is the ground truth for cachemon: a trace-driven simulator of
// set-associative LRU caches, with private per-core levels in front of one
// shared last-level cache, that interleaves several programs' reference
// streams and reports each core's true LLC occupancy over time together
// with exactly the counts a hardware PMU would give. It does not model
// timing, coherence or prefetching; package cachemon must never import it.
package sim

import (
	"fmt"
	"math/bits"
)

// Config describes one set-associative LRU cache.
type Config struct {
	Sets int // a power of two
	Ways int
}

// Lines is the capacity in cache lines.
func (c Config) Lines() int { return c.Sets * c.Ways }

func (c Config) validate() error {
	if c.Sets <= 0 || bits.OnesCount(uint(c.Sets)) != 1 {
		return fmt.Errorf("sim: %d sets is not a positive power of two", c.Sets)
	}
	if c.Ways <= 0 || c.Ways > 64 {
		return fmt.Errorf("sim: %d ways outside 1..64", c.Ways)
	}
	return nil
}

// noOwner marks an invalid way.
const noOwner = -1

// Cache is a set-associative cache with true LRU replacement that remembers
// which core filled each line. Each set is kept in recency order, most
// recent first; with at most a few dozen ways a linear scan is faster than
// any pointer structure.
type Cache struct {
	cfg   Config
	mask  uint64
	tags  []uint64
	owner []int8
	// Occupancy counts the valid lines filled by each core.
	Occupancy []int
}

// NewCache returns an empty cache shared by the given number of cores.
func NewCache(cfg Config, cores int) (*Cache, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cores <= 0 || cores > 127 {
		return nil, fmt.Errorf("sim: %d cores outside 1..127", cores)
	}
	c := &Cache{
		cfg:       cfg,
		mask:      uint64(cfg.Sets - 1),
		tags:      make([]uint64, cfg.Lines()),
		owner:     make([]int8, cfg.Lines()),
		Occupancy: make([]int, cores),
	}
	for i := range c.owner {
		c.owner[i] = noOwner
	}
	return c, nil
}

// Config returns the geometry.
func (c *Cache) Config() Config { return c.cfg }

// Access references key (a line identity, already made unique per address
// space) in set index set&mask on behalf of core; it reports whether the
// reference hit and, on a miss that evicted a valid line, that line's owner
// (otherwise -1).
func (c *Cache) Access(key, set uint64, core int) (hit bool, victimOwner int) {
	base := int(set&c.mask) * c.cfg.Ways
	tags := c.tags[base : base+c.cfg.Ways]
	own := c.owner[base : base+c.cfg.Ways]
	for i := range tags {
		if own[i] == noOwner {
			// Ways fill from the front and are never invalidated, so the
			// first invalid way ends the valid ones.
			break
		}
		if tags[i] == key {
			o := own[i]
			copy(tags[1:i+1], tags[:i])
			copy(own[1:i+1], own[:i])
			tags[0], own[0] = key, o
			return true, -1
		}
	}
	last := c.cfg.Ways - 1
	victimOwner = int(own[last])
	if victimOwner != noOwner {
		c.Occupancy[victimOwner]--
	}
	copy(tags[1:], tags[:last])
	copy(own[1:], own[:last])
	tags[0], own[0] = key, int8(core)
	c.Occupancy[core]++
	return false, victimOwner
}
