package pxedhcp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	serverIP = netip.MustParseAddr("10.33.0.1")
	files    = BootFiles{BIOS: "undionly.kpxe", UEFI: "ipxe.efi", Script: "http://10.33.0.1/boot.ipxe", HTTPBase: "http://10.33.0.1"}
	mac1     = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	mac2     = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x57}
)

func config(mode Mode) Config {
	return Config{
		Mode: mode, ServerIP: serverIP, Files: files,
		Subnet:    netip.MustParsePrefix("10.33.0.0/24"),
		Pool:      Range{netip.MustParseAddr("10.33.0.100"), netip.MustParseAddr("10.33.0.101")},
		LeaseTime: time.Hour,
	}
}

func server(t *testing.T, mode Mode) *Server {
	t.Helper()
	s, err := NewServer(config(mode))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Clients as they look on the wire.
type client struct {
	class string // option 60
	arch  *iana.Arch
	ipxe  string // "uc": user class iPXE; "175": option 175; "": neither
}

func arch(a iana.Arch) *iana.Arch { return &a }

var (
	biosPXE  = client{class: "PXEClient:Arch:00000:UNDI:002001", arch: arch(iana.INTEL_X86PC)}
	uefiPXE  = client{class: "PXEClient:Arch:00007:UNDI:003016", arch: arch(iana.EFI_X86_64)}
	uefiBC   = client{class: "PXEClient:Arch:00009:UNDI:003016", arch: arch(iana.EFI_BC)}
	uefiIA32 = client{class: "PXEClient:Arch:00006:UNDI:003016", arch: arch(iana.EFI_IA32)}
	arm64    = client{class: "PXEClient:Arch:00011:UNDI:003016", arch: arch(iana.EFI_ARM64)}
	oldPXE   = client{class: "PXEClient:Arch:00000:UNDI:002001"} // no option 93
	httpBoot = client{class: "HTTPClient:Arch:00016:UNDI:003001", arch: arch(iana.EFI_X86_64_HTTP)}
	// A NIC's iPXE ROM under SeaBIOS, and ipxe.efi after the chain.
	ipxeBIOS = client{class: "PXEClient:Arch:00000:UNDI:002001", arch: arch(iana.INTEL_X86PC), ipxe: "uc"}
	ipxeEFI  = client{class: "PXEClient:Arch:00007:UNDI:003010", arch: arch(iana.EFI_X86_64), ipxe: "175"}
	plain    = client{} // an operating system's DHCP client
)

func request(t testing.TB, c client, mac net.HardwareAddr, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m := []dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(typ)}
	if c.class != "" {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(c.class)))
	}
	if c.arch != nil {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptClientArch(*c.arch)))
	}
	switch c.ipxe {
	case "uc":
		m = append(m, dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))
	case "175":
		m = append(m, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{1, 1, 1}))
	}
	req, err := dhcpv4.New(append(m, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire format, as the server sees it.
	req, err = dhcpv4.FromBytes(req.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// wire sends a reply through its wire format.
func wire(t *testing.T, r *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	if r == nil {
		return nil
	}
	back, err := dhcpv4.FromBytes(r.ToBytes())
	if err != nil {
		t.Fatalf("reply does not parse back: %v", err)
	}
	return back
}

func TestBootFileByArchitecture(t *testing.T) {
	tests := []struct {
		name      string
		c         client
		wantFile  string
		wantClass string
	}{
		{"BIOS PXE (arch 0)", biosPXE, "undionly.kpxe", PXEClass},
		{"PXE without option 93", oldPXE, "undionly.kpxe", PXEClass},
		{"UEFI x86-64 (arch 7)", uefiPXE, "ipxe.efi", PXEClass},
		{"UEFI x86-64 (arch 9)", uefiBC, "ipxe.efi", PXEClass},
		{"UEFI HTTP boot (arch 16)", httpBoot, "http://10.33.0.1/ipxe.efi", HTTPClass},
		// iPXE gets the script on either platform: handing it iPXE
		// again would loop.
		{"iPXE BIOS ROM (user class)", ipxeBIOS, "http://10.33.0.1/boot.ipxe", PXEClass},
		{"iPXE EFI (option 175)", ipxeEFI, "http://10.33.0.1/boot.ipxe", PXEClass},
		{"UEFI IA32 (arch 6)", uefiIA32, "", ""},
		{"UEFI ARM64 (arch 11)", arm64, "", ""},
		{"no network boot", plain, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Describe(request(t, tt.c, mac1, dhcpv4.MessageTypeDiscover))
			file, class, err := BootFile(c, files)
			if tt.wantFile == "" {
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("BootFile(%s) = %q, %v; want ErrUnsupported", c, file, err)
				}
				return
			}
			if err != nil || file != tt.wantFile || class != tt.wantClass {
				t.Errorf("BootFile(%s) = %q, %q, %v; want %q, %q", c, file, class, err, tt.wantFile, tt.wantClass)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	c := Describe(request(t, ipxeEFI, mac1, dhcpv4.MessageTypeDiscover))
	if !c.IPXE || !c.HasArch || c.Arch != iana.EFI_X86_64 || c.Class != PXEClass || !bytes.Equal(c.MAC, mac1) {
		t.Errorf("Describe = %+v", c)
	}
	if got, want := c.String(), "52:54:00:12:34:56 arch 7 (UEFI x86-64) PXEClient iPXE"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	// RFC 3004 form of the user class (length-prefixed) is recognized too.
	req := request(t, plain, mac1, dhcpv4.MessageTypeDiscover, dhcpv4.WithOption(dhcpv4.OptRFC3004UserClass([]string{"iPXE"})))
	if !Describe(req).IPXE {
		t.Errorf("RFC 3004 user class iPXE not recognized")
	}
	if c := Describe(request(t, plain, mac1, dhcpv4.MessageTypeDiscover)); c.NetBoot() || c.String() != "52:54:00:12:34:56 arch none" {
		t.Errorf("plain client = %s, netboot %v", c, c.NetBoot())
	}
}

func TestFullDHCP(t *testing.T) {
	s := server(t, Full)
	offer, d := s.Reply(request(t, biosPXE, mac1, dhcpv4.MessageTypeDiscover), ServerPort)
	offer = wire(t, offer)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no offer: %s", d)
	}
	if got := offer.YourIPAddr.String(); got != "10.33.0.100" {
		t.Errorf("yiaddr %s, want 10.33.0.100", got)
	}
	if offer.BootFileName != "undionly.kpxe" || offer.BootFileNameOption() != "undionly.kpxe" {
		t.Errorf("boot file %q / option 67 %q", offer.BootFileName, offer.BootFileNameOption())
	}
	if !offer.ServerIPAddr.Equal(net.IP(serverIP.AsSlice())) || !offer.ServerIdentifier().Equal(net.IP(serverIP.AsSlice())) {
		t.Errorf("next-server %v, server id %v", offer.ServerIPAddr, offer.ServerIdentifier())
	}
	if offer.ClassIdentifier() != PXEClass {
		t.Errorf("option 60 %q, want PXEClient", offer.ClassIdentifier())
	}
	if offer.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		t.Errorf("full DHCP offer carries option 43: the client would start boot server discovery")
	}
	if got := net.IP(offer.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("subnet mask %s", got)
	}
	if got := offer.IPAddressLeaseTime(0); got != time.Hour {
		t.Errorf("lease time %v", got)
	}
	if d.String() != "52:54:00:12:34:56 arch 0 (BIOS) PXEClient DISCOVER -> OFFER 10.33.0.100 file undionly.kpxe" {
		t.Errorf("decision %q", d)
	}

	// The client requests what it was offered.
	ack, d := s.Reply(request(t, biosPXE, mac1, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.33.0.100"))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(serverIP.AsSlice())))), ServerPort)
	ack = wire(t, ack)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.33.0.100" || ack.BootFileName != "undionly.kpxe" {
		t.Fatalf("request: %s", d)
	}
	if mac, ok := s.LeaseOf(netip.MustParseAddr("10.33.0.100")); !ok || !bytes.Equal(mac, mac1) {
		t.Errorf("LeaseOf = %v, %v", mac, ok)
	}

	// A second client gets the other address; a third finds the pool empty.
	offer2, _ := s.Reply(request(t, uefiPXE, mac2, dhcpv4.MessageTypeDiscover), ServerPort)
	if offer2 == nil || offer2.YourIPAddr.String() != "10.33.0.101" || offer2.BootFileName != "ipxe.efi" {
		t.Fatalf("second client: %v", offer2)
	}
	third, d := s.Reply(request(t, plain, net.HardwareAddr{2, 0, 0, 0, 0, 3}, dhcpv4.MessageTypeDiscover), ServerPort)
	if third != nil || !strings.Contains(d.Why, "exhausted") {
		t.Errorf("third client: %v, %s", third, d)
	}
	// The first one asks again (iPXE after the chain): same address.
	again, _ := s.Reply(request(t, ipxeBIOS, mac1, dhcpv4.MessageTypeDiscover), ServerPort)
	if again == nil || again.YourIPAddr.String() != "10.33.0.100" || again.BootFileName != files.Script {
		t.Errorf("iPXE after the chain: %v", again)
	}
	// Released addresses are free again.
	s.Reply(request(t, uefiPXE, mac2, dhcpv4.MessageTypeRelease), ServerPort)
	if third, d := s.Reply(request(t, plain, net.HardwareAddr{2, 0, 0, 0, 0, 3}, dhcpv4.MessageTypeDiscover), ServerPort); third == nil || third.YourIPAddr.String() != "10.33.0.101" {
		t.Errorf("after release: %s", d)
	}
}

func TestFullDHCPRequests(t *testing.T) {
	s := server(t, Full)
	// An address outside the pool, or a lease someone else holds: NAK.
	nak, d := s.Reply(request(t, plain, mac1, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("192.168.1.5")))), ServerPort)
	if nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak || !nak.YourIPAddr.IsUnspecified() {
		t.Errorf("request for a foreign address: %s", d)
	}
	// A request to another server: ignored.
	other, d := s.Reply(request(t, plain, mac1, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.33.0.100"))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.33.0.2")))), ServerPort)
	if other != nil || !strings.Contains(d.Why, "10.33.0.2") {
		t.Errorf("request to another server: %v, %s", other, d)
	}
	// A plain client gets an address and next-server, no boot file.
	ack, d := s.Reply(request(t, plain, mac1, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.33.0.101")))), ServerPort)
	if ack == nil || ack.YourIPAddr.String() != "10.33.0.101" || ack.BootFileName != "" || ack.Options.Has(dhcpv4.OptionClassIdentifier) {
		t.Errorf("plain client: %s", d)
	}
	if !ack.ServerIPAddr.Equal(net.IP(serverIP.AsSlice())) {
		t.Errorf("plain client's next-server %v", ack.ServerIPAddr)
	}
	// An unsupported architecture gets an address and no file.
	offer, d := s.Reply(request(t, arm64, mac2, dhcpv4.MessageTypeDiscover), ServerPort)
	if offer == nil || offer.BootFileName != "" || !strings.Contains(d.Why, "no boot file") {
		t.Errorf("ARM64 client: %s", d)
	}
	// Not a request at all.
	reply := request(t, biosPXE, mac1, dhcpv4.MessageTypeDiscover)
	reply.OpCode = dhcpv4.OpcodeBootReply
	if r, _ := s.Reply(reply, ServerPort); r != nil {
		t.Errorf("answered a BOOTREPLY")
	}
}

func TestProxyDHCP(t *testing.T) {
	s := server(t, Proxy)
	for _, tt := range []struct {
		c        client
		wantFile string
	}{
		{biosPXE, "undionly.kpxe"},
		{uefiPXE, "ipxe.efi"},
		{ipxeBIOS, files.Script},
	} {
		offer, d := s.Reply(request(t, tt.c, mac1, dhcpv4.MessageTypeDiscover), ServerPort)
		offer = wire(t, offer)
		if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
			t.Fatalf("no proxy offer: %s", d)
		}
		if !offer.YourIPAddr.IsUnspecified() || offer.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
			t.Errorf("proxy offer gives an address: %v", offer.YourIPAddr)
		}
		if offer.ClassIdentifier() != PXEClass {
			t.Errorf("option 60 %q", offer.ClassIdentifier())
		}
		if got := offer.Options.Get(dhcpv4.OptionVendorSpecificInformation); !bytes.Equal(got, []byte{6, 1, 8, 255}) {
			t.Errorf("option 43 = % x, want PXE_DISCOVERY_CONTROL = 8", got)
		}
		if offer.BootFileName != tt.wantFile || !offer.ServerIPAddr.Equal(net.IP(serverIP.AsSlice())) {
			t.Errorf("file %q next-server %v", offer.BootFileName, offer.ServerIPAddr)
		}
	}
	// Others are the lab DHCP server's business.
	for _, tt := range []struct {
		name string
		req  *dhcpv4.DHCPv4
	}{
		{"plain DISCOVER", request(t, plain, mac1, dhcpv4.MessageTypeDiscover)},
		{"PXE REQUEST on 67", request(t, biosPXE, mac1, dhcpv4.MessageTypeRequest,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("192.168.1.50"))))},
		{"PXE RELEASE", request(t, biosPXE, mac1, dhcpv4.MessageTypeRelease)},
	} {
		if r, d := s.Reply(tt.req, ServerPort); r != nil {
			t.Errorf("%s: proxy answered: %s", tt.name, d)
		}
	}
}

