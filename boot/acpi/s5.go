package acpi

// AML encodings used by the \_S5_ scan (§20.2).
const (
	amlNameOp      = 0x08 // §20.2.5.1 DefName := NameOp NameString DataRefObject
	amlRootChar    = '\\' // §20.2.2 RootChar
	amlParentChar  = '^'  // §20.2.2 ParentPrefixChar
	amlPackageOp   = 0x12 // §20.2.5.4 DefPackage := PackageOp PkgLength NumElements PackageElementList
	amlZeroOp      = 0x00 // §20.2.3 ConstObj
	amlOneOp       = 0x01
	amlOnesOp      = 0xFF
	amlBytePrefix  = 0x0A // §20.2.3 ComputationalData
	amlWordPrefix  = 0x0B
	amlDWordPrefix = 0x0C
	amlQWordPrefix = 0x0E

	// SLP_TYP is 3 bits of PM1_CNT (§4.8.3.2.1 table 4.13).
	maxSleepType = 7
)

// S5 holds the values to write into PM1a_CNT.SLP_TYP and PM1b_CNT.SLP_TYP, together with
// SLP_EN, to enter the soft-off state (§7.4.2, §16.1.7).
type S5 struct {
	SLPTypA, SLPTypB uint8
}

// FindS5 scans an AML table (a DSDT or SSDT with its header) for the static definition
// Name(\_S5_, Package(){a, b, ...}) and returns a and b. It is a byte-level scan, not an AML
// interpreter: an \_S5_ computed by a method, or whose elements are not integer constants, is
// ErrNoS5. Every read is bounds-checked against the table and the package's PkgLength.
func FindS5(aml []byte) (S5, error) {
	if len(aml) < HeaderSize {
		return S5{}, ErrBadLength
	}
	for i := HeaderSize + 1; i+4 <= len(aml); i++ {
		if aml[i] != '_' || aml[i+1] != 'S' || aml[i+2] != '5' || aml[i+3] != '_' {
			continue
		}
		// NameOp, optionally followed by a root or parent prefix, must precede the name.
		j := i - 1
		for j > HeaderSize && (aml[j] == amlRootChar || aml[j] == amlParentChar) {
			j--
		}
		if aml[j] != amlNameOp {
			continue
		}
		s5, err := parseS5Package(aml, i+4)
		if err == ErrNoS5 {
			continue
		}
		return s5, err
	}
	return S5{}, ErrNoS5
}

// parseS5Package reads the DefPackage at p and returns its first two integer elements. A
// package with one element holds both values packed (SLP_TYPa in bits 7:0, SLP_TYPb in 15:8),
// which firmware in the field does and ACPICA accepts.
func parseS5Package(aml []byte, p int) (S5, error) {
	if p >= len(aml) || aml[p] != amlPackageOp {
		return S5{}, ErrNoS5
	}
	p++
	pkgLen, lenBytes, ok := pkgLength(aml, p)
	if !ok || pkgLen < lenBytes+1 || pkgLen > len(aml)-p {
		return S5{}, ErrNoS5
	}
	end := p + pkgLen
	p += lenBytes
	count := int(aml[p])
	p++
	if count == 0 {
		return S5{}, ErrNoS5
	}
	var vals [2]uint64
	n := 0
	for n < 2 && n < count {
		v, size, ok := amlInteger(aml[p:end])
		if !ok {
			return S5{}, ErrNoS5
		}
		vals[n] = v
		n++
		p += size
	}
	a, b := vals[0], vals[1]
	if n == 1 {
		a, b = vals[0]&0xFF, (vals[0]>>8)&0xFF
	}
	if a > maxSleepType || b > maxSleepType {
		return S5{}, ErrBadS5
	}
	return S5{SLPTypA: uint8(a), SLPTypB: uint8(b)}, nil
}

// pkgLength decodes a PkgLength (§20.2.4) at p: bits 7:6 of the lead byte count the bytes that
// follow (0-3). With none, bits 5:0 are the length; otherwise bits 3:0 are its low nibble, bits
// 5:4 must be zero, and each following byte adds 8 more bits. The length counts its own bytes.
func pkgLength(aml []byte, p int) (length, size int, ok bool) {
	if p >= len(aml) {
		return 0, 0, false
	}
	lead := aml[p]
	follow := int(lead >> 6)
	if follow == 0 {
		return int(lead & 0x3F), 1, true
	}
	if lead&0x30 != 0 || follow > len(aml)-p-1 {
		return 0, 0, false
	}
	length = int(lead & 0x0F)
	for k := 0; k < follow; k++ {
		length |= int(aml[p+1+k]) << (4 + 8*k)
	}
	return length, 1 + follow, true
}

// amlInteger decodes an integer constant at the start of b.
func amlInteger(b []byte) (v uint64, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	need := 0
	switch b[0] {
	case amlZeroOp:
		return 0, 1, true
	case amlOneOp:
		return 1, 1, true
	case amlOnesOp:
		return ^uint64(0), 1, true
	case amlBytePrefix:
		need = 1
	case amlWordPrefix:
		need = 2
	case amlDWordPrefix:
		need = 4
	case amlQWordPrefix:
		need = 8
	default:
		return 0, 0, false
	}
	if len(b) < 1+need {
		return 0, 0, false
	}
	for k := need - 1; k >= 0; k-- {
		v = v<<8 | uint64(b[1+k])
	}
	return v, 1 + need, true
}
