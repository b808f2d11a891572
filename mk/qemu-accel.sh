#!/usr/bin/env bash
# Print the QEMU acceleration and CPU arguments for "make run":
# "-accel kvm -cpu host" when KVM really works here, else TCG with an EPYC
# model (SVM and nested paging under TCG), single-threaded because QEMU
# 7.2's multi-threaded TCG now and then loses a guest's nested-paging
# translations (docs/testing.md). Notes go to stderr.
set -uo pipefail

tcg="-accel tcg,thread=single -cpu EPYC"
if [[ ! -e /dev/kvm ]]; then
	echo "$tcg"
	exit 0
fi
# /dev/kvm can exist and still fail (no permission, a broken nested setup):
# ask QEMU to bring up a paused KVM machine and quit.
if ! (echo quit | timeout 20 qemu-system-x86_64 -accel kvm -cpu host -m 64 -display none \
	-nodefaults -S -monitor stdio) >/dev/null 2>&1; then
	echo "note: /dev/kvm exists but QEMU cannot use it; using TCG" >&2
	echo "$tcg"
	exit 0
fi
nested=
for p in /sys/module/kvm_amd/parameters/nested /sys/module/kvm_intel/parameters/nested; do
	[[ -r $p ]] && nested=$(cat "$p")
done
if [[ $nested != 1 && $nested != Y ]]; then
	echo "note: nested virtualization is off in the host kernel (kvm_amd/kvm_intel nested=1);" \
		"the hypervisor will report no SVM/VMX" >&2
fi
echo "-accel kvm -cpu host"