// PXE clients send their boot request to port 4011 of the ProxyDHCP server
// once they have an address; in either mode the answer is an ACK with the
// file and no address.
func TestPort4011(t *testing.T) {
	for _, mode := range []Mode{Proxy, Full} {
		s := server(t, mode)
		req := request(t, uefiPXE, mac1, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.ParseIP("192.168.1.50")),
			dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}))
		ack, d := s.Reply(req, PXEPort)
		ack = wire(t, ack)
		if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("%v: no ACK on 4011: %s", mode, d)
		}
		if !ack.YourIPAddr.IsUnspecified() || ack.ClientIPAddr.String() != "192.168.1.50" || ack.BootFileName != "ipxe.efi" {
			t.Errorf("%v: ACK yiaddr %v ciaddr %v file %q", mode, ack.YourIPAddr, ack.ClientIPAddr, ack.BootFileName)
		}
		if got := ack.Options.Get(dhcpv4.OptionClientMachineIdentifier); len(got) != 17 {
			t.Errorf("%v: client GUID (option 97) not echoed", mode)
		}
		if d := Destination(req, &net.UDPAddr{IP: net.ParseIP("192.168.1.50"), Port: 4011}, PXEPort); d.String() != "192.168.1.50:4011" {
			t.Errorf("4011 answer goes to %v", d)
		}
		if r, _ := s.Reply(request(t, uefiPXE, mac1, dhcpv4.MessageTypeDiscover), PXEPort); r != nil {
			t.Errorf("%v: answered a DISCOVER on 4011", mode)
		}
		if r, _ := s.Reply(request(t, plain, mac1, dhcpv4.MessageTypeRequest), PXEPort); r != nil {
			t.Errorf("%v: answered a plain client on 4011", mode)
		}
	}
}

