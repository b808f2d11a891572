// Package virtio implements the device side of virtio 1.x (OASIS virtio
// specification 1.2, cs01): the split virtqueue with every guest-written
// field validated, feature negotiation, the device status state machine and
// the virtio-pci modern transport (vendor-specific capabilities in one
// memory BAR, INTx interrupts through the ISR register).
//
// Boundary: this package knows queues, the transport and the negotiation;
// what a device does with its buffers lives in sub-packages (blk, net,
// console) that implement Device. Guest memory is reached only through the
// GuestMemory interface, so everything is testable on a fake.
package virtio

import "errors"

// GuestMemory is guest-physical memory as a device doing DMA sees it. Both
// methods fail (and copy nothing) when any byte lies outside guest RAM;
// vmm.Memory implements it.
type GuestMemory interface {
	ReadPhys(gpa uint64, p []byte) error
	WritePhys(gpa uint64, p []byte) error
}

// DeviceType is the virtio device ID, spec section 5 (table "Device Types").
type DeviceType uint16

// Device types implemented here.
const (
	TypeNet     DeviceType = 1
	TypeBlock   DeviceType = 2
	TypeConsole DeviceType = 3
)

// Device status bits, spec 2.1.
const (
	StatusAcknowledge      = 1
	StatusDriver           = 2
	StatusDriverOK         = 4
	StatusFeaturesOK       = 8
	StatusDeviceNeedsReset = 64
	StatusFailed           = 128
)

// Reserved feature bits, spec section 6.
const (
	FeatureIndirectDesc = 1 << 28 // VIRTIO_F_INDIRECT_DESC
	FeatureEventIdx     = 1 << 29 // VIRTIO_F_EVENT_IDX (not offered)
	FeatureVersion1     = 1 << 32 // VIRTIO_F_VERSION_1
)

// Sentinel errors. A device reports ErrMalformed (wrapped, with detail) for
// anything the driver put in a queue that the spec forbids; the transport
// answers it by entering the DEVICE_NEEDS_RESET state.
var (
	ErrMalformed = errors.New("malformed virtqueue")
	ErrNotReady  = errors.New("device not live")
)
