package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"hv/tools/bootmedia"
)

// pxeDir fills a directory with every file the server requires and a
// boot.ipxe that loads one module.
func pxeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script, err := bootmedia.IPXEScript("selftest", "vms.conf")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"boot.ipxe": script, "modules/vms.conf": "vm a"}
	for _, f := range requiredFiles {
		if _, ok := files[f]; !ok {
			files[f] = "contents of " + f
		}
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// loOptions serve dir on the loopback interface from free ports.
func loOptions(t *testing.T, dir string) options {
	return options{iface: "lo", dir: dir, rangeSpec: "127.0.0.100-127.0.0.200", lease: time.Hour,
		dhcpPort: freePort(t, "udp"), pxePort: freePort(t, "udp"), tftpPort: freePort(t, "udp"), httpPort: freePort(t, "tcp")}
}

func quiet() *log.Logger { return log.New(io.Discard, "", 0) }

// Every bad set-up is one clear error before anything is served.
func TestStartRefuses(t *testing.T) {
	dir := pxeDir(t)
	noModule := pxeDir(t)
	os.Remove(filepath.Join(noModule, "modules/vms.conf"))
	noEFI := pxeDir(t)
	os.Remove(filepath.Join(noEFI, "ipxe.efi"))
	tests := []struct {
		name    string
		change  func(*options)
		wantErr string
	}{
		{"no interface given", func(o *options) { o.iface = "" }, "no -iface"},
		{"missing interface", func(o *options) { o.iface = "nosuch0" }, `interface "nosuch0": no such network interface (see ip link)`},
		{"neither range nor proxy", func(o *options) { o.rangeSpec = "" }, "either -range"},
		{"both range and proxy", func(o *options) { o.proxy = true }, "either -range"},
		{"no DHCP and a range", func(o *options) { o.noDHCP = true }, "-no-dhcp serves no DHCP"},
		{"range outside the subnet", func(o *options) { o.rangeSpec = "10.0.0.1-10.0.0.9" }, "not inside the interface's subnet 127.0.0.0/8"},
		{"range backwards", func(o *options) { o.rangeSpec = "127.0.0.9-127.0.0.1" }, "ends before it starts"},
		{"range with the server", func(o *options) { o.rangeSpec = "127.0.0.1-127.0.0.9" }, "server's own address"},
		{"not a range", func(o *options) { o.rangeSpec = "127.0.0.9" }, "FIRST-LAST"},
		{"router outside", func(o *options) { o.router = "10.0.0.1" }, "-router"},
		{"address not on the interface", func(o *options) { o.addr = "10.9.9.9" }, "has no address 10.9.9.9"},
		{"missing directory", func(o *options) { o.dir = filepath.Join(dir, "nothere") }, "make pxe"},
		{"missing loader", func(o *options) { o.dir = noEFI }, "cannot serve ipxe.efi"},
		{"missing module", func(o *options) { o.dir = noModule }, "cannot serve modules/vms.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := loOptions(t, dir)
			tt.change(&o)
			s, err := start(o, quiet())
			if err == nil {
				s.close()
				t.Fatalf("started")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line with %q", err, tt.wantErr)
			}
		})
	}
}

// needRoot skips tests that bind sockets to a device.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("binding to an interface needs root")
	}
}

func TestStartPortInUse(t *testing.T) {
	needRoot(t)
	dir := pxeDir(t)
	o := loOptions(t, dir)
	busy, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(o.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if s, err := start(o, quiet()); err == nil {
		s.close()
		t.Fatal("started with the HTTP port in use")
	} else if want := "HTTP port " + strconv.Itoa(o.httpPort) + " on 127.0.0.1: bind: address already in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The DHCP port too; and nothing stays open after a refusal, so a
	// second try with the port free works.
	o = loOptions(t, dir)
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{Port: o.dhcpPort})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := start(o, quiet()); err == nil {
		s.close()
		t.Fatal("started with the DHCP port in use")
	} else if !strings.Contains(err.Error(), "DHCP port "+strconv.Itoa(o.dhcpPort)+" on lo: bind: address already in use") {
		t.Errorf("error %q", err)
	}
	udp.Close()
	s, err := start(o, quiet())
	if err != nil {
		t.Fatalf("after freeing the port: %v", err)
	}
	s.close()
}

// The started server answers a PXE client on its boot server port and
// serves the script over HTTP, logging both.
func TestServe(t *testing.T) {
	needRoot(t)
	o := loOptions(t, pxeDir(t))
	o.rangeSpec, o.proxy = "", true
	var logBuf strings.Builder
	logs := make(chan string, 64)
	logger := log.New(writerFunc(func(b []byte) (int, error) { logs <- string(b); return len(b), nil }), "", 0)
	s, err := start(o, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.serve(ctx) }()
	waitLog := func(substr string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l := <-logs:
				logBuf.WriteString(l)
				if strings.Contains(l, substr) {
					return
				}
			case <-deadline:
				t.Fatalf("no log line with %q; log so far:\n%s", substr, logBuf.String())
			}
		}
	}
	waitLog("ready: proxyDHCP on lo")

	// A UEFI PXE client asks port 4011 for its boot file.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(net.IPv4(127, 0, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: o.pxePort}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer on the PXE port: %v", err)
	}
	ack, err := dhcpv4.FromBytes(buf[:n])
	if err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "ipxe.efi" || ack.TransactionID != req.TransactionID {
		t.Fatalf("answer %v, %v", ack, err)
	}
	waitLog("pxe 52:54:00:01:02:03 arch 7 (UEFI x86-64) PXEClient REQUEST -> ACK file ipxe.efi")

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(o.httpPort) + "/boot.ipxe")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "#!ipxe") {
		t.Errorf("boot.ipxe over HTTP: %d %q", resp.StatusCode, body)
	}
	waitLog(`http 127.0.0.1 "/boot.ipxe": sent`)
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// With -no-dhcp only TFTP and HTTP are served: the DHCP ports stay free.
func TestNoDHCP(t *testing.T) {
	o := loOptions(t, pxeDir(t))
	o.rangeSpec, o.noDHCP = "", true
	s, err := start(o, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.dhcpConn != nil || s.pxeConn != nil {
		t.Errorf("DHCP sockets open with -no-dhcp")
	}
	if !strings.HasPrefix(s.summary, "no DHCP on lo") {
		t.Errorf("summary %q", s.summary)
	}
}

func TestNeighborMAC(t *testing.T) {
	table := `IP address       HW type     Flags       HW address            Mask     Device
10.33.0.150      0x1         0x2         52:54:00:12:34:56     *        vpxe
10.33.0.151      0x1         0x0         00:00:00:00:00:00     *        vpxe
`
	for _, tt := range []struct {
		ip, want string
		ok       bool
	}{
		{"10.33.0.150", "52:54:00:12:34:56", true},
		{"10.33.0.151", "", false}, // incomplete
		{"10.33.0.15", "", false},
	} {
		got, ok := neighborMAC(table, netip.MustParseAddr(tt.ip))
		if got != tt.want || ok != tt.ok {
			t.Errorf("neighborMAC(%s) = %q, %v; want %q, %v", tt.ip, got, ok, tt.want, tt.ok)
		}
	}
}