func TestDestination(t *testing.T) {
	bc := &net.UDPAddr{IP: net.IPv4zero, Port: 68}
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want string
	}{
		{"no address yet", nil, "255.255.255.255:68"},
		{"renewing", []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("10.33.0.100"))}, "10.33.0.100:68"},
		{"relayed", []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.ParseIP("10.1.0.1"))}, "10.1.0.1:67"},
	}
	for _, tt := range tests {
		req := request(t, biosPXE, mac1, dhcpv4.MessageTypeDiscover, tt.mods...)
		if got := Destination(req, bc, ServerPort).String(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseRange(t *testing.T) {
	subnet := netip.MustParsePrefix("10.33.0.1/24")
	tests := []struct {
		in, wantErr string
	}{
		{"10.33.0.100-10.33.0.199", ""},
		{"10.33.0.2 - 10.33.0.2", ""},
		{"10.33.0.100", "want FIRST-LAST"},
		{"10.33.0.x-10.33.0.9", "not an IPv4 address"},
		{"10.33.0.1-::1", "not an IPv4 address"},
		{"10.34.0.100-10.34.0.199", "not inside the interface's subnet 10.33.0.0/24"},
		{"10.33.0.100-10.34.0.1", "not inside"},
		{"10.33.0.199-10.33.0.100", "ends before it starts"},
		{"10.33.0.0-10.33.0.9", "network address"},
		{"10.33.0.200-10.33.0.255", "broadcast address"},
		{"10.33.0.1-10.33.0.9", "server's own address 10.33.0.1"},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.in, subnet, serverIP)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ParseRange(%q): %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseRange(%q) = %v, %v; want error with %q", tt.in, r, err, tt.wantErr)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.ServerIP = netip.Addr{} },
		func(c *Config) { c.Files.Script = "" },
		func(c *Config) { c.Subnet = netip.MustParsePrefix("10.34.0.0/24") },
		func(c *Config) { c.Pool = Range{} },
		func(c *Config) { c.LeaseTime = 0 },
	}
	for i, f := range bad {
		c := config(Full)
		f(&c)
		if _, err := NewServer(c); err == nil {
			t.Errorf("case %d: bad config accepted", i)
		}
	}
	// Proxy mode needs no pool.
	c := config(Proxy)
	c.Pool, c.Subnet = Range{}, netip.Prefix{}
	if _, err := NewServer(c); err != nil {
		t.Errorf("proxy config: %v", err)
	}
}

func TestLeaseExpiry(t *testing.T) {
	s := server(t, Full)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	for _, m := range []net.HardwareAddr{mac1, mac2} {
		if r, _ := s.Reply(request(t, plain, m, dhcpv4.MessageTypeDiscover), ServerPort); r == nil {
			t.Fatal("no offer")
		}
	}
	third := net.HardwareAddr{2, 0, 0, 0, 0, 3}
	if r, _ := s.Reply(request(t, plain, third, dhcpv4.MessageTypeDiscover), ServerPort); r != nil {
		t.Fatal("pool not exhausted")
	}
	now = now.Add(2 * time.Hour)
	if r, _ := s.Reply(request(t, plain, third, dhcpv4.MessageTypeDiscover), ServerPort); r == nil {
		t.Fatal("expired leases not reused")
	}
}
