package vmm

import (
	"fmt"
	"strings"
	"testing"
)

func TestFixedLength(t *testing.T) {
	tests := []struct {
		b      []byte
		reason Reason
		mode   int
		want   int
		ok     bool
	}{
		{[]byte{0x0F, 0xA2, 0x90}, ExitCPUID, 16, 2, true},
		{[]byte{0x66, 0x0F, 0xA2}, ExitCPUID, 32, 3, true},
		{[]byte{0x48, 0x0F, 0xA2}, ExitCPUID, 64, 3, true},
		{[]byte{0x48, 0x0F, 0xA2}, ExitCPUID, 32, 0, false}, // 0x48 is DEC EAX there
		{[]byte{0xF4}, ExitHLT, 64, 1, true},
		{[]byte{0x0F, 0x01, 0xD9}, ExitHypercall, 64, 3, true},
		{[]byte{0x0F, 0x01, 0xC1}, ExitHypercall, 64, 3, true},
		{[]byte{0xF3, 0x90}, ExitPause, 32, 2, true},
		{[]byte{0x0F, 0x30}, ExitMSRRead, 64, 0, false}, // WRMSR is not RDMSR
		{[]byte{0x0F, 0x01, 0xF9}, ExitRDTSCP, 64, 3, true},
		{[]byte{}, ExitCPUID, 64, 0, false},
	}
	for _, tt := range tests {
		got, ok := fixedLength(tt.b, tt.reason, tt.mode)
		if got != tt.want || ok != tt.ok {
			t.Errorf("fixedLength(% x, %v, %d) = %d, %v; want %d, %v", tt.b, tt.reason, tt.mode, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeMode(t *testing.T) {
	if m := decodeMode(SRegs{}); m != 16 {
		t.Errorf("real mode decodes as %d", m)
	}
	if m := decodeMode(SRegs{CR0: 1, CS: Segment{Attrib: 1 << 10}}); m != 32 {
		t.Errorf("32-bit protected mode decodes as %d", m)
	}
	if m := decodeMode(SRegs{CR0: 1 | 1<<31, EFER: 1<<10 | 1<<8, CS: Segment{Attrib: 1 << 9}}); m != 64 {
		t.Errorf("long mode decodes as %d", m)
	}
}

// TestEveryReasonHandled: each neutral reason but ExitUnknown has a handler
// in the dispatch table, so adding a reason without one fails here rather
// than stopping VMs with "unhandled exit".
func TestEveryReasonHandled(t *testing.T) {
	for r := Reason(0); r < numReasons; r++ {
		if r == ExitUnknown {
			if exitHandlers[r] != nil {
				t.Errorf("ExitUnknown has a handler; it must stop the VM")
			}
			continue
		}
		if exitHandlers[r] == nil {
			t.Errorf("no handler for %v", r)
		}
	}
}

func TestXCRWriteAllowed(t *testing.T) {
	for _, c := range []struct {
		index uint32
		value uint64
		want  bool
	}{
		{0, 1, true},
		{0, 3, true},
		{0, 0, false},          // x87 must stay enabled
		{0, 2, false},          // SSE without x87
		{0, 7, false},          // AVX: CPUID hides XSAVE's extended state
		{0, 1<<32 | 3, false},  // EDX holds reserved bits of XCR0
		{1, 3, false},          // XCR1 is not writable by XSETBV
		{0xFFFFFFFF, 1, false}, // unknown XCR
	} {
		if got := xcrWriteAllowed(c.index, c.value); got != c.want {
			t.Errorf("xcrWriteAllowed(%d, %#x) = %v, want %v", c.index, c.value, got, c.want)
		}
	}
}

// The stop message's recent exits: the last recentExits, oldest first,
// numbered from the run's first exit.
func TestExitRing(t *testing.T) {
	var r exitRing
	if got := r.lines(); len(got) != 0 {
		t.Errorf("empty ring: %q", got)
	}
	for i := 0; i < recentExits+3; i++ {
		r.add(Exit{Reason: ExitCPUID}, uint64(0x1000+i), uint64(i+1))
	}
	got := r.lines()
	if len(got) != recentExits {
		t.Fatalf("%d lines, want %d", len(got), recentExits)
	}
	if want := "exit 4 at rip=0x1003: cpuid (raw 0x0)"; got[0] != want {
		t.Errorf("oldest = %q, want %q", got[0], want)
	}
	if want := fmt.Sprintf("exit %d at rip=%#x: cpuid (raw 0x0)", recentExits+3, 0x1000+recentExits+2); got[recentExits-1] != want {
		t.Errorf("newest = %q, want %q", got[recentExits-1], want)
	}
	r.addInject(Event{Type: EventExternal, Vector: 0x31}, 0x2000)
	got = r.lines()
	if last := got[len(got)-1]; !strings.HasPrefix(last, "inject at rip=0x2000: ") || !strings.Contains(last, "49") && !strings.Contains(last, "0x31") {
		t.Errorf("injection line %q", last)
	}
}
