package virtio

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "virtio-pci"
	stateVersion = 1
	maxBlob      = 1 << 20
)

// SaveState saves the transport (negotiation, status, queues, ISR), its PCI
// function and the device's own state in one blob.
func (t *Transport) SaveState() ([]byte, error) {
	fnBlob, err := t.fn.SaveState()
	if err != nil {
		return nil, fmt.Errorf("virtio: save: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.U16(uint16(t.dev.Type()))
	e.U32(t.devFeatureSel)
	e.U32(t.drvFeatureSel)
	e.U64(t.drvFeatures)
	e.U8(t.status)
	e.U8(t.generation)
	e.U16(t.queueSel)
	e.U8(t.isr)
	e.U8(t.cfgCap.bar)
	e.U32(t.cfgCap.offset)
	e.U32(t.cfgCap.length)
	e.U32(uint32(t.cfgCap.data[0]) | uint32(t.cfgCap.data[1])<<8 | uint32(t.cfgCap.data[2])<<16 | uint32(t.cfgCap.data[3])<<24)
	e.U16(uint16(len(t.queues)))
	for _, qs := range t.queues {
		q := qs.q
		e.U16(q.Size)
		e.U64(q.Desc)
		e.U64(q.Avail)
		e.U64(q.Used)
		e.Bool(q.Enabled)
		e.Bool(q.Indirect)
		e.U16(q.LastAvail)
		e.U16(q.UsedIdx)
	}
	e.Bytes(fnBlob)
	e.Bytes(t.dev.SaveDevice())
	return e.Finish(), nil
}

// RestoreState validates the whole blob (transport fields, PCI function
// and device) before installing any of it; on error nothing changes.
func (t *Transport) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	var n Transport
	typ := DeviceType(d.U16())
	n.devFeatureSel = d.U32()
	n.drvFeatureSel = d.U32()
	n.drvFeatures = d.U64()
	n.status = d.U8()
	n.generation = d.U8()
	n.queueSel = d.U16()
	n.isr = d.U8()
	n.cfgCap.bar = d.U8()
	n.cfgCap.offset = d.U32()
	n.cfgCap.length = d.U32()
	data := d.U32()
	n.cfgCap.data = [4]byte{byte(data), byte(data >> 8), byte(data >> 16), byte(data >> 24)}
	nq := int(d.U16())
	d.Check(typ == t.dev.Type(), "device type %d, this is %d", typ, t.dev.Type())
	d.Check(nq == len(t.queues), "%d queues, device has %d", nq, len(t.queues))
	d.Check(n.isr&^(isrQueue|isrConfig) == 0, "ISR %#x", n.isr)
	// Before FEATURES_OK the driver may have written anything; once the
	// device accepted, the set is a subset of the offer with VERSION_1.
	if n.status&StatusFeaturesOK != 0 {
		d.Check(n.drvFeatures&^t.offered == 0, "driver features %#x not offered", n.drvFeatures)
		d.Check(n.drvFeatures&FeatureVersion1 != 0, "FEATURES_OK without VERSION_1")
	}
	d.Check(n.status&StatusDriverOK == 0 || n.status&StatusFeaturesOK != 0, "DRIVER_OK without FEATURES_OK")
	n.queues = make([]queueState, len(t.queues))
	for i := 0; i < nq && i < len(t.queues); i++ {
		q := &n.queues[i].q
		n.queues[i].max = t.queues[i].max
		q.Size = d.U16()
		q.Desc, q.Avail, q.Used = d.U64(), d.U64(), d.U64()
		q.Enabled = d.Bool()
		q.Indirect = d.Bool()
		q.LastAvail, q.UsedIdx = d.U16(), d.U16()
		if q.Enabled {
			if err := q.Check(n.queues[i].max); err != nil {
				d.Failf("queue %d: %v", i, err)
			}
			d.Check(!q.Indirect || n.drvFeatures&FeatureIndirectDesc != 0, "queue %d indirect without the feature", i)
		}
	}
	fnBlob := d.Bytes(maxBlob)
	devBlob := d.Bytes(maxBlob)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	commitFn, err := t.fn.PrepareRestore(fnBlob)
	if err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	commitDev, err := t.dev.PrepareRestoreDevice(devBlob)
	if err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	t.mu.Lock()
	t.devFeatureSel, t.drvFeatureSel, t.drvFeatures = n.devFeatureSel, n.drvFeatureSel, n.drvFeatures
	t.status, t.generation, t.queueSel, t.isr = n.status, n.generation, n.queueSel, n.isr
	t.cfgCap = n.cfgCap
	copy(t.queues, n.queues)
	commitDev()
	t.mu.Unlock()
	// The function restore re-drives INTx from its saved pin level, which
	// the transport keeps equal to "ISR non-zero".
	commitFn()
	t.fn.SetINTx(n.isr != 0)
	return nil
}
