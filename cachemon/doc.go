// Package cachemon estimates, for every vCPU, its share of a shared
// last-level cache (LLC) and its miss-ratio curve (MRC) from nothing but the
// per-vCPU LLC reference and miss counts that common performance counters
// give, and advises which vCPUs should share a cache.
//
// The method follows "Online Cache Modeling for Commodity Multicore
// Processors" (Zhang, West, Waldspurger, Zaroo, 2010): every miss fills a
// line and evicts a victim chosen in proportion to the owners' current
// occupancy (the basic model); an LRU-aware variant lets lines of owners
// that reuse them survive longer. MRCs are assembled online from the
// (occupancy, miss ratio) pairs that co-running produces. docs/cachemon.md
// derives the model and reports its error against a simulated cache.
//
// Boundary: this package is pure arithmetic and bookkeeping. Counters reach
// it through the CounterSource interface, implemented for real hardware by
// package cachemon/pmu; it imports nothing from boot/, svm/ or vmx/ and is
// tested entirely on the host.
package cachemon
