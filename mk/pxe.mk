# Network boot (docs/pxe.md): the netboot runs of make qemu-test boot the
# self-test through tools/pxeserver in a network namespace; this one boots
# the Linux VM the same way, its kernel and initramfs as modules over HTTP.
#
#   make test-netboot-linux     only the hvtest run netboot-bios-linux-svm (about 40 s)

.PHONY: test-netboot-linux

test-netboot-linux: deps $(OUT)/hv $(BIN)/hvtest $(BIN)/pxeserver linux-files
	$(BIN)/hvtest -image $(OUT)/hv -logs $(OUT)/test-logs -pxeserver $(BIN)/pxeserver -run '^netboot-bios-linux-svm$$' $(HVTEST_FLAGS)
