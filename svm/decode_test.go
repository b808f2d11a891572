package svm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name string
		raw  uint64
		want Event
	}{
		{"nothing pending", 0, Event{}},
		{"V clear ignores the rest", 0x0000_0001_0000_0b0e, Event{}},
		{"#GP(0)", 0x0000_0000_8000_0b0d, Event{Valid: true, Vector: 13, Type: EventException, ErrorCodeValid: true}},
		{"#PF error 2 (write, not present)", 0x0000_0002_8000_0b0e, Event{Valid: true, Vector: 14, Type: EventException, ErrorCodeValid: true, ErrorCode: 2}},
		{"#UD", 0x8000_0306, Event{Valid: true, Vector: 6, Type: EventException}},
		{"NMI", 0x8000_0202, Event{Valid: true, Vector: 2, Type: EventNMI}},
		{"external interrupt 0x20", 0x8000_0020, Event{Valid: true, Vector: 0x20, Type: EventINTR}},
		{"INT 0x80", 0x8000_0480, Event{Valid: true, Vector: 0x80, Type: EventSoftInt}},
		{"#DF(0) from EXITINTINFO", 0x0000_0000_8000_0b08, Event{Valid: true, Vector: 8, Type: EventException, ErrorCodeValid: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.raw)
			if err != nil {
				t.Fatalf("DecodeEvent(%#x): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeEvent(%#x) mismatch (-want +got):\n%s", tt.raw, diff)
			}
			if !tt.want.Valid {
				return
			}
			enc, err := got.Encode()
			if err != nil || enc != tt.raw {
				t.Errorf("Encode() = %#x, %v; want %#x", enc, err, tt.raw)
			}
		})
	}
}

