package hostnet

import "time"

// Polling. The platform routes no host device interrupts to Go code, so
// the receive side is polled. The trade-off is latency against CPU: a
// poller that never sleeps answers at once but takes a CPU from the vCPUs
// (and under QEMU TCG from everything else on the machine); one that
// sleeps long adds its sleep to every round trip. Run takes the middle:
// after any traffic (a frame received, or Send waking it) it polls again
// at once, and each idle round doubles the sleep from MinIdle up to
// MaxIdle. A ping's reply thus waits a few tens of microseconds, while an
// idle uplink costs one poll per MaxIdle.
const (
	MinIdle = 20 * time.Microsecond
	MaxIdle = 2 * time.Millisecond
)

// Run polls until stop is closed or the device breaks the protocol
// (then it returns the error), handing frames to deliver.
func (n *NIC) Run(stop <-chan struct{}, deliver func(frame []byte)) error {
	idle := MinIdle
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		got, err := n.Poll(deliver)
		if err != nil {
			return err
		}
		if got > 0 {
			idle = MinIdle
			continue
		}
		t.Reset(idle)
		select {
		case <-stop:
			return nil
		case <-n.kick:
			idle = MinIdle
		case <-t.C:
			idle = min(2*idle, MaxIdle)
		}
	}
}
