# virtio-net throughput (issue 4): TCP through QEMU's user network, the
# Debian guest booted directly by QEMU against the same guest inside the
# hypervisor on the switch bridged to the host NIC (tools/netbench).
#
#   make bench-net                 the section 50-net.md of docs/bench.md (part of make bench)
#
# NET_BENCH_RUNS successful runs of each variant, NET_BENCH_MIB MiB each way.

NET_BENCH_RUNS ?= 3
NET_BENCH_MIB ?= 4

.PHONY: bench-net

bench-net: deps $(OUT)/hv $(BIN)/netbench linux-files
	@mkdir -p $(BENCH_DIR)
	$(BIN)/netbench -image $(OUT)/hv -linux $(LINUX_DIR) -n $(NET_BENCH_RUNS) -mib $(NET_BENCH_MIB) -logs $(OUT)/bench-logs -o $(BENCH_DIR)/50-net.md

BENCH_TARGETS += bench-net
