package acpi

// FADT field offsets (§5.2.9, table 5.9). The table has grown with each revision: an ACPI 1.0
// FADT (revision 1) is 116 bytes and ends after Flags; revision 2 (1.0b) added RESET_REG and
// RESET_VALUE (129 bytes); ACPI 2.0 (revision 3) added the X_ fields (244 bytes); later ones
// add SLEEP_*_REG and the hypervisor vendor ID (276 bytes). A field exists only when Length
// covers it, so ParseFADT reads through a zero-filled copy and treats zero as absent, as the
// spec itself does for the X_ fields (a zero X_ address means "use the 32-bit field").
const (
	fadtFirmwareCtrl = 36
	fadtDSDT         = 40
	fadtSCIInt       = 46
	fadtSMICmd       = 48
	fadtACPIEnable   = 52
	fadtACPIDisable  = 53
	fadtPM1aEvtBlk   = 56
	fadtPM1bEvtBlk   = 60
	fadtPM1aCntBlk   = 64
	fadtPM1bCntBlk   = 68
	fadtPMTmrBlk     = 76
	fadtPM1EvtLen    = 88
	fadtPM1CntLen    = 89
	fadtPMTmrLen     = 91
	fadtCentury      = 108
	fadtIAPCBootArch = 109
	fadtFlags        = 112
	fadtResetReg     = 116
	fadtResetValue   = 128
	fadtXFirmwareCtl = 132
	fadtXDSDT        = 140
	fadtXPM1aEvtBlk  = 148
	fadtXPM1bEvtBlk  = 160
	fadtXPM1aCntBlk  = 172
	fadtXPM1bCntBlk  = 184
	fadtXPMTmrBlk    = 208
	fadtMaxLen       = 276 // ACPI 6.5 FADT, revision 6

	fadtLenRev1     = 116 // through Flags
	fadtLenResetReg = 129 // through RESET_VALUE
	fadtRevBootArch = 3   // IAPC_BOOT_ARCH was reserved before ACPI 2.0's revision 3

	pmTimerLen = 4 // PM_TMR_LEN must be 4 (§5.2.9 table 5.9)
)

// FADT fixed feature flags (§5.2.9 table 5.10).
const (
	FADTWBINVD         = 1 << 0
	FADTProcC1         = 1 << 2
	FADTPowerButton    = 1 << 4
	FADTSleepButton    = 1 << 5
	FADTFixRTC         = 1 << 6
	FADTTimerValExt    = 1 << 8 // TMR_VAL_EXT: the PM timer is 32 bits wide, else 24
	FADTResetRegSup    = 1 << 10
	FADTHeadless       = 1 << 12
	FADTHWReducedACPI  = 1 << 20
	FADTLowPowerS0Idle = 1 << 21
)

// IA-PC boot architecture flags (§5.2.9.3 table 5.11).
const (
	BootArchLegacyDevices = 1 << 0
	BootArch8042          = 1 << 1
	BootArchVGANotPresent = 1 << 2
	BootArchMSINotSupport = 1 << 3
	BootArchNoCMOSRTC     = 1 << 5
)

// Address space IDs of a Generic Address Structure (§5.2.3.2 table 5.2).
const (
	SpaceSystemMemory = 0
	SpaceSystemIO     = 1
	SpacePCIConfig    = 2
)

// GAS is a Generic Address Structure (§5.2.3.2): where a register is and how to access it.
type GAS struct {
	SpaceID    uint8
	BitWidth   uint8
	BitOffset  uint8
	AccessSize uint8 // 0 undefined (legacy), 1 byte, 2 word, 3 dword, 4 qword
	Address    uint64
}

// Present reports whether the register exists.
func (g GAS) Present() bool { return g.Address != 0 }

func parseGAS(b []byte) GAS {
	return GAS{SpaceID: b[0], BitWidth: b[1], BitOffset: b[2], AccessSize: b[3], Address: le64(b[4:])}
}

