#!/bin/busybox sh
# The default /test of the hv Linux guest: report what the kernel found and
# power off. tools/mkinitramfs -test FILE replaces it.
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || continue
	echo "test: virtio $(basename "$d") device $(cat "$d/device") driver $(basename "$(readlink "$d/driver")")"
done
for b in /sys/block/vd*; do
	[ -e "$b" ] || continue
	echo "test: block $(basename "$b") sectors $(cat "$b/size")"
done
for n in /sys/class/net/*; do
	echo "test: net $(basename "$n") $(cat "$n/address")"
done
echo "test: done"
poweroff -f