func TestDecodeEventRejectsReserved(t *testing.T) {
	for _, raw := range []uint64{
		0x8000_0120, // type 1
		0x8000_0520, // type 5
		0x8000_0720, // type 7
		0x8000_1020, // bit 12
		0xc000_0020, // bit 30
	} {
		if _, err := DecodeEvent(raw); !errors.Is(err, ErrReserved) {
			t.Errorf("DecodeEvent(%#x) error = %v, want ErrReserved", raw, err)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name    string
		ev      Event
		want    uint64
		wantErr bool
	}{
		{"zero is nothing", Event{}, 0, false},
		{"NMI vector forced to 2", Event{Valid: true, Type: EventNMI, Vector: 0x55}, 0x8000_0202, false},
		{"#GP(0x18)", Event{Valid: true, Type: EventException, Vector: 13, ErrorCodeValid: true, ErrorCode: 0x18}, 0x0000_0018_8000_0b0d, false},
		{"exception vector 2", Event{Valid: true, Type: EventException, Vector: 2}, 0, true},
		{"exception vector 32", Event{Valid: true, Type: EventException, Vector: 32}, 0, true},
		{"error code on INTR", Event{Valid: true, Type: EventINTR, Vector: 0x30, ErrorCodeValid: true}, 0, true},
		{"error code on INTn", Event{Valid: true, Type: EventSoftInt, Vector: 0x30, ErrorCodeValid: true}, 0, true},
		{"reserved type", Event{Valid: true, Type: 6, Vector: 0x30}, 0, true},
		{"interrupt vector 0xff", Event{Valid: true, Type: EventINTR, Vector: 0xff}, 0x8000_00ff, false},
	}
	for _, tt := range tests {
		got, err := tt.ev.Encode()
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: Encode() = %#x, %v; want %#x, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExceptionHasErrorCode(t *testing.T) {
	with := map[uint8]bool{8: true, 10: true, 11: true, 12: true, 13: true, 14: true, 17: true, 21: true, 29: true, 30: true}
	for v := 0; v < 32; v++ {
		if got := ExceptionHasErrorCode(uint8(v)); got != with[uint8(v)] {
			t.Errorf("ExceptionHasErrorCode(%d) = %v", v, got)
		}
	}
}

func TestDecodeIOIO(t *testing.T) {
	tests := []struct {
		name  string
		info1 uint64
		info2 uint64
		want  IOExit
	}{
		{
			// QEMU TCG leaves the address size bits clear.
			name: "out dx, al to COM1 (QEMU)", info1: 0x03f8_0010, info2: 0x10_0005,
			want: IOExit{Port: 0x3f8, Size: 1, NextRIP: 0x10_0005},
		},
		{
			name: "in eax, dx from 0xcfc, 64-bit", info1: 0x0cfc_0241, info2: 0xffff_8000_0000_1234,
			want: IOExit{Port: 0xcfc, In: true, Size: 4, AddrSize: 64, NextRIP: 0xffff_8000_0000_1234},
		},
		{
			name: "in ax, 0x60, 16-bit", info1: 0x0060_00a1, info2: 0x7c02,
			want: IOExit{Port: 0x60, In: true, Size: 2, AddrSize: 16, NextRIP: 0x7c02},
		},
		{
			name: "rep outsb DS:RSI to COM1, 64-bit", info1: 0x03f8_0e1c, info2: 0x2002,
			want: IOExit{Port: 0x3f8, String: true, Rep: true, Size: 1, AddrSize: 64, Segment: SegDS, NextRIP: 0x2002},
		},
		{
			name: "insd ES:EDI, 32-bit", info1: 0x01f0_0145, info2: 0x8001,
			want: IOExit{Port: 0x1f0, In: true, String: true, Size: 4, AddrSize: 32, Segment: SegES, NextRIP: 0x8001},
		},
		{
			name: "outsw FS: override, port 0xffff", info1: 0xffff_1124, info2: 0x9,
			want: IOExit{Port: 0xffff, String: true, Size: 2, AddrSize: 32, Segment: SegFS, NextRIP: 0x9},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeIOIO(tt.info1, tt.info2)
			if err != nil {
				t.Fatalf("DecodeIOIO(%#x): %v", tt.info1, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeIOIO(%#x) mismatch (-want +got):\n%s", tt.info1, diff)
			}
			enc, err := got.Encode()
			if err != nil || enc != tt.info1 {
				t.Errorf("Encode() = %#x, %v; want %#x", enc, err, tt.info1)
			}
		})
	}
}

func TestDecodeIOIORejects(t *testing.T) {
	for _, info1 := range []uint64{
		0x03f8_0000, // no size
		0x03f8_0030, // two sizes
		0x03f8_0070, // three sizes
		0x03f8_0190, // A16 and A32
		0x03f8_1810, // segment 6
		0x03f8_1c10, // segment 7
	} {
		if _, err := DecodeIOIO(info1, 0); !errors.Is(err, ErrReserved) {
			t.Errorf("DecodeIOIO(%#x) error = %v, want ErrReserved", info1, err)
		}
	}
}

func TestDecodeNPF(t *testing.T) {
	tests := []struct {
		name         string
		info1, info2 uint64
		want         NPFExit
	}{
		{
			name: "write to unmapped MMIO page", info1: 0x1_0000_0006, info2: 0xfee0_0030,
			want: NPFExit{GPA: 0xfee0_0030, Write: true, User: true, FinalGPA: true},
		},
		{
			name: "read beyond RAM", info1: 0x1_0000_0004, info2: 0x1_2000_0000,
			want: NPFExit{GPA: 0x1_2000_0000, User: true, FinalGPA: true},
		},
		{
			name: "fetch from no-execute page", info1: 0x1_0000_0015, info2: 0x20_0000,
			want: NPFExit{GPA: 0x20_0000, Present: true, User: true, Fetch: true, FinalGPA: true},
		},
		{
			name: "guest page walk hits write-protected page", info1: 0x2_0000_0007, info2: 0x9000,
			want: NPFExit{GPA: 0x9000, Present: true, Write: true, User: true, PageWalk: true},
		},
		{
			name: "reserved bit in nested entry", info1: 0x1_0000_000d, info2: 0x5000,
			want: NPFExit{GPA: 0x5000, Present: true, User: true, Reserved: true, FinalGPA: true},
		},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, DecodeNPF(tt.info1, tt.info2)); diff != "" {
			t.Errorf("%s: DecodeNPF(%#x) mismatch (-want +got):\n%s", tt.name, tt.info1, diff)
		}
	}
}

func TestDecodeCRAccess(t *testing.T) {
	tests := []struct {
		name    string
		code    ExitCode
		info1   uint64
		assists bool
		want    CRAccess
	}{
		{"mov cr3, rbx (assists)", ExitCRWriteN(3), 0x8000_0000_0000_0003, true, CRAccess{CR: 3, Write: true, GPRValid: true, GPR: 3}},
		{"mov r12, cr8 (assists)", ExitCRReadN(8), 0x8000_0000_0000_000c, true, CRAccess{CR: 8, GPRValid: true, GPR: 12}},
		{"lmsw (assists, not MOV)", ExitCRWriteN(0), 0, true, CRAccess{CR: 0, Write: true}},
		{"selective CR0 write", ExitCR0SelWrite, 0x8000_0000_0000_0000, true, CRAccess{CR: 0, Write: true, GPRValid: true}},
		{"mov cr4, rax without assists (QEMU)", ExitCRWriteN(4), 0x8000_0000_0000_0000, false, CRAccess{CR: 4, Write: true}},
	}
	for _, tt := range tests {
		got, err := DecodeCRAccess(tt.code, tt.info1, tt.assists)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	if _, err := DecodeCRAccess(ExitCPUID, 0, true); err == nil {
		t.Error("DecodeCRAccess(VMEXIT_CPUID) succeeded")
	}
}

func TestDecodeDRAccess(t *testing.T) {
	got, err := DecodeDRAccess(ExitDRWriteN(7), 0x9, true)
	if want := (DRAccess{DR: 7, Write: true, GPRValid: true, GPR: 9}); err != nil || got != want {
		t.Errorf("mov dr7, r9: got %+v, %v; want %+v", got, err, want)
	}
	got, err = DecodeDRAccess(ExitDRReadN(6), 0x9, false)
	if want := (DRAccess{DR: 6}); err != nil || got != want {
		t.Errorf("mov r9, dr6 without assists: got %+v, %v; want %+v", got, err, want)
	}
	if _, err := DecodeDRAccess(ExitCRReadN(0), 0, true); err == nil {
		t.Error("DecodeDRAccess(VMEXIT_CR0_READ) succeeded")
	}
}

func TestDecodeMSRExit(t *testing.T) {
	if w, err := DecodeMSRExit(0); w || err != nil {
		t.Errorf("DecodeMSRExit(0) = %v, %v; want read", w, err)
	}
	if w, err := DecodeMSRExit(1); !w || err != nil {
		t.Errorf("DecodeMSRExit(1) = %v, %v; want write", w, err)
	}
	if _, err := DecodeMSRExit(2); !errors.Is(err, ErrReserved) {
		t.Errorf("DecodeMSRExit(2) error = %v, want ErrReserved", err)
	}
}

// FuzzDecodeEvent checks that any 64-bit value decodes without panicking
// and that every accepted valid record encodes back to itself.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []uint64{0, 0x8000_0b0d, 0x2_8000_0b0e, 0x8000_0202, 0x8000_0120, 0xffff_ffff_ffff_ffff} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw uint64) {
		e, err := DecodeEvent(raw)
		if err != nil || !e.Valid {
			return
		}
		enc, err := e.Encode()
		if err != nil {
			// Decoding accepts what the CPU may report (an NMI with any
			// vector, an error code on any type); encoding is stricter.
			return
		}
		back, err := DecodeEvent(enc)
		if err != nil || back.Type != e.Type || back.ErrorCodeValid != e.ErrorCodeValid {
			t.Fatalf("%#x -> %+v -> %#x -> %+v, %v", raw, e, enc, back, err)
		}
	})
}

// FuzzDecodeIOIO checks that any EXITINFO1 decodes without panicking and
// that every accepted value encodes back to its defined bits.
func FuzzDecodeIOIO(f *testing.F) {
	for _, seed := range []uint64{0x03f8_0010, 0x0cfc_0241, 0x03f8_0e1c, 0, 0xffff_ffff_ffff_ffff} {
		f.Add(seed, uint64(0x1000))
	}
	f.Fuzz(func(t *testing.T, info1, info2 uint64) {
		e, err := DecodeIOIO(info1, info2)
		if err != nil {
			return
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("DecodeIOIO(%#x) = %+v, which does not encode: %v", info1, e, err)
		}
		const defined = 0xffff_1ffd // bits 31:16, 12:2, 0
		if enc != info1&defined {
			t.Fatalf("DecodeIOIO(%#x) encodes to %#x, want %#x", info1, enc, info1&defined)
		}
	})
}
