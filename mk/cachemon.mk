# cachemon: validation of the LLC occupancy model and online MRCs against a
# trace-driven shared-cache simulator (docs/cachemon.md).

CACHEMON_TRACES := tools/cachesim/testdata/traces
CACHEMON_PROGRAMS := awk bzip2 cc1 gzip sort sqlite3 xz zstd
CACHEMON_TRACE_FILES := $(foreach p,$(CACHEMON_PROGRAMS),$(CACHEMON_TRACES)/$(p).llct)

.PHONY: bench-cachemon cachemon-traces cachemon-deps test-cachemon

# The traced programs and valgrind come from Debian; a fresh machine has
# only Go, gcc and git. mawk and coreutils are essential packages.
cachemon-deps:
	@command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
	@command -v bzip2 >/dev/null || (apt-get update && apt-get install -y bzip2)
	@command -v xz >/dev/null || (apt-get update && apt-get install -y xz-utils)
	@command -v zstd >/dev/null || (apt-get update && apt-get install -y zstd)
	@command -v sqlite3 >/dev/null || (apt-get update && apt-get install -y sqlite3)
	@command -v mawk >/dev/null || (apt-get update && apt-get install -y mawk)

# The reduced traces are kept in the repository (8 MB) because tracing all
# eight programs under lackey takes about 8 minutes on two cores; a missing
# one is regenerated, and cachemon-traces regenerates them all.
$(CACHEMON_TRACES)/%.llct:
	$(MAKE) --no-print-directory cachemon-deps
	$(GO) run ./tools/cachesim gen -dir $(CACHEMON_TRACES) -only $*

cachemon-traces: cachemon-deps
	$(GO) run ./tools/cachesim gen -dir $(CACHEMON_TRACES) -j 2

# Rewrites the results in docs/cachemon.md and its plots, and leaves a
# summary section for docs/bench.md in $(BENCH_DIR).
bench-cachemon: $(CACHEMON_TRACE_FILES)
	@mkdir -p $(BENCH_DIR)
	$(GO) run ./tools/cachesim bench -traces $(CACHEMON_TRACES) -doc docs/cachemon.md -svg docs/cachemon \
		-summary $(BENCH_DIR)/40-cachemon.md

test-cachemon:
	$(GO) test ./cachemon/... ./tools/cachesim/...

BENCH_TARGETS += bench-cachemon
