#!/bin/busybox sh
# The default /test of the hv Linux guest: report what the kernel found and
# power off. tools/mkinitramfs -test FILE replaces it.
echo "test: cpus $(grep -c '^processor' /proc/cpuinfo) online $(cat /sys/devices/system/cpu/online)"
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
# hv.ip=<address> hv.peer=<address> on the kernel command line (the two-VM
# run of tools/hvtest): write a pattern naming this VM's address to the
# virtio disk, read it back past the page cache and print its MD5, then
# configure eth0 and ping the peer through the virtual switch.
arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}" ;; esac
	done
}
# inechos counts the ICMP echo requests this VM has received.
inechos() {
	awk '/^Icmp:/ { if (!c) { for (i = 2; i <= NF; i++) if ($i == "InEchos") c = i } else print $c }' /proc/net/snmp
}
ip=$(arg hv.ip)
peer=$(arg hv.peer)
# Only emergency messages (a panic) from the kernel from here on: its
# messages land in the middle of this script's lines on the shared console
# (eth0's link coming up, for one).
[ -n "$ip" ] && echo 1 >/proc/sys/kernel/printk
if [ -n "$ip" ] && [ -e /dev/vda ]; then
	yes "hv disk pattern $ip" | head -c 1048576 | dd of=/dev/vda bs=65536 conv=fsync 2>/dev/null
	sync
	echo 3 >/proc/sys/vm/drop_caches
	blockdev --flushbufs /dev/vda
	echo "test: disk md5 $(dd if=/dev/vda bs=65536 count=16 2>/dev/null | md5sum | cut -d' ' -f1)"
fi
if [ -n "$ip" ] && [ -n "$peer" ]; then
	ifconfig eth0 "$ip" netmask 255.255.255.0 up
	ok=
	for i in $(seq 1 60); do
		if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then
			ok=1
			break
		fi
	done
	if [ -n "$ok" ]; then echo "test: ping $peer ok"; else echo "test: ping $peer FAILED"; fi
	# Stay up until the peer has pinged this VM, so that it can pass too.
	for i in $(seq 1 60); do
		[ "$(inechos)" -gt 0 ] 2>/dev/null && break
		sleep 1
	done
	echo "test: pinged by peer $(inechos) times"
fi
# hv.dhcp on the kernel command line (the uplink run of tools/hvtest, whose
# eth0 is on the switch bridged to the host NIC): ask QEMU's user network
# for a lease with busybox udhcpc (/etc/udhcpc.script sets the address and
# route and prints the lease), then ping the gateway the lease named and
# print its reply.
case " $(cat /proc/cmdline) " in
*" hv.dhcp "*)
	echo 1 >/proc/sys/kernel/printk
	ifconfig eth0 up
	if udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 10 -T 2 && [ -s /tmp/router ]; then
		gw=$(cat /tmp/router)
		reply=
		for i in $(seq 1 10); do
			reply=$(ping -c 1 -W 2 "$gw" 2>&1 | grep "bytes from") && break
		done
		if [ -n "$reply" ]; then echo "test: gateway reply $reply"; else echo "test: ping $gw FAILED"; fi
		# hv.netbench=<sink port>,<source port>,<MiB> (tools/netbench): TCP
		# through QEMU's user network to the host's loopback, which slirp
		# reaches at the gateway's address: send MiB MiB to the sink port,
		# then read the source port to its end.
		nb=$(arg hv.netbench)
		if [ -n "$nb" ]; then
			sink=${nb%%,*}
			rest=${nb#*,}
			source=${rest%%,*}
			mib=${rest#*,}
			echo "netbench: tx start"
			dd if=/dev/zero bs=65536 count=$((mib * 16)) 2>/dev/null | nc "$gw" "$sink"
			echo "netbench: tx done"
			echo "netbench: rx $(nc "$gw" "$source" </dev/null | wc -c) bytes"
		fi
	else
		echo "test: dhcp FAILED"
	fi
	;;
esac
# hv.bench=<MiB>: virtio-blk throughput with direct I/O (past the page
# cache): MiB mebibytes written in 1 MiB requests, passing over the disk
# as often as needed, then as many read; each timed on the kernel's
# monotonic clock. tools/linuxbench reads these lines.
now_ns() {
	if [ -r /proc/timer_list ]; then
		awk '/^now at/ { print $3; exit }' /proc/timer_list
	else
		awk '{ printf "%d\n", $1 * 1000000000 }' /proc/uptime
	fi
}
bench=$(arg hv.bench)
if [ -n "$bench" ] && [ -e /dev/vda ]; then
	disk=$(($(cat /sys/block/vda/size) / 2048))
	for op in write read; do
		t0=$(now_ns)
		done_=0
		while [ "$done_" -lt "$bench" ] && [ "$disk" -gt 0 ]; do
			n=$((bench - done_))
			[ "$n" -gt "$disk" ] && n=$disk
			if [ $op = write ]; then
				dd if=/dev/zero of=/dev/vda bs=1048576 count="$n" oflag=direct conv=fsync 2>/dev/null
			else
				dd if=/dev/vda of=/dev/null bs=1048576 count="$n" iflag=direct 2>/dev/null
			fi
			done_=$((done_ + n))
		done
		t1=$(now_ns)
		echo "test: bench blk $op $((done_ * 1048576)) bytes $((t1 - t0)) ns"
	done
fi
echo "test: done"
poweroff -f
