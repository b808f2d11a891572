// Package pxedhcp decides what the PXE server answers to a DHCP packet: the
// boot file for the client's architecture (RFC 4578 option 93) and
// firmware, the PXE vendor options, an address from the pool in full DHCP
// mode, or none in proxyDHCP mode, beside a lab's own DHCP server (PXE
// specification 2.1, ProxyDHCP on ports 67 and 4011).
//
// It is pure logic on parsed packets (github.com/insomniacslk/dhcp/dhcpv4):
// it opens no sockets and reads no files, so every answer is unit-tested.
// Package hv/tools/pxeserver owns the sockets and the logging.
package pxedhcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Ports: a DHCP server listens on 67; a ProxyDHCP server also on 4011, where
// PXE clients send their DHCPREQUEST for boot information (PXE 2.1, 2.2.3).
const (
	ServerPort = 67
	ClientPort = 68
	PXEPort    = 4011
)

// Vendor classes (option 60) of network boot clients and of our answers to
// them: "PXEClient:Arch:xxxxx:UNDI:yyyzzz" for PXE, "HTTPClient:..." for
// UEFI HTTP boot (UEFI 2.x, 24.7).
const (
	PXEClass  = "PXEClient"
	HTTPClass = "HTTPClient"
)

// optIPXE is iPXE's encapsulated option space (175); iPXE also sends user
// class (77) "iPXE". Either marks a client that already runs iPXE.
const optIPXE = 175

// PXE vendor option 43 sub-option PXE_DISCOVERY_CONTROL (PXE 2.1, table
// 2-1): bit 3 tells the client to download the boot file named in this
// offer without boot server discovery or a menu.
const (
	pxeDiscoveryControl  = 6
	discoveryUseBootFile = 1 << 3
)

// Client is what a request tells about its sender.
type Client struct {
	MAC net.HardwareAddr
	// Arch is option 93's first value; HasArch is false without one.
	Arch    iana.Arch
	HasArch bool
	// Class is option 60's prefix: PXEClass, HTTPClass or "".
	Class string
	// IPXE: the client already runs iPXE (user class "iPXE" or option 175).
	IPXE bool
}

// Describe reads the client's identity from a request.
func Describe(req *dhcpv4.DHCPv4) Client {
	c := Client{MAC: req.ClientHWAddr}
	if a := req.ClientArch(); len(a) > 0 {
		c.Arch, c.HasArch = a[0], true
	}
	switch vc := req.ClassIdentifier(); {
	case strings.HasPrefix(vc, PXEClass):
		c.Class = PXEClass
	case strings.HasPrefix(vc, HTTPClass):
		c.Class = HTTPClass
	}
	uc := req.Options.Get(dhcpv4.OptionUserClassInformation)
	c.IPXE = bytes.Contains(uc, []byte("iPXE")) || req.Options.Has(dhcpv4.GenericOptionCode(optIPXE))
	return c
}

// NetBoot reports whether the client asks to boot from the network: a PXE or
// HTTP boot firmware, or iPXE.
func (c Client) NetBoot() bool { return c.Class != "" || c.IPXE }

// String is the client as the log shows it.
func (c Client) String() string {
	var b strings.Builder
	b.WriteString(c.MAC.String())
	if c.HasArch {
		fmt.Fprintf(&b, " arch %d (%s)", uint16(c.Arch), ArchName(c.Arch))
	} else {
		b.WriteString(" arch none")
	}
	if c.Class != "" {
		b.WriteString(" " + c.Class)
	}
	if c.IPXE {
		b.WriteString(" iPXE")
	}
	return b.String()
}

// ArchName names the architectures the server knows.
func ArchName(a iana.Arch) string {
	switch a {
	case iana.INTEL_X86PC:
		return "BIOS"
	case iana.EFI_IA32:
		return "UEFI IA32"
	case iana.EFI_X86_64, iana.EFI_BC:
		return "UEFI x86-64"
	case iana.EFI_X86_64_HTTP:
		return "UEFI x86-64 HTTP"
	}
	return "unsupported"
}

