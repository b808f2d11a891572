package boot

// startAPs starts the application processors listed in the MADT (added in
// the SMP step).
func startAPs() {}
