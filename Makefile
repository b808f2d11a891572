# hv: build, boot, test and measure the hypervisor.
#
#   make run                     the default VM: Debian's kernel and initramfs, a shell on its console
#   make run KERNEL=F [INITRD=F] [APPEND="..."] [MEM=MiB] [CPUS=n]
#                                that guest as the only VM under QEMU TCG (mk/run-guest.sh)
#   make run ARGS="selftest"     boot out/hv under QEMU with those boot options (Ctrl-A x quits)
#   make test                    gofmt, go vet, staticcheck, host unit tests, then make qemu-test
#   make qemu-test               every emulator run of tools/hvtest (docs/testing.md)
#   make image | iso | pxe       out/hv, out/hv.iso (BIOS+UEFI), out/pxe/ (PXE: iPXE, GRUB for UEFI)
#   make serve-pxe IFACE=eth1 [RANGE=FIRST-LAST]
#                                serve out/pxe to lab servers on IFACE (tools/pxeserver): proxyDHCP
#                                beside the lab's DHCP server, or full DHCP handing out RANGE
#   make bench                   docs/bench.md
#   make deps                    install missing Debian packages (run, test, iso do it too)
#   make clean
#
# Variables:
#   ARGS      kernel command line (boot options) for run, iso and pxe
#   KERNEL, INITRD, APPEND, MEM, CPUS   the guest of run: bzImage or Multiboot/ELF
#             kernel, initrd (a Multiboot kernel's first module), its command
#             line, RAM in MiB, vCPUs (1 to 8, spread over QEMU_SMP host CPUs)
#   CMDLINE   the same for iso and pxe only (defaults to ARGS)
#   MODULES   files the ISO and the PXE directory carry as boot modules, each
#             named by its base name, e.g. MODULES="out/linux/vmlinuz out/linux/initramfs.cpio.gz"
#   IFACE, RANGE         serve-pxe: the interface, and the addresses to hand out
#             (none: proxyDHCP)
#   QEMU_MEM, QEMU_SMP   memory (MiB) and CPUs for run
#   HVTEST_FLAGS         extra flags for tools/hvtest, e.g. HVTEST_FLAGS='-run smp2 -v'
#
# Hooks for mk/*.mk files (every mk/*.mk is included below; append with +=):
#   UNIT_PKGS      packages that `make unit` vets and tests (default ./...)
#   TEST_TARGETS   targets `make test` runs after qemu-test, in order
#   BENCH_TARGETS  targets `make bench` runs after the platform benchmarks; each
#                  writes one Markdown section to $(BENCH_DIR)/NN-name.md, and
#                  docs/bench.md is all sections in name order (00 is the title,
#                  10 the platform; pick 20 and up)
#   DEB_DEPS       NEED:PACKAGE pairs for `make deps`: NEED is a command or an
#                  absolute path the Debian PACKAGE provides
#   CLEAN_FILES    extra paths `make clean` removes

SHELL := /bin/bash
.DEFAULT_GOAL := image

GO        ?= go
# staticcheck comes from the Go module proxy at a fixed version.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
OUT       := out
BIN       := $(OUT)/bin
BENCH_DIR := $(OUT)/bench

ARGS     ?=
KERNEL   ?=
INITRD   ?=
APPEND   ?=
MEM      ?=
CPUS     ?=
CMDLINE  ?= $(ARGS)
MODULES  ?=
IFACE    ?=
RANGE    ?=
QEMU_MEM ?= 512
QEMU_SMP ?= 2
HVTEST_FLAGS ?=