// BootFiles are what the server hands out (names in the served directory,
// or a URL for the script).
type BootFiles struct {
	BIOS   string // plain PXE BIOS firmware: "undionly.kpxe"
	UEFI   string // UEFI x86-64 firmware: "ipxe.efi"
	Script string // iPXE: the script's full URL, e.g. "http://10.0.0.1/boot.ipxe"
	// HTTPBase is the URL the served directory has over HTTP (no trailing
	// slash), for UEFI HTTP boot clients.
	HTTPBase string
}

// ErrUnsupported is returned for a client the served files cannot boot.
var ErrUnsupported = errors.New("no boot file for this client")

// BootFile picks the boot file for a client and the vendor class the answer
// carries. iPXE gets the script whatever its platform (the script itself
// branches on it): handing it ipxe.efi or undionly.kpxe again would loop.
// A plain firmware gets the iPXE build for its architecture: 0 (BIOS) the
// UNDI loader, 7 or 9 (x86-64 UEFI) ipxe.efi over TFTP, 16 (x86-64 UEFI
// HTTP boot) ipxe.efi by URL. A PXE client without option 93 is taken for a
// BIOS, as PXE 2.1 clients predating RFC 4578 are.
func BootFile(c Client, f BootFiles) (file, class string, err error) {
	if c.IPXE {
		class = c.Class
		if class == "" {
			class = PXEClass
		}
		return f.Script, class, nil
	}
	switch {
	case c.Class == HTTPClass && c.HasArch && c.Arch == iana.EFI_X86_64_HTTP:
		return f.HTTPBase + "/" + f.UEFI, HTTPClass, nil
	case c.Class == PXEClass && (!c.HasArch || c.Arch == iana.INTEL_X86PC):
		return f.BIOS, PXEClass, nil
	case c.Class == PXEClass && (c.Arch == iana.EFI_X86_64 || c.Arch == iana.EFI_BC):
		return f.UEFI, PXEClass, nil
	}
	return "", "", fmt.Errorf("%w (%s)", ErrUnsupported, c)
}

// Mode is full DHCP (the server hands out addresses) or ProxyDHCP (another
// server does; this one only adds boot information).
type Mode int

const (
	Full Mode = iota
	Proxy
)

func (m Mode) String() string {
	if m == Proxy {
		return "proxyDHCP"
	}
	return "DHCP"
}

// Config is the server's side of every answer.
type Config struct {
	Mode     Mode
	ServerIP netip.Addr // the interface's address: server identifier, next-server
	Files    BootFiles
	// Full mode only: the interface's subnet, the pool, and the lease time.
	Subnet    netip.Prefix
	Pool      Range
	Router    netip.Addr // optional option 3
	LeaseTime time.Duration
}

// Range is an inclusive range of IPv4 addresses.
type Range struct{ First, Last netip.Addr }

func (r Range) String() string { return r.First.String() + "-" + r.Last.String() }

// ParseRange parses "FIRST-LAST" and checks it against the interface's
// subnet and address: both ends IPv4 in the subnet, in order, not the
// subnet's network or broadcast address, and not including the server.
func ParseRange(s string, subnet netip.Prefix, server netip.Addr) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Range{}, fmt.Errorf("address range %q: want FIRST-LAST, e.g. 10.0.0.100-10.0.0.199", s)
	}
	var r Range
	var err error
	if r.First, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil || !r.First.Is4() {
		return Range{}, fmt.Errorf("address range %q: %q is not an IPv4 address", s, a)
	}
	if r.Last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil || !r.Last.Is4() {
		return Range{}, fmt.Errorf("address range %q: %q is not an IPv4 address", s, b)
	}
	subnet = subnet.Masked()
	if !subnet.Contains(r.First) || !subnet.Contains(r.Last) {
		return Range{}, fmt.Errorf("address range %s is not inside the interface's subnet %s", r, subnet)
	}
	if r.Last.Less(r.First) {
		return Range{}, fmt.Errorf("address range %s ends before it starts", r)
	}
	if subnet.Bits() <= 30 {
		if r.First == subnet.Addr() {
			return Range{}, fmt.Errorf("address range %s includes the subnet's network address %s", r, subnet.Addr())
		}
		if bc := broadcast(subnet); r.Last == bc {
			return Range{}, fmt.Errorf("address range %s includes the subnet's broadcast address %s", r, bc)
		}
	}
	if r.Contains(server) {
		return Range{}, fmt.Errorf("address range %s includes the server's own address %s", r, server)
	}
	return r, nil
}

