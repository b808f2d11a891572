package acpitables

import "hv/devices/acpipm"

// FADT body offsets (§5.2.9 table 5.9), counted from the start of the
// table (the header is 36 bytes).
const (
	fadtLen          = 276
	fadtFirmwareCtrl = 36
	fadtDSDT         = 40
	fadtPMProfile    = 45
	fadtSCIInt       = 46
	fadtPM1aEvtBlk   = 56
	fadtPM1aCntBlk   = 64
	fadtPMTmrBlk     = 76
	fadtGPE0Blk      = 80
	fadtPM1EvtLen    = 88
	fadtPM1CntLen    = 89
	fadtPMTmrLen     = 91
	fadtGPE0BlkLen   = 92
	fadtPLvl2Lat     = 96
	fadtPLvl3Lat     = 98
	fadtCentury      = 108
	fadtIAPCBootArch = 109
	fadtFlags        = 112
	fadtResetReg     = 116
	fadtResetValue   = 128
	fadtMinorVersion = 131
	fadtXFirmwareCtl = 132
	fadtXDSDT        = 140
	fadtXPM1aEvtBlk  = 148
	fadtXPM1aCntBlk  = 172
	fadtXPMTmrBlk    = 208
	fadtXGPE0Blk     = 220
	fadtHypervisorID = 268

	// C2/C3 latencies above 100 and 1000 µs mean "not supported"
	// (§5.2.9 table 5.9).
	noC2Latency = 101
	noC3Latency = 1001
)

// FADT flags (§5.2.9.1 table 5.10).
const (
	FlagWBINVD      = 1 << 0
	FlagProcC1      = 1 << 2
	FlagPwrButton   = 1 << 4 // power button is a control method or absent
	FlagSlpButton   = 1 << 5 // likewise the sleep button
	FlagFixRTC      = 1 << 6 // RTC wake status not in the fixed registers
	FlagResetRegSup = 1 << 10
	FlagHWReduced   = 1 << 20

	fadtFlagsValue = FlagWBINVD | FlagProcC1 | FlagPwrButton | FlagSlpButton | FlagFixRTC | FlagResetRegSup
)

// IA-PC boot architecture flags (§5.2.9.3 table 5.11).
const (
	BootLegacyDevices = 1 << 0 // ISA devices (UART, RTC, PIT) present
	Boot8042          = 1 << 1 // set only with a PS/2 controller to probe
	BootVGANotPresent = 1 << 2
	BootMSINotSupport = 1 << 3
)

// Generic Address Structure (§5.2.3.2 table 5.1).
const (
	gasSystemIO = 1
	accessByte  = 1
	accessWord  = 2
	accessDWord = 3
	gasLen      = 12
)

func gas(space, bitWidth, access uint8, addr uint64) []byte {
	return append([]byte{space, bitWidth, 0, access}, le64(addr)...)
}

func buildFADT(cfg Config, facs, dsdt uint64) []byte {
	t := make([]byte, fadtLen)
	put := func(off int, b []byte) { copy(t[off:], b) }
	pm := uint64(cfg.PMBase)
	evt, cnt, tmr, gpe := pm+acpipm.OffPM1aEvent, pm+acpipm.OffPM1aControl, pm+acpipm.OffPMTimer, pm+acpipm.OffGPE0

	put(fadtFirmwareCtrl, le32(uint32(facs)))
	put(fadtDSDT, le32(uint32(dsdt)))
	t[fadtPMProfile] = 0 // unspecified
	put(fadtSCIInt, le16(SCIIRQ))
	// SMI_CMD, ACPI_ENABLE and ACPI_DISABLE stay 0: no legacy mode, the
	// platform is in ACPI mode from reset (acpipm powers on with SCI_EN).
	put(fadtPM1aEvtBlk, le32(uint32(evt)))
	put(fadtPM1aCntBlk, le32(uint32(cnt)))
	put(fadtPMTmrBlk, le32(uint32(tmr)))
	put(fadtGPE0Blk, le32(uint32(gpe)))
	t[fadtPM1EvtLen] = acpipm.PM1EventLen
	t[fadtPM1CntLen] = acpipm.PM1ControlLen
	t[fadtPMTmrLen] = acpipm.PMTimerLen
	t[fadtGPE0BlkLen] = acpipm.GPE0Len
	put(fadtPLvl2Lat, le16(noC2Latency))
	put(fadtPLvl3Lat, le16(noC3Latency))
	t[fadtCentury] = CenturyIndex
	boot := uint16(BootLegacyDevices | BootVGANotPresent)
	if cfg.NoMSI {
		boot |= BootMSINotSupport
	}
	put(fadtIAPCBootArch, le16(boot))
	put(fadtFlags, le32(fadtFlagsValue))
	put(fadtResetReg, gas(gasSystemIO, 8, accessByte, pm+acpipm.OffReset))
	t[fadtResetValue] = acpipm.ResetValue
	t[fadtMinorVersion] = fadtMinor
	put(fadtXFirmwareCtl, le64(facs))
	put(fadtXDSDT, le64(dsdt))
	put(fadtXPM1aEvtBlk, gas(gasSystemIO, 8*acpipm.PM1EventLen, accessWord, evt))
	put(fadtXPM1aCntBlk, gas(gasSystemIO, 8*acpipm.PM1ControlLen, accessWord, cnt))
	put(fadtXPMTmrBlk, gas(gasSystemIO, 8*acpipm.PMTimerLen, accessDWord, tmr))
	put(fadtXGPE0Blk, gas(gasSystemIO, 8*acpipm.GPE0Len, accessByte, gpe))
	put(fadtHypervisorID, []byte("HVGO\x00\x00\x00\x00"))
	return t[headerSize:]
}
