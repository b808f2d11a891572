#!/bin/busybox sh
# /init of the hv Linux guest initramfs (written by tools/mkinitramfs).
# It sets up the minimum a test needs, loads the virtio modules, prints
# markers on the console and runs /test. Kernel command line options:
#   hv.shell   start an interactive shell on the console instead of /test
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp
mount -t devpts devpts /dev/pts
echo "init: uname $(uname -r)"
release=$(uname -r)
# /lib/modules/load-order lists the modules in dependency order.
while read -r m; do
	if insmod "/lib/modules/$release/$m.ko"; then
		echo "init: module $m"
	else
		echo "init: module $m FAILED"
	fi
done </lib/modules/load-order
case " $(cat /proc/cmdline) " in
*" hv.shell "*)
	echo "init: shell"
	setsid cttyhack sh
	;;
*)
	echo "init: test start"
	sh /test
	echo "init: test exit $?"
	;;
esac
echo "init: poweroff"
poweroff -f
