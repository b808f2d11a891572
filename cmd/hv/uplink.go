package main

import (
	"errors"
	"fmt"

	"hv/boot"
	"hv/devices/hostnet"
	"hv/devices/hostpci"
	"hv/devices/virtio/net/vswitch"
)

// The host NIC as the uplink port of a virtual switch (config switch
// "uplink", docs/devices.md "Host NIC").

// hostPorts is port I/O on the boot package.
type hostPorts struct{}

func (hostPorts) InL(port uint16) uint32     { return boot.InL(port) }
func (hostPorts) OutL(port uint16, v uint32) { boot.OutL(port, v) }

// hostDMA gives the driver zeroed frames from the allocator; their
// physical address is their identity-mapped address.
type hostDMA struct{}

func (hostDMA) Alloc(size uint64) (uint64, []byte, error) {
	n := (size + boot.PageSize - 1) / boot.PageSize
	pa, err := boot.AllocFrames(n, 1)
	if err != nil {
		return 0, nil, err
	}
	return pa, boot.Phys(pa, n*boot.PageSize), nil
}

func mapMMIO(pa, size uint64) (hostnet.Regs, error) { return boot.MapMMIO(pa, size) }

// errNoHostNIC says the machine has no NIC the hypervisor drives.
var errNoHostNIC = errors.New("no host NIC (the hypervisor drives a virtio-net PCI card, e.g. QEMU -device virtio-net-pci)")

// uplink is a host NIC bridged into a switch.
type uplink struct {
	nic  *hostnet.NIC
	port *vswitch.Port
}

// openUplink finds the first virtio-net PCI function, opens it and adds it
// to sw as the port "uplink". Run starts forwarding from it.
func openUplink(sw *vswitch.Switch) (*uplink, error) {
	cs := hostpci.NewMech1(hostPorts{})
	fns := hostnet.Find(hostpci.Scan(cs))
	if len(fns) == 0 {
		return nil, errNoHostNIC
	}
	nic, err := hostnet.Open(hostnet.Config{PCI: cs, Map: mapMMIO, DMA: hostDMA{}}, fns[0])
	if err != nil {
		return nil, err
	}
	// Frames the switch sends to the uplink go out of the NIC; a full
	// transmit queue drops them (counted), as a switch port would.
	port, err := sw.AddPort("uplink", func(f []byte) { _ = nic.Send(f) })
	if err != nil {
		return nil, err
	}
	return &uplink{nic: nic, port: port}, nil
}

// run polls the NIC until done, handing received frames to the switch.
func (u *uplink) run(done <-chan struct{}) {
	err := u.nic.Run(done, func(f []byte) { _ = u.port.Send(f) })
	if err != nil {
		fmt.Printf("hv: error: host nic %s: %v\n", u.nic.Addr(), err)
	}
}

func (u *uplink) String() string {
	m := u.nic.MAC()
	return fmt.Sprintf("host nic %s: virtio-net, mac %02x:%02x:%02x:%02x:%02x:%02x", u.nic.Addr(), m[0], m[1], m[2], m[3], m[4], m[5])
}

func (u *uplink) stats() string {
	s := u.nic.Stats()
	return fmt.Sprintf("host nic %s: rx %d frames %d bytes (%d dropped), tx %d frames %d bytes (%d dropped)",
		u.nic.Addr(), s.RxFrames, s.RxBytes, s.RxDropped, s.TxFrames, s.TxBytes, s.TxDropped)
}