UNIT_PKGS     := ./...
TEST_TARGETS  :=
BENCH_TARGETS :=
CLEAN_FILES   :=
DEB_DEPS := \
	qemu-system-x86_64:qemu-system-x86 \
	/usr/lib/ipxe/qemu/efi-virtio.rom:ipxe-qemu \
	/usr/lib/ipxe/undionly.kpxe:ipxe \
	ip:iproute2 \
	grub-mkimage:grub-common \
	bochs:bochs \
	/usr/share/bochs/BIOS-bochs-latest:bochsbios \
	/usr/share/vgabios/vgabios.bin:vgabios \
	/usr/share/seabios/vgabios-stdvga.bin:seabios \
	/usr/share/ovmf/OVMF.fd:ovmf \
	/usr/lib/grub/i386-pc/multiboot2.mod:grub-pc-bin \
	/usr/lib/grub/x86_64-efi/multiboot2.mod:grub-efi-amd64-bin \
	grub-mkrescue:grub-common \
	xorriso:xorriso \
	mformat:mtools

-include $(sort $(wildcard mk/*.mk))

# The kernel is a stock-Go static ELF whose ELF header page is loaded at
# 0x200000 (text at 0x201000) and whose entry is the 32-bit multiboot entry;
# tools/mkimage checks that shape.
KERNEL_ENV   := CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOEXPERIMENT=norandomizedheapbase64
KERNEL_FLAGS := -trimpath -ldflags '-T 0x201000 -E hv/boot.entry32'

.PHONY: all image iso pxe serve-pxe run test unit qemu-test bench bench-platform deps clean FORCE
all: image

$(OUT) $(BIN) $(BENCH_DIR):
	@mkdir -p $@

# go build decides what is stale, but it rewrites its output every time; so
# build to a temporary file and replace the target only when it changed, and
# the image and ISO are not rebuilt for nothing.
define replace-if-changed
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "built $@"; fi
endef

$(OUT)/hv.elf: FORCE | $(OUT)
	@$(KERNEL_ENV) $(GO) build $(KERNEL_FLAGS) -o $@.new ./cmd/hv
	$(replace-if-changed)

$(BIN)/%: FORCE | $(BIN)
	@$(GO) build -o $@.new ./tools/$*
	$(replace-if-changed)

$(OUT)/hv: $(OUT)/hv.elf $(BIN)/mkimage
	$(BIN)/mkimage -o $@ $<

# The command line is a file whose content changes only when CMDLINE does,
# so the ISO and PXE directory follow it.
$(OUT)/cmdline.txt: FORCE | $(OUT)
	@printf '%s\n' '$(subst ','\'',$(CMDLINE))' > $@.new
	$(replace-if-changed)

$(OUT)/modules.txt: FORCE | $(OUT)
	@printf '%s\n' '$(subst ','\'',$(MODULES))' > $@.new
	$(replace-if-changed)

$(OUT)/hv.iso: $(OUT)/hv $(OUT)/cmdline.txt $(OUT)/modules.txt $(MODULES) $(BIN)/mkiso | deps
	$(BIN)/mkiso -o $@ -cmdline "$$(cat $(OUT)/cmdline.txt)" $(OUT)/hv $(MODULES)

$(OUT)/pxe/boot.ipxe: $(OUT)/hv $(OUT)/cmdline.txt $(OUT)/modules.txt $(MODULES) $(BIN)/mkpxe | deps
	$(BIN)/mkpxe -o $(OUT)/pxe -cmdline "$$(cat $(OUT)/cmdline.txt)" $(OUT)/hv $(MODULES)

image: $(OUT)/hv

iso: deps $(OUT)/hv.iso

pxe: deps $(OUT)/pxe/boot.ipxe $(BIN)/pxeserver
	@echo "out/pxe: serve it with: $(BIN)/pxeserver -iface IFACE -dir $(OUT)/pxe -proxy (or -range FIRST-LAST), or make serve-pxe IFACE=... (README, \"Boot a lab server\")"

# The PXE server in the foreground, logging every request; Ctrl-C stops it.
serve-pxe: pxe
	@$(if $(strip $(IFACE)),,echo "serve-pxe: give IFACE, the interface the lab servers are on (and RANGE=FIRST-LAST unless the lab has a DHCP server)" >&2; exit 2)
	$(BIN)/pxeserver -iface '$(IFACE)' -dir $(OUT)/pxe $(if $(strip $(RANGE)),-range '$(RANGE)',-proxy)

# The default VM of a bare "make run": Debian's kernel and initramfs from
# linux-files, /init starting a shell on the console (hv.shell).
RUN_DEFAULT := $(if $(strip $(ARGS)$(KERNEL)),,yes)
ifeq ($(RUN_DEFAULT),yes)
KERNEL := $(OUT)/linux/vmlinuz
INITRD := $(OUT)/linux/initramfs.cpio.gz
APPEND := console=ttyS0 panic=-1 hv.shell
endif
# The guest's own QEMU memory only when QEMU_MEM is given; mk/run-guest.sh
# sizes it for MEM otherwise.
RUN_QEMU_MEM := $(if $(filter command% environment%,$(origin QEMU_MEM)),$(QEMU_MEM))

# With KERNEL (or nothing at all) run boots one guest VM, ending as QEMU
# would running that guest (mk/run-guest.sh). With ARGS it boots the
# hypervisor with those options: QEMU ends with (S<<1)|1 when the kernel
# exits with status S, and run turns that back into S so that "make run"
# succeeds when the hypervisor does. (QEMU's own start-up errors also exit
# 1; its message on stderr tells them apart.)
run: deps $(OUT)/hv $(if $(RUN_DEFAULT),linux-files)
ifneq ($(strip $(KERNEL)),)
	@$(if $(strip $(ARGS)),echo "run: give ARGS (hypervisor boot options) or KERNEL (a guest) but not both" >&2; exit 2;) \
	mk/run-guest.sh $(OUT)/hv '$(subst ','\'',$(KERNEL))' '$(subst ','\'',$(INITRD))' '$(subst ','\'',$(APPEND))' \
		'$(subst ','\'',$(MEM))' '$(subst ','\'',$(CPUS))' '$(RUN_QEMU_MEM)' '$(QEMU_SMP)'
else
	@accel="$$(mk/qemu-accel.sh)"; \
	echo "qemu $$accel -m $(QEMU_MEM) -smp $(QEMU_SMP): Ctrl-A x quits, Ctrl-A c is QEMU's monitor"; \
	qemu-system-x86_64 $$accel -m $(QEMU_MEM) -smp $(QEMU_SMP) -display none -serial mon:stdio \
		-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 \
		-kernel $(OUT)/hv -append '$(subst ','\'',$(ARGS))' \
		2> >(grep -v "TCG doesn't support requested feature" >&2); \
	s=$$?; \
	if (( s % 2 == 1 )); then s=$$((s >> 1)); echo "hv exited with status $$s"; \
	else echo "qemu ended with code $$s without the kernel's exit (reset, triple fault or quit)"; fi; \
	exit $$s
endif

test: deps
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory qemu-test
	$(if $(strip $(TEST_TARGETS)),$(MAKE) --no-print-directory $(TEST_TARGETS))

unit:
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n $$unformatted ]]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(UNIT_PKGS)
	$(STATICCHECK) $(UNIT_PKGS)
	$(GO) test $(UNIT_PKGS)

qemu-test: deps $(OUT)/hv $(BIN)/hvtest $(BIN)/pxeserver linux-files
	$(BIN)/hvtest -image $(OUT)/hv -logs $(OUT)/test-logs -pxeserver $(BIN)/pxeserver $(HVTEST_FLAGS)

# docs/bench.md is assembled from the sections in $(BENCH_DIR).
bench: deps $(OUT)/hv $(BIN)/hvbench
	@rm -rf $(BENCH_DIR) && mkdir -p $(BENCH_DIR)
	@$(BIN)/hvbench -title > $(BENCH_DIR)/00-title.md
	$(MAKE) --no-print-directory bench-platform $(BENCH_TARGETS)
	@cat $(BENCH_DIR)/*.md > docs/bench.md
	@echo "wrote docs/bench.md"

bench-platform: $(OUT)/hv $(BIN)/hvbench | $(BENCH_DIR)
	$(BIN)/hvbench -image $(OUT)/hv -o $(BENCH_DIR)/10-platform.md

deps:
	@mk/deps.sh $(DEB_DEPS)

clean:
	rm -rf $(OUT) $(CLEAN_FILES)