// FADT is what the platform needs from the Fixed ACPI Description Table. Register blocks are
// given as GAS whether the table had the 64-bit X_ form or only the 32-bit I/O port form.
type FADT struct {
	Revision uint8
	Length   uint32

	FirmwareCtrl uint64
	DSDT         uint64

	SCIInterrupt uint16
	SMICommand   uint32
	ACPIEnable   uint8
	ACPIDisable  uint8

	PM1aEvent, PM1bEvent     GAS
	PM1aControl, PM1bControl GAS
	// PMTimer is absent on hardware-reduced platforms and when PM_TMR_LEN is not 4.
	PMTimer GAS

	// Century is the CMOS RTC index of the century byte, 0 when there is none.
	Century uint8
	// BootArch is IAPC_BOOT_ARCH, zero before revision 3.
	BootArch uint16
	Flags    uint32

	// Reset and ResetValue are valid when HasReset: write ResetValue to Reset to reset the
	// machine (§4.8.3.6).
	Reset      GAS
	ResetValue uint8
	HasReset   bool
}

// PMTimerBits returns the PM timer's counter width: 32 with TMR_VAL_EXT, else 24.
func (f *FADT) PMTimerBits() int {
	if f.Flags&FADTTimerValExt != 0 {
		return 32
	}
	return 24
}

// HardwareReduced reports HW_REDUCED_ACPI: no PM1 blocks, no PM timer, no SCI_EN.
func (f *FADT) HardwareReduced() bool { return f.Flags&FADTHWReducedACPI != 0 }

// ParseFADT parses a FADT (as returned by Load) into out.
func ParseFADT(table []byte, out *FADT) error {
	*out = FADT{}
	t, err := checkHeader(table, SigFADT)
	if err != nil {
		return err
	}
	// Fields beyond Length read as zero, which means "absent" for every field we use.
	var b [fadtMaxLen]byte
	copy(b[:], t)
	out.Revision = t[headerRevision]
	out.Length = uint32(len(t))

	out.FirmwareCtrl = uint64(le32(b[fadtFirmwareCtrl:]))
	if x := le64(b[fadtXFirmwareCtl:]); x != 0 {
		out.FirmwareCtrl = x
	}
	out.DSDT = uint64(le32(b[fadtDSDT:]))
	if x := le64(b[fadtXDSDT:]); x != 0 {
		out.DSDT = x
	}
	out.SCIInterrupt = le16(b[fadtSCIInt:])
	out.SMICommand = le32(b[fadtSMICmd:])
	out.ACPIEnable = b[fadtACPIEnable]
	out.ACPIDisable = b[fadtACPIDisable]
	out.Century = b[fadtCentury]
	out.Flags = le32(b[fadtFlags:])
	if out.Revision >= fadtRevBootArch {
		out.BootArch = le16(b[fadtIAPCBootArch:])
	}

	evtLen, cntLen := b[fadtPM1EvtLen], b[fadtPM1CntLen]
	out.PM1aEvent = block(b[:], fadtXPM1aEvtBlk, fadtPM1aEvtBlk, evtLen)
	out.PM1bEvent = block(b[:], fadtXPM1bEvtBlk, fadtPM1bEvtBlk, evtLen)
	out.PM1aControl = block(b[:], fadtXPM1aCntBlk, fadtPM1aCntBlk, cntLen)
	out.PM1bControl = block(b[:], fadtXPM1bCntBlk, fadtPM1bCntBlk, cntLen)
	if b[fadtPMTmrLen] == pmTimerLen || le64(b[fadtXPMTmrBlk+4:]) != 0 {
		out.PMTimer = block(b[:], fadtXPMTmrBlk, fadtPMTmrBlk, pmTimerLen)
	}

	if len(t) >= fadtLenResetReg && out.Flags&FADTResetRegSup != 0 {
		out.Reset = parseGAS(b[fadtResetReg:])
		out.ResetValue = b[fadtResetValue]
		sp := out.Reset.SpaceID
		out.HasReset = out.Reset.Present() &&
			(sp == SpaceSystemIO || sp == SpaceSystemMemory || sp == SpacePCIConfig)
	}
	return nil
}

// block returns a register block as a GAS: the X_ form when it has an address (§5.2.9: "if
// this field contains a non-zero value ... OSPM must use it"), else the 32-bit port number
// with the width from its _LEN field, in system I/O space.
func block(b []byte, xOff, legacyOff int, legacyLen uint8) GAS {
	g := parseGAS(b[xOff:])
	if g.Address != 0 {
		if g.BitWidth == 0 {
			// Some firmware leaves the X_ width zero; the _LEN field still holds it.
			g.BitWidth = legacyLen * 8
		}
		return g
	}
	addr := uint64(le32(b[legacyOff:]))
	if addr == 0 {
		return GAS{}
	}
	return GAS{SpaceID: SpaceSystemIO, BitWidth: legacyLen * 8, Address: addr}
}
