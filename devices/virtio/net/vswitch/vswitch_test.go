package vswitch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func frame(dst, src byte) []byte {
	f := make([]byte, 60)
	f[0], f[5] = 0x02, dst
	f[6], f[11] = 0x02, src
	if dst == 0xFF {
		for i := 0; i < 6; i++ {
			f[i] = 0xFF
		}
	}
	return f
}

func mac(b byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, b} }

func TestLearningAndFlooding(t *testing.T) {
	var log []string
	s := New(0)
	ports := map[string]*Port{}
	for _, n := range []string{"a", "b", "c"} {
		n := n
		p, err := s.AddPort(n, func(f []byte) { log = append(log, n) })
		if err != nil {
			t.Fatal(err)
		}
		ports[n] = p
	}
	steps := []struct {
		from     string
		dst, src byte
		want     []string
	}{
		{"a", 2, 1, []string{"b", "c"}}, // unknown destination: flood, learn 1@a
		{"b", 1, 2, []string{"a"}},      // learned: unicast to a, learn 2@b
		{"a", 2, 1, []string{"b"}},      // now known
		{"c", 0xFF, 3, []string{"a", "b"}},
		{"a", 1, 1, nil},           // destination on the ingress port: filtered
		{"c", 2, 1, []string{"b"}}, // station 1 moved to c
		{"b", 1, 2, []string{"c"}},
	}
	for i, st := range steps {
		log = nil
		if err := ports[st.from].Send(frame(st.dst, st.src)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(st.want, log); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
	if p, _ := s.Lookup(mac(1)); p != ports["c"] {
		t.Error("move not learned")
	}
	ports["c"].Remove()
	if _, ok := s.Lookup(mac(1)); ok {
		t.Error("removed port's addresses kept")
	}
	log = nil
	_ = ports["b"].Send(frame(1, 2))
	if diff := cmp.Diff([]string{"a"}, log); diff != "" {
		t.Errorf("after removal (-want +got):\n%s", diff)
	}
	if err := ports["c"].Send(frame(1, 3)); err == nil {
		t.Error("removed port still sends")
	}
}

func TestDrops(t *testing.T) {
	var n int
	s := New(2)
	a, _ := s.AddPort("a", func([]byte) { n++ })
	_, _ = s.AddPort("b", func([]byte) { n++ })
	if err := a.Send(make([]byte, 13)); err == nil || n != 0 {
		t.Error("runt forwarded")
	}
	bad := frame(2, 1)
	bad[6] |= 1
	if err := a.Send(bad); err == nil || n != 0 {
		t.Error("multicast source forwarded")
	}
	for i := byte(1); i <= 5; i++ {
		_ = a.Send(frame(0xFF, i))
	}
	if len(s.table) != 2 {
		t.Errorf("table grew to %d entries past its bound", len(s.table))
	}
	if _, err := s.AddPort("x", nil); err == nil {
		t.Error("port without delivery accepted")
	}
}

// TestNoLoopWithReflectingNIC: a NIC that answers every frame it receives
// with a broadcast must not make the switch loop forever; each Send
// delivers to the other ports once.
func TestNoLoopWithReflectingNIC(t *testing.T) {
	s := New(0)
	count := 0
	var a *Port
	a, _ = s.AddPort("a", func([]byte) { count++ })
	_, _ = s.AddPort("b", func([]byte) { count++ })
	_ = a.Send(frame(0xFF, 1))
	if count != 1 {
		t.Errorf("broadcast delivered %d times, want once (never back to the sender)", count)
	}
}

// FuzzSwitch sends arbitrary frames from arbitrary ports. Invariants: no
// panic; a frame never comes back to its ingress port; the table stays
// bounded.
func FuzzSwitch(f *testing.F) {
	f.Add([]byte{0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(8)
		var ports []*Port
		var sending *Port
		for i := 0; i < 3; i++ {
			var p *Port
			p, _ = s.AddPort("p", func([]byte) {
				if p == sending {
					t.Fatal("frame reflected to its ingress port")
				}
			})
			ports = append(ports, p)
		}
		for len(data) > 15 {
			sending = ports[int(data[0])%3]
			n := 14 + int(data[15])%8
			if n > len(data)-1 {
				n = len(data) - 1
			}
			_ = sending.Send(data[1 : 1+n])
			data = data[1+n:]
		}
		if len(s.table) > 8 {
			t.Fatalf("table of %d", len(s.table))
		}
	})
}
