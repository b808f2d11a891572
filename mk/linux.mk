# The Linux guest's boot files (docs/linux-guest.md): Debian 12's cloud
# kernel and a busybox initramfs, fetched and built under out/linux.
#
#   make linux-files                       out/linux/vmlinuz and out/linux/initramfs.cpio.gz
#   make linux-files LINUX_TEST=FILE       with FILE as the guest's /test script
#   make linux-direct                      the reference: QEMU boots them directly (no hypervisor)
#   make bench-linux                       boot to /init inside the hypervisor vs. directly, in wall
#                                          time and guest instructions ($(BENCH_DIR)/30-linux.md)
#   make test-linux-mttcg                  the two-VM Linux run on QEMU's multi-threaded TCG (opt-in
#                                          hvtest run qemu-linux-pair-svm-mttcg; fails with QEMU 7.2)
#
# Variables:
#   LINUX_TEST     script run as /test in the guest (default: report devices, power off)
#   LINUX_MODULES  modules /init loads, dependencies added (default in tools/mkinitramfs)
#   LINUX_APPEND   kernel command line for linux-direct

LINUX_DIR     := $(OUT)/linux
LINUX_TEST    ?=
LINUX_MODULES ?=
LINUX_APPEND  ?= console=ttyS0 panic=-1

.PHONY: linux-files linux-direct test-linux-mttcg bench-linux

linux-files: $(LINUX_DIR)/vmlinuz $(LINUX_DIR)/initramfs.cpio.gz

# Re-fetching is explicit (rm -r out/linux): a new Debian kernel upload must
# not silently change the guest between a test and its reference run.
$(LINUX_DIR)/vmlinuz $(LINUX_DIR)/kernel-release &:
	$(GO) run ./tools/getkernel -out $(LINUX_DIR)

$(LINUX_DIR)/initramfs.cpio.gz: $(LINUX_DIR)/kernel-release $(wildcard tools/mkinitramfs/*.go tools/mkinitramfs/*.sh) $(LINUX_TEST) FORCE
	$(GO) run ./tools/mkinitramfs -root $(LINUX_DIR)/root -o $@.new \
		$(if $(LINUX_TEST),-test $(LINUX_TEST)) $(if $(LINUX_MODULES),-modules $(LINUX_MODULES))
	$(replace-if-changed)

# QEMU TCG boots the kernel and initramfs with a virtio disk, NIC and
# console on PCI, the way the guest sees them in the hypervisor.
linux-direct: linux-files
	@truncate -s 64M $(LINUX_DIR)/disk.img
	qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
		-kernel $(LINUX_DIR)/vmlinuz -initrd $(LINUX_DIR)/initramfs.cpio.gz \
		-append '$(LINUX_APPEND)' \
		-drive file=$(LINUX_DIR)/disk.img,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0 \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0 -device virtio-serial-pci

# Not in qemu-test: QEMU 7.2's multi-threaded TCG loses the guests'
# translations in about half the runs (docs/testing.md).
test-linux-mttcg: deps $(OUT)/hv $(BIN)/hvtest linux-files
	$(BIN)/hvtest -image $(OUT)/hv -logs $(OUT)/test-logs -run '^qemu-linux-pair-svm-mttcg$$' $(HVTEST_FLAGS)

# The Linux section of docs/bench.md (issue 4): the same kernel and
# initramfs booted directly by QEMU (the reference) and inside the
# hypervisor, alternating, LINUX_BENCH_RUNS successful runs of each in wall
# time (TCG) and in guest instructions (-icount); failed runs are counted
# and retried a few times. About ten minutes with 3 runs.
LINUX_BENCH_RUNS ?= 3

bench-linux: deps $(OUT)/hv $(BIN)/linuxbench linux-files
	@mkdir -p $(BENCH_DIR)
	$(BIN)/linuxbench -image $(OUT)/hv -linux $(LINUX_DIR) -n $(LINUX_BENCH_RUNS) -logs $(OUT)/bench-logs -o $(BENCH_DIR)/30-linux.md

BENCH_TARGETS += bench-linux