// Contains reports whether a lies in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() && !a.Less(r.First) && !r.Last.Less(a)
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// Validate checks a configuration before the server starts.
func (c Config) Validate() error {
	if !c.ServerIP.Is4() {
		return fmt.Errorf("server address %v is not IPv4", c.ServerIP)
	}
	if c.Files.BIOS == "" || c.Files.UEFI == "" || c.Files.Script == "" {
		return fmt.Errorf("boot files: BIOS, UEFI and script are all needed")
	}
	if c.Mode == Full {
		if !c.Subnet.IsValid() || !c.Subnet.Contains(c.ServerIP) {
			return fmt.Errorf("subnet %v does not hold the server's address %v", c.Subnet, c.ServerIP)
		}
		if !c.Pool.First.IsValid() {
			return fmt.Errorf("full DHCP needs an address range")
		}
		if c.LeaseTime <= 0 {
			return fmt.Errorf("lease time %v: must be positive", c.LeaseTime)
		}
	}
	return nil
}

// Server answers DHCP packets; it keeps the leases of full mode.
type Server struct {
	cfg    Config
	mu     sync.Mutex
	leases map[string]netip.Addr // by MAC
	now    func() time.Time
	expiry map[netip.Addr]time.Time
}

// NewServer checks cfg and returns a server with no leases.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pxedhcp: %w", err)
	}
	return &Server{cfg: cfg, leases: map[string]netip.Addr{}, expiry: map[netip.Addr]time.Time{}, now: time.Now}, nil
}

// Decision is what the server did with one packet, for the log.
type Decision struct {
	Client Client
	Type   dhcpv4.MessageType // the request's
	Reply  dhcpv4.MessageType // MessageTypeNone: no answer
	Addr   netip.Addr         // the address given (full mode)
	File   string             // the boot file given
	Why    string             // why there is no answer, or a note
}

func (d Decision) String() string {
	s := fmt.Sprintf("%s %s", d.Client, d.Type)
	if d.Reply == dhcpv4.MessageTypeNone {
		return s + ": ignored: " + d.Why
	}
	s += " -> " + d.Reply.String()
	if d.Addr.IsValid() {
		s += " " + d.Addr.String()
	}
	if d.File != "" {
		s += " file " + d.File
	}
	if d.Why != "" {
		s += " (" + d.Why + ")"
	}
	return s
}

// Reply answers req, which arrived on port (ServerPort or PXEPort). It
// returns nil when there is nothing to send, and the decision either way.
func (s *Server) Reply(req *dhcpv4.DHCPv4, port int) (*dhcpv4.DHCPv4, Decision) {
	d := Decision{Client: Describe(req), Type: req.MessageType()}
	ignore := func(why string) (*dhcpv4.DHCPv4, Decision) {
		d.Why = why
		return nil, d
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return ignore("not a BOOTREQUEST")
	}
	if len(req.ClientHWAddr) != 6 || req.HWType != iana.HWTypeEthernet {
		return ignore("not an Ethernet client")
	}
	if port == PXEPort {
		return s.replyPXE(req, d)
	}
	if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(s.cfg.ServerIP.AsSlice())) &&
		d.Type == dhcpv4.MessageTypeRequest {
		// The client chose another server's offer.
		if s.cfg.Mode == Full {
			s.release(d.Client.MAC)
		}
		return ignore("the client chose server " + sid.String())
	}
	if s.cfg.Mode == Proxy {
		return s.replyProxy(req, d)
	}
	return s.replyFull(req, d)
}

