// Package devices is the shared vocabulary of the emulated PC devices: the
// interrupt line a device drives, the clock a timed device reads and the
// save/restore contract every device model keeps.
//
// The models themselves live in sub-packages (bus, pic, uart, pit, rtc,
// debugport). Everything under devices/ is architecture-free: it imports
// nothing from boot/, svm/, vmx/ or vmm/, so every model runs under plain
// `go test`. Guest-controlled input reaches the models only through their
// register files, and no register value a guest writes may make a model
// panic.
package devices

// IRQLine is one interrupt request wire from a device to an interrupt
// controller. Set reports the wire's current electrical level (true means
// asserted); the receiver decides whether a level or an edge counts, as the
// 8259A does per input. Devices call Set while holding their own lock, so an
// implementation must not call back into the device that drives it.
type IRQLine interface {
	Set(level bool)
}

// Clock is the source of time for timed devices, in nanoseconds since an
// arbitrary origin. It must never go backwards. Devices never read wall time
// themselves: the VMM decides what "now" is, which keeps a recorded run
// replayable for fault tolerance.
type Clock interface {
	Now() uint64
}

// Stateful is the contract every device model keeps so that a VM can be
// saved, cloned and restored. SaveState returns a versioned blob;
// RestoreState accepts only a blob of the same device kind and a known
// version, validates every field and leaves the device unchanged when it
// returns an error. Reset puts the device in its power-on state.
type Stateful interface {
	SaveState() ([]byte, error)
	RestoreState(blob []byte) error
	Reset()
}

// NopLine is an IRQLine connected to nothing, for devices whose interrupt
// output is not wired.
type NopLine struct{}

// Set implements IRQLine and ignores the level.
func (NopLine) Set(bool) {}
