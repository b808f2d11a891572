// Package devtest holds test doubles shared by the device model tests: a
// clock the test moves by hand and an interrupt line that records what it
// was driven to. It is internal to devices/ and used only by tests.
package devtest

import "sync"

// Clock is a devices.Clock whose time only changes when the test says so.
type Clock struct {
	mu  sync.Mutex
	now uint64
}

// Now returns the current fake time in nanoseconds.
func (c *Clock) Now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t nanoseconds. Moving it backwards is a test bug.
func (c *Clock) Set(t uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t < c.now {
		panic("devtest: clock moved backwards")
	}
	c.now = t
}

// Advance moves the clock forward by d nanoseconds.
func (c *Clock) Advance(d uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

// Line is a devices.IRQLine that remembers its level and counts rising
// edges, which is what an edge-triggered interrupt controller would latch.
type Line struct {
	mu     sync.Mutex
	level  bool
	rising int
	sets   int
}

// Set implements devices.IRQLine.
func (l *Line) Set(level bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if level && !l.level {
		l.rising++
	}
	l.level = level
	l.sets++
}

// Level reports the last level the line was driven to.
func (l *Line) Level() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

// Rising reports how many low-to-high transitions the line has seen.
func (l *Line) Rising() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rising
}

// ResetCount forgets the counted edges but keeps the level.
func (l *Line) ResetCount() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rising = 0
	l.sets = 0
}
