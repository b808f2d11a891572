package sim

// pageLines is the number of 64-byte lines in a 4 KiB page: the low line
// bits that virtual-to-physical translation keeps (Intel SDM Vol. 3A §4.5,
// 4-KByte pages).
const pageLines = 64

// PhysLine maps a core's virtual line address to a simulated physical line
// address. Programs in a co-run have separate address spaces that reuse the
// same virtual addresses, and an operating system hands out page frames in
// no useful order, so the page number is replaced by a hash of (core, page)
// while the line within the page is kept, as real translation does. The
// result is both the line's identity in shared caches and the source of its
// set index, which therefore spreads the way physical indexing does.
func PhysLine(core int, line uint64) uint64 {
	page := line / pageLines
	h := mix64(page ^ uint64(core+1)*0x9e3779b97f4a7c15)
	// Keep 52 bits of frame number, ample for distinct frames in any trace.
	return (h>>12)*pageLines | line%pageLines
}

// mix64 is the splitmix64 finalizer, a cheap bijective 64-bit mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
