// Package debugport models the two ports guests use to report progress and
// results to whoever runs them: the POST code port 0x80, which remembers
// the last byte written, and a test-exit port compatible with QEMU's
// isa-debug-exit device (iobase 0xF4, iosize 4), which turns a write of v
// into the exit status (v<<1)|1. Neither has interrupts or timing. What
// happens on an exit (stopping the VM, printing a verdict) is the caller's
// business, through the callback it injects.
package debugport

import (
	"encoding/binary"
	"fmt"
	"sync"

	"hv/devices/bus"
	"hv/devices/internal/snapshot"
)

// Port assignments.
const (
	POSTPort = 0x80 // the PC's manufacturing diagnostic port
	ExitBase = 0xF4 // QEMU's default isa-debug-exit iobase
	ExitSize = 4    // QEMU's default isa-debug-exit iosize
)

// POST is the port-0x80 POST code sink. Reads return the last value
// written (as many chipsets' POST-code latches do); the power-on value is
// 0.
type POST struct {
	mu     sync.Mutex
	last   uint8
	writes uint64
}

// NewPOST returns a POST code port in its reset state.
func NewPOST() *POST { return &POST{} }

// Last returns the last POST code and how many codes have been written.
func (p *POST) Last() (code uint8, writes uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.writes
}

// Read implements bus.Device.
func (p *POST) Read(off uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range data {
		data[i] = 0xFF
		if off+uint64(i) == 0 {
			data[i] = p.last
		}
	}
}

// Write implements bus.Device. Only the byte that lands on the port
// itself counts.
func (p *POST) Write(off uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, v := range data {
		if off+uint64(i) == 0 {
			p.last = v
			p.writes++
		}
	}
}

// Reset clears the latch.
func (p *POST) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.writes = 0, 0
}

const (
	postTag     = "post80"
	postVersion = 1
)

// SaveState returns the latch as a versioned blob.
func (p *POST) SaveState() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := snapshot.NewEncoder(postTag, postVersion)
	e.U8(p.last)
	e.U64(p.writes)
	return e.Finish(), nil
}

// RestoreState restores a blob from SaveState; on error nothing changes.
func (p *POST) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, postTag, postVersion)
	if err != nil {
		return fmt.Errorf("debugport: restore POST: %w", err)
	}
	last, writes := d.U8(), d.U64()
	if err := d.Finish(); err != nil {
		return fmt.Errorf("debugport: restore POST: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.writes = last, writes
	return nil
}

// Exit is the guest test-exit port. A write of value v (the access's
// bytes as a little-endian integer, as QEMU's isa-debug-exit takes it)
// calls the callback with status (v<<1)|1, so a guest can never report
// status 0 and a clean emulator exit stays distinguishable. Reads return
// all ones.
type Exit struct {
	mu     sync.Mutex
	onExit func(status uint32)
}

// NewExit returns a test-exit port that reports to onExit. onExit is
// called with no lock held, from the vCPU goroutine doing the write.
func NewExit(onExit func(status uint32)) *Exit {
	if onExit == nil {
		onExit = func(uint32) {}
	}
	return &Exit{onExit: onExit}
}

// Status computes the exit status QEMU reports for a write of v.
func Status(v uint32) uint32 { return v<<1 | 1 }

// Read implements bus.Device.
func (x *Exit) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0xFF
	}
}

// Write implements bus.Device.
func (x *Exit) Write(_ uint64, data []byte) {
	var buf [4]byte
	copy(buf[:], data)
	v := binary.LittleEndian.Uint32(buf[:])
	x.mu.Lock()
	f := x.onExit
	x.mu.Unlock()
	f(Status(v))
}

// Reset has nothing to do: the port has no state.
func (x *Exit) Reset() {}

const (
	exitTag     = "debugexit"
	exitVersion = 1
)

// SaveState returns an empty versioned blob: the port is stateless, but it
// takes part in whole-VM snapshots like every device.
func (x *Exit) SaveState() ([]byte, error) {
	return snapshot.NewEncoder(exitTag, exitVersion).Finish(), nil
}

// RestoreState checks that blob is this device's (empty) state.
func (x *Exit) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, exitTag, exitVersion)
	if err != nil {
		return fmt.Errorf("debugport: restore exit: %w", err)
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("debugport: restore exit: %w", err)
	}
	return nil
}

// Install registers the POST port at 0x80 and the exit port at
// 0xF4-0xF7.
func Install(b *bus.Bus, p *POST, x *Exit) error {
	if err := b.RegisterPorts(POSTPort, 1, "post", p); err != nil {
		return fmt.Errorf("debugport: install: %w", err)
	}
	if err := b.RegisterPorts(ExitBase, ExitSize, "debug-exit", x); err != nil {
		return fmt.Errorf("debugport: install: %w", err)
	}
	return nil
}
