package vmm

// Register values after RESET that both backends load into a new vCPU
// (Intel SDM vol. 3A 10.1.1 Table 10-1; AMD APM vol. 2 14.1.3 Table 14-1).
const (
	// ResetCR0 has CD, NW and ET set: caches disabled, protection off.
	ResetCR0 = 0x60000010
	// ResetDR6 and ResetDR7 have only their reserved-as-one bits set.
	ResetDR6 = 0xFFFF0FF0
	ResetDR7 = 0x400
	// ResetPAT is WB, WT, UC-, UC repeated (SDM 13.12.4; APM vol. 2 7.8).
	ResetPAT = 0x0007040600070406
)