// bootOptions adds the boot file, next-server and vendor class for a
// network boot client to reply, and records them in d. It returns false if
// the client cannot be booted.
func (s *Server) bootOptions(reply *dhcpv4.DHCPv4, d *Decision, proxy bool) bool {
	file, class, err := BootFile(d.Client, s.cfg.Files)
	if err != nil {
		d.Why = err.Error()
		return false
	}
	d.File = file
	reply.ServerIPAddr = net.IP(s.cfg.ServerIP.AsSlice())
	reply.BootFileName = file
	reply.UpdateOption(dhcpv4.OptBootFileName(file))
	reply.UpdateOption(dhcpv4.OptTFTPServerName(s.cfg.ServerIP.String()))
	reply.UpdateOption(dhcpv4.OptClassIdentifier(class))
	if proxy && class == PXEClass {
		// PXE 2.1 wants option 43 in a ProxyDHCP answer; this one
		// says "boot the file in this packet, no discovery, no menu".
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation,
			[]byte{pxeDiscoveryControl, 1, discoveryUseBootFile, 255}))
	}
	return true
}

func (s *Server) newReply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	r, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(s.cfg.ServerIP.AsSlice()))))
	if err != nil {
		panic(err) // NewReplyFromRequest only fails without randomness, which a reply does not use
	}
	// A relay forwards the answer; keep its address and hop count.
	r.GatewayIPAddr = req.GatewayIPAddr
	// UEFI PXE firmware (EDK2) wants its GUID option echoed (PXE 2.1).
	if uuid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); uuid != nil {
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid))
	}
	return r
}

// replyProxy: a ProxyDHCP server answers only network boot clients, only
// their DISCOVER (and INFORM), with no address.
func (s *Server) replyProxy(req *dhcpv4.DHCPv4, d Decision) (*dhcpv4.DHCPv4, Decision) {
	if !d.Client.NetBoot() {
		d.Why = "not a network boot client (proxyDHCP answers only those)"
		return nil, d
	}
	var t dhcpv4.MessageType
	switch d.Type {
	case dhcpv4.MessageTypeDiscover:
		t = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeInform:
		t = dhcpv4.MessageTypeAck
	default:
		d.Why = "the lab's DHCP server answers " + d.Type.String() + " (proxyDHCP)"
		return nil, d
	}
	reply := s.newReply(req, t)
	reply.YourIPAddr = net.IPv4zero
	if !s.bootOptions(reply, &d, true) {
		return nil, d
	}
	d.Reply = t
	return reply, d
}

// replyPXE answers on port 4011: the client has its address from whichever
// DHCP server and asks for boot information with a REQUEST (or INFORM);
// the answer is an ACK without an address, sent back to it.
func (s *Server) replyPXE(req *dhcpv4.DHCPv4, d Decision) (*dhcpv4.DHCPv4, Decision) {
	if d.Type != dhcpv4.MessageTypeRequest && d.Type != dhcpv4.MessageTypeInform {
		d.Why = "port 4011 takes REQUEST and INFORM only"
		return nil, d
	}
	if !d.Client.NetBoot() {
		d.Why = "not a network boot client"
		return nil, d
	}
	reply := s.newReply(req, dhcpv4.MessageTypeAck)
	reply.YourIPAddr = net.IPv4zero
	reply.ClientIPAddr = req.ClientIPAddr
	if !s.bootOptions(reply, &d, true) {
		return nil, d
	}
	d.Reply = dhcpv4.MessageTypeAck
	return reply, d
}

