package pci

import (
	"encoding/binary"
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	functionTag     = "pci-function"
	functionVersion = 1
	hostTag         = "pci-host"
	hostVersion     = 1
)

// SaveState returns the configuration space and the INTx pin level. The
// IRQ wiring, BAR handlers and capability hooks are wiring, not state.
func (f *Function) SaveState() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := snapshot.NewEncoder(functionTag, functionVersion)
	e.Bytes(f.cfg[:])
	e.Bool(f.intx)
	return e.Finish(), nil
}

// RestoreState validates blob against this function's identity and
// register rules, then installs it, re-registers the BARs and re-drives
// INTx. On error the function is unchanged.
func (f *Function) RestoreState(blob []byte) error {
	commit, err := f.PrepareRestore(blob)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// PrepareRestore validates blob and returns a function that installs it.
// Devices that embed a Function use it to restore atomically together with
// their own state.
func (f *Function) PrepareRestore(blob []byte) (commit func(), err error) {
	d, err := snapshot.NewDecoder(blob, functionTag, functionVersion)
	if err != nil {
		return nil, fmt.Errorf("pci: restore %s: %w", f.name, err)
	}
	raw := d.Bytes(ConfigSize)
	intx := d.Bool()
	d.Check(len(raw) == ConfigSize, "configuration space of %d bytes", len(raw))
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("pci: restore %s: %w", f.name, err)
	}
	var cfg [ConfigSize]byte
	copy(cfg[:], raw)
	if err := f.checkConfig(&cfg); err != nil {
		return nil, fmt.Errorf("pci: restore %s: %w", f.name, err)
	}
	return func() {
		f.mu.Lock()
		f.cfg = cfg
		f.intx = intx
		moves := f.remap()
		f.syncIRQ(true)
		hook := f.onMove
		f.mu.Unlock()
		f.report(moves, hook)
	}, nil
}

// checkConfig accepts only contents a guest could have produced through
// WriteConfig from this function's power-on state.
func (f *Function) checkConfig(cfg *[ConfigSize]byte) error {
	for r := 0; r < ConfigSize; r++ {
		switch {
		case r == RegStatus || r == RegStatus+1:
			sh := 8 * (r - RegStatus)
			may := byte(uint16(statusW1C|StatusInterrupt) >> sh)
			if (cfg[r]^f.initial[r])&^may != 0 {
				return fmt.Errorf("status byte %#x = %#x: %w", r, cfg[r], snapshot.ErrCorrupt)
			}
		case r >= RegBAR0 && r < RegBAR0+4*NumBARs:
		default:
			if (cfg[r]^f.initial[r])&^f.wmask[r] != 0 {
				return fmt.Errorf("read-only byte %#x = %#x, want %#x: %w", r, cfg[r], f.initial[r], snapshot.ErrCorrupt)
			}
		}
	}
	var probe Function
	probe.bars = f.bars
	for i := 0; i < NumBARs; i++ {
		v := binary.LittleEndian.Uint32(cfg[RegBAR0+4*i:])
		probe.barStore(i, v)
		if probe.barReg(i) != v {
			return fmt.Errorf("BAR%d = %#x is not a value the register can hold: %w", i, v, snapshot.ErrCorrupt)
		}
	}
	return nil
}

// SaveState returns the host bridge's address register and the bridge
// function's configuration space. Other functions are saved by the devices
// that own them.
func (h *Host) SaveState() ([]byte, error) {
	br, err := h.bridge.SaveState()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := snapshot.NewEncoder(hostTag, hostVersion)
	e.U32(h.addr)
	e.Bytes(br)
	return e.Finish(), nil
}

// RestoreState restores what SaveState saved; on error nothing changes.
func (h *Host) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, hostTag, hostVersion)
	if err != nil {
		return fmt.Errorf("pci: restore host: %w", err)
	}
	addr := d.U32()
	br := d.Bytes(1 << 12)
	d.Check(addr&^configAddrMask == 0, "address register %#x", addr)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("pci: restore host: %w", err)
	}
	commit, err := h.bridge.PrepareRestore(br)
	if err != nil {
		return fmt.Errorf("pci: restore host: %w", err)
	}
	commit()
	h.mu.Lock()
	h.addr = addr
	h.mu.Unlock()
	return nil
}

// Reset clears the address register and resets the bridge function.
func (h *Host) Reset() {
	h.mu.Lock()
	h.addr = 0
	h.mu.Unlock()
	h.bridge.Reset()
}
