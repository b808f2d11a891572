package mbimage

// Multiboot 1 header, from "The Multiboot Specification version 0.6.96",
// section 3.1 "OS image format".
const (
	// MB1Magic identifies the header (§3.1.2 "magic").
	MB1Magic = 0x1BADB002
	// MB1Search is how far into the image a loader looks for the header
	// (§3.1.1: "contained completely within the first 8192 bytes").
	MB1Search = 8192
	// MB1Align is the header's required alignment (§3.1.1: "32-bit aligned").
	MB1Align = 4
	// MB1Size is the header length with the address fields of flag bit 16
	// (§3.1.1 table: offsets 0-28) and without the video fields of bit 2.
	MB1Size = 32

	// MB1FlagPageAlign asks for modules aligned on 4 KiB (§3.1.2 flags bit 0).
	MB1FlagPageAlign = 1 << 0
	// MB1FlagMemInfo asks for mem_lower/mem_upper and the memory map
	// (§3.1.2 flags bit 1).
	MB1FlagMemInfo = 1 << 1
	// MB1FlagAddress says the header_addr..entry_addr fields are valid and
	// the loader must use them instead of parsing the image (§3.1.2 flags
	// bit 16, the "a.out kludge"). QEMU's -kernel refuses 64-bit ELF files
	// without it.
	MB1FlagAddress = 1 << 16

	// MB1Flags is what the hypervisor image asks for.
	MB1Flags = MB1FlagPageAlign | MB1FlagMemInfo | MB1FlagAddress

	// MB1BootMagic is what EAX holds at the kernel entry (§3.2).
	MB1BootMagic = 0x2BADB002
)

// Multiboot 2 header, from "Multiboot2 Specification version 1.6",
// section 3.1 "OS image format".
const (
	// MB2Magic identifies the header (§3.1.2 "magic").
	MB2Magic = 0xE85250D6
	// MB2Search is how far into the image a loader looks (§3.1.1: "within
	// the first 32768 bytes").
	MB2Search = 32768
	// MB2Align is the header's and every tag's alignment (§3.1.1: "64-bit
	// aligned"; §3.1.3: tags are padded to 8 bytes).
	MB2Align = 8
	// MB2ArchI386 selects 32-bit protected mode entry (§3.1.2
	// "architecture": 0 means i386).
	MB2ArchI386 = 0
	// MB2FixedSize is the length of magic, architecture, header_length and
	// checksum (§3.1.2).
	MB2FixedSize = 16

	// MB2BootMagic is what EAX holds at the kernel entry (§3.3).
	MB2BootMagic = 0x36D76289
)

// Multiboot 2 header tag types (§3.1.3-3.1.10).
const (
	MB2TagEnd          = 0 // §3.1.3: type 0, size 8 ends the tag list
	MB2TagInfoRequest  = 1 // §3.1.4
	MB2TagAddress      = 2 // §3.1.5
	MB2TagEntryAddress = 3 // §3.1.6
	MB2TagModuleAlign  = 6 // §3.1.9: modules must be page aligned

	// MB2TagFlagOptional lets a loader ignore a tag it does not support
	// (§3.1.3 "flags" bit 0).
	MB2TagFlagOptional = 1 << 0
)

// Multiboot 2 boot information tag types that the kernel requests
// (§3.6 "Boot information format").
const (
	MB2InfoCmdline      = 1  // §3.6.3 "Boot command line"
	MB2InfoModule       = 3  // §3.6.6 "Modules"
	MB2InfoBasicMeminfo = 4  // §3.6.7 "Basic memory information"
	MB2InfoMmap         = 6  // §3.6.8 "Memory map"
	MB2InfoACPIOld      = 14 // §3.6.13 "ACPI old RSDP"
	MB2InfoACPINew      = 15 // §3.6.14 "ACPI new RSDP"
)

// mb2Requested lists the boot information the kernel relies on. The request
// tag is not optional (§3.1.4): a loader that does not know one of these
// types refuses the image instead of starting a kernel that fails later.
// GRUB 2.06 knows all of them and leaves out the ones the firmware lacks
// (for example the new RSDP on an ACPI 1.0 machine).
var mb2Requested = [...]uint32{
	MB2InfoCmdline,
	MB2InfoModule,
	MB2InfoBasicMeminfo,
	MB2InfoMmap,
	MB2InfoACPIOld,
	MB2InfoACPINew,
}

// MB2Requested returns the boot information tag types the image requests.
func MB2Requested() []uint32 { return append([]uint32(nil), mb2Requested[:]...) }
