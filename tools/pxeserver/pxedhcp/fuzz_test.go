package pxedhcp

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzReply feeds arbitrary packets through parsing and both modes on both
// ports: no panic, and every answer is well formed: it parses back, keeps
// the transaction, and a ProxyDHCP or port-4011 answer never gives an
// address.
func FuzzReply(f *testing.F) {
	for _, c := range []client{biosPXE, uefiPXE, ipxeBIOS, ipxeEFI, httpBoot, arm64, plain} {
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform} {
			f.Add(request(f, c, mac1, typ, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.33.0.100")))).ToBytes())
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 240))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		for _, mode := range []Mode{Full, Proxy} {
			s, err := NewServer(config(mode))
			if err != nil {
				t.Fatal(err)
			}
			for _, port := range []int{ServerPort, PXEPort} {
				reply, d := s.Reply(req, port)
				_ = d.String()
				_ = Destination(req, &net.UDPAddr{IP: net.IPv4zero, Port: ClientPort}, port)
				if reply == nil {
					continue
				}
				back, err := dhcpv4.FromBytes(reply.ToBytes())
				if err != nil {
					t.Fatalf("%v port %d: reply does not parse: %v", mode, port, err)
				}
				if back.TransactionID != req.TransactionID || back.OpCode != dhcpv4.OpcodeBootReply {
					t.Fatalf("%v port %d: reply xid %v op %v", mode, port, back.TransactionID, back.OpCode)
				}
				if (mode == Proxy || port == PXEPort) && !back.YourIPAddr.IsUnspecified() {
					t.Fatalf("%v port %d: gave address %v", mode, port, back.YourIPAddr)
				}
			}
		}
	})
}