// replyFull: a full DHCP server offers and acknowledges addresses from its
// pool to every client, and adds boot information for network boot
// clients.
func (s *Server) replyFull(req *dhcpv4.DHCPv4, d Decision) (*dhcpv4.DHCPv4, Decision) {
	mac := d.Client.MAC
	var t dhcpv4.MessageType
	var addr netip.Addr
	switch d.Type {
	case dhcpv4.MessageTypeDiscover:
		a, ok := s.lease(mac, requested(req))
		if !ok {
			d.Why = "address pool " + s.cfg.Pool.String() + " exhausted"
			return nil, d
		}
		t, addr = dhcpv4.MessageTypeOffer, a
	case dhcpv4.MessageTypeRequest:
		want := requested(req)
		if !want.IsValid() {
			want, _ = netip.AddrFromSlice(req.ClientIPAddr.To4()) // renewing
		}
		a, ok := s.lease(mac, want)
		if !ok || a != want {
			// Not an address this server gives that client: NAK so it
			// starts over (RFC 2131 4.3.2).
			reply := s.newReply(req, dhcpv4.MessageTypeNak)
			reply.YourIPAddr = net.IPv4zero
			d.Reply, d.Why = dhcpv4.MessageTypeNak, fmt.Sprintf("requested %v, not ours to give", want)
			return reply, d
		}
		t, addr = dhcpv4.MessageTypeAck, a
	case dhcpv4.MessageTypeInform:
		t = dhcpv4.MessageTypeAck
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		s.release(mac)
		d.Why = "lease released"
		return nil, d
	default:
		d.Why = "message type not handled"
		return nil, d
	}
	reply := s.newReply(req, t)
	if addr.IsValid() {
		reply.YourIPAddr = net.IP(addr.AsSlice())
		reply.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(s.cfg.Subnet.Bits(), 32)))
		reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(s.cfg.LeaseTime))
		if s.cfg.Router.IsValid() {
			reply.UpdateOption(dhcpv4.OptRouter(net.IP(s.cfg.Router.AsSlice())))
		}
	} else {
		reply.YourIPAddr = net.IPv4zero
		reply.ClientIPAddr = req.ClientIPAddr
	}
	d.Reply, d.Addr = t, addr
	if d.Client.NetBoot() {
		if !s.bootOptions(reply, &d, false) {
			// Still give the address: the client may boot from
			// elsewhere; the log says why there is no file.
			d.File = ""
		}
	} else {
		// Not a boot client, but next-server helps loaders that ask
		// DHCP themselves (GRUB's net_bootp) find this server.
		reply.ServerIPAddr = net.IP(s.cfg.ServerIP.AsSlice())
	}
	return reply, d
}

func requested(req *dhcpv4.DHCPv4) netip.Addr {
	a, _ := netip.AddrFromSlice(req.RequestedIPAddress().To4())
	return a
}

// lease returns the client's address: its current lease, else want if free
// and in the pool, else the first free address. Leases last LeaseTime from
// their last offer or acknowledgement.
func (s *Server) lease(mac net.HardwareAddr, want netip.Addr) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	key := mac.String()
	taken := func(a netip.Addr) bool {
		exp, ok := s.expiry[a]
		return ok && now.Before(exp) && s.leases[key] != a
	}
	give := func(a netip.Addr) (netip.Addr, bool) {
		if old, ok := s.leases[key]; ok && old != a {
			delete(s.expiry, old)
		}
		s.leases[key] = a
		s.expiry[a] = now.Add(s.cfg.LeaseTime)
		return a, true
	}
	if a, ok := s.leases[key]; ok && (!want.IsValid() || want == a) {
		return give(a)
	}
	if want.IsValid() && s.cfg.Pool.Contains(want) && !taken(want) {
		return give(want)
	}
	for a := s.cfg.Pool.First; s.cfg.Pool.Contains(a); a = a.Next() {
		if !taken(a) {
			return give(a)
		}
	}
	return netip.Addr{}, false
}

func (s *Server) release(mac net.HardwareAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.leases[mac.String()]; ok {
		delete(s.expiry, a)
		delete(s.leases, mac.String())
	}
}

// LeaseOf returns the MAC holding an address, for logging the file
// requests of a client by its MAC.
func (s *Server) LeaseOf(a netip.Addr) (net.HardwareAddr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for mac, l := range s.leases {
		if l == a {
			hw, err := net.ParseMAC(mac)
			return hw, err == nil
		}
	}
	return nil, false
}

// Destination is where a reply to a request that arrived from peer on
// port goes (RFC 2131 4.1): through the relay if there is one; to the
// client's address when it has one or asked on port 4011; otherwise
// broadcast on the interface, since the client has no address yet.
func Destination(req *dhcpv4.DHCPv4, peer *net.UDPAddr, port int) *net.UDPAddr {
	switch {
	case req.GatewayIPAddr != nil && !req.GatewayIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: ServerPort}
	case port == PXEPort && peer != nil && !peer.IP.IsUnspecified():
		return peer
	case req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
}
