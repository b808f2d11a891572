#!/usr/bin/env bash
# Boot the hypervisor under QEMU TCG with one guest VM, its console on this
# terminal: the guest behind "make run KERNEL=..." (and the default VM of a
# bare "make run").
#
#   mk/run-guest.sh HV KERNEL INITRD APPEND MEM CPUS QEMU_MEM QEMU_SMP
#
# KERNEL and INITRD become Multiboot modules of the hypervisor, named by
# their base names; INITRD, APPEND, MEM, CPUS and QEMU_MEM may be empty.
# The exit status is the one QEMU would give had it run the guest itself:
# 0 when the guest powers off through ACPI, (v<<1)|1 when it writes v to
# the exit port at 0xF4 (isa-debug-exit).
set -uo pipefail

if (( $# != 8 )); then
	echo "usage: $0 HV KERNEL INITRD APPEND MEM CPUS QEMU_MEM QEMU_SMP" >&2
	exit 2
fi
hv=$1 kernel=$2 initrd=$3 append=$4 mem=$5 cpus=$6 qemu_mem=$7 qemu_smp=$8

for f in "$kernel" $initrd; do
	if [[ ! -r $f ]]; then
		echo "run: cannot read $f" >&2
		exit 2
	fi
done
# QEMU separates modules with ',' and a module's path from its arguments
# with ' '; the hypervisor names a module by its path's base name.
for f in "$kernel" $initrd; do
	if [[ $f == *[,\ ]* ]]; then
		echo "run: $f: a file name with ',' or a blank cannot be a QEMU module" >&2
		exit 2
	fi
done
kname=$(basename "$kernel")
modules=$kernel
opts="vm=guest kernel=$kname"
if [[ -n $initrd ]]; then
	iname=$(basename "$initrd")
	if [[ $iname == "$kname" ]]; then
		echo "run: KERNEL and INITRD have the same base name $kname" >&2
		exit 2
	fi
	modules+=",$initrd"
	opts+=" initrd=$iname"
fi
# The hypervisor's boot options group a value with double or single quotes,
# without escapes.
if [[ -n $append ]]; then
	if [[ $append != *'"'* ]]; then
		opts+=" append=\"$append\""
	elif [[ $append != *"'"* ]]; then
		opts+=" append='$append'"
	else
		echo "run: APPEND cannot hold both kinds of quote" >&2
		exit 2
	fi
fi
[[ -n $mem ]] && opts+=" mem=$mem"
[[ -n $cpus ]] && opts+=" cpus=$cpus"
# Room for the hypervisor, the modules and the guest's RAM (256 MiB by
# default).
if [[ -z $qemu_mem ]]; then
	qemu_mem=$(( ${mem:-256} + 768 ))
fi

# Single-threaded TCG: QEMU 7.2's multi-threaded TCG now and then loses a
# guest's nested-paging translations (docs/testing.md).
echo "qemu -accel tcg,thread=single -m $qemu_mem -smp $qemu_smp, hypervisor options: $opts"
echo "Ctrl-A x quits, Ctrl-A c is QEMU's monitor"
qemu-system-x86_64 -accel tcg,thread=single -cpu EPYC -m "$qemu_mem" -smp "$qemu_smp" -display none -serial mon:stdio \
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 \
	-kernel "$hv" -initrd "$modules" -append "$opts" \
	2> >(grep -v "TCG doesn't support requested feature" >&2)
s=$?
# The hypervisor exits with 0 when the guest powered off and with v when the
# guest wrote v to its exit port; QEMU reports that as (status<<1)|1.
if (( s == 1 )); then
	echo "guest powered off"
	exit 0
elif (( s % 2 == 1 )); then
	echo "guest wrote $(( s >> 1 )) to the exit port (or the hypervisor failed with that status): exit status $s, as QEMU gives it"
	exit "$s"
fi
echo "qemu ended with code $s without the hypervisor's exit (reset, triple fault or quit)"
exit "$s"
