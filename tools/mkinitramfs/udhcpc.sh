#!/bin/busybox sh
# /etc/udhcpc.script of the hv Linux guest: busybox udhcpc's event script
# (udhcpc -s). $1 is the event; the lease comes in the environment
# (interface, ip, subnet, router, dns, lease, serverid). It configures the
# interface and the default route and prints the lease on the console.
case "$1" in
deconfig)
	ifconfig "$interface" 0.0.0.0 up
	;;
bound | renew)
	ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
	for r in $router; do
		route add default gw "$r" dev "$interface"
		echo "$r" >/tmp/router
		break
	done
	echo "test: dhcp $1 $interface $ip/$subnet router $router dns $dns lease $lease server $serverid"
	;;
leasefail | nak)
	echo "test: dhcp $1 $interface"
	;;
esac
exit 0
