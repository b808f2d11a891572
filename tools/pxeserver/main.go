// Command pxeserver boots lab servers over the network: on one interface it
// answers DHCP (or proxyDHCP beside the lab's DHCP server), TFTP and HTTP
// from the directory that "make pxe" fills. Plain PXE firmware gets iPXE
// (undionly.kpxe for a BIOS, ipxe.efi for UEFI x86-64, by DHCP option 93),
// iPXE gets the URL of boot.ipxe, which loads the hypervisor and its boot
// modules over HTTP. Every request is logged with the client's MAC and, for
// DHCP, its architecture and what it was given (docs/pxe.md).
//
// The DHCP decisions are package hv/tools/pxeserver/pxedhcp's, the rooted
// file serving package hv/tools/pxeserver/servedir's; this command owns
// the sockets, the checks before it starts, and the log.
//
// Usage:
//
//	pxeserver -iface IFACE [-dir out/pxe] (-range FIRST-LAST | -proxy | -no-dhcp) [-router IP] [-http-port 80]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pin/tftp/v3"
	"golang.org/x/sys/unix"

	"hv/tools/bootmedia"
	"hv/tools/pxeserver/pxedhcp"
	"hv/tools/pxeserver/servedir"
)

// options are the command's flags.
type options struct {
	iface, dir, addr, rangeSpec, router   string
	proxy, noDHCP                         bool
	lease                                 time.Duration
	dhcpPort, pxePort, tftpPort, httpPort int
}

func main() {
	var o options
	flag.StringVar(&o.iface, "iface", "", "serve on this network `interface` (required)")
	flag.StringVar(&o.dir, "dir", "out/pxe", "serve this `directory` (make pxe)")
	flag.StringVar(&o.addr, "addr", "", "the interface's IPv4 `address` to serve from (default: its first)")
	flag.StringVar(&o.rangeSpec, "range", "", "full DHCP: hand out addresses `FIRST-LAST` of the interface's subnet")
	flag.BoolVar(&o.proxy, "proxy", false, "proxyDHCP: another DHCP server hands out addresses; answer only boot requests")
	flag.BoolVar(&o.noDHCP, "no-dhcp", false, "serve TFTP and HTTP only: the lab's DHCP server hands out the boot files too")
	flag.StringVar(&o.router, "router", "", "full DHCP: the default gateway `address` to hand out (option 3)")
	flag.DurationVar(&o.lease, "lease", time.Hour, "full DHCP: lease time")
	flag.IntVar(&o.httpPort, "http-port", 80, "HTTP `port` (GRUB, which UEFI clients chain, uses 80)")
	flag.IntVar(&o.tftpPort, "tftp-port", 69, "TFTP `port`")
	flag.IntVar(&o.dhcpPort, "dhcp-port", pxedhcp.ServerPort, "DHCP server `port`")
	flag.IntVar(&o.pxePort, "pxe-port", pxedhcp.PXEPort, "PXE boot server `port` (proxyDHCP requests)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: pxeserver -iface IFACE [-dir DIR] (-range FIRST-LAST | -proxy | -no-dhcp) [flags]")
		os.Exit(2)
	}
	logger := log.New(os.Stderr, "pxeserver: ", log.Ltime|log.Lmicroseconds)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := start(o, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pxeserver:", err)
		os.Exit(1)
	}
	if err := s.serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pxeserver:", err)
		os.Exit(1)
	}
}

// server is a started server: every socket is open.
type server struct {
	log        *log.Logger
	dhcp       *pxedhcp.Server
	dir        *servedir.Dir
	dhcpConn   net.PacketConn
	pxeConn    net.PacketConn
	tftpConn   *net.UDPConn
	httpLn     net.Listener
	summary    string
	serverAddr netip.Addr
}

// requiredFiles must be in the served directory: the image and the iPXE
// script, the loaders for plain PXE firmware, and GRUB for UEFI.
var requiredFiles = []string{"hv", bootmedia.PXEScript, "undionly.kpxe", "ipxe.efi", bootmedia.PXEGrubImage, bootmedia.PXEGrubConfig}

// start checks everything and opens every socket; any problem is one
// clear error and nothing is left open.
func start(o options, logger *log.Logger) (s *server, err error) {
	if o.iface == "" {
		return nil, errors.New("no -iface: name the network interface the lab servers are on")
	}
	iface, err := net.InterfaceByName(o.iface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %v (see ip link)", o.iface, unwrapOp(err))
	}
	prefix, err := ifaceAddr(iface, o.addr)
	if err != nil {
		return nil, err
	}
	ip := prefix.Addr()
	switch {
	case o.noDHCP && (o.proxy || o.rangeSpec != ""):
		return nil, errors.New("-no-dhcp serves no DHCP: give neither -range nor -proxy with it")
	case !o.noDHCP && o.proxy == (o.rangeSpec != ""):
		return nil, errors.New("give either -range FIRST-LAST (this server hands out addresses) or -proxy (the lab's DHCP server does)")
	}
	cfg := pxedhcp.Config{ServerIP: ip, Mode: pxedhcp.Proxy, LeaseTime: o.lease}
	if o.rangeSpec != "" {
		cfg.Mode, cfg.Subnet = pxedhcp.Full, prefix.Masked()
		if cfg.Pool, err = pxedhcp.ParseRange(o.rangeSpec, prefix, ip); err != nil {
			return nil, err
		}
		if o.router != "" {
			if cfg.Router, err = netip.ParseAddr(o.router); err != nil || !cfg.Router.Is4() || !prefix.Contains(cfg.Router) {
				return nil, fmt.Errorf("-router %q: not an IPv4 address in %s", o.router, prefix.Masked())
			}
		}
	}
	base := "http://" + ip.String()
	if o.httpPort != 80 {
		base += fmt.Sprintf(":%d", o.httpPort)
	}
	cfg.Files = pxedhcp.BootFiles{BIOS: "undionly.kpxe", UEFI: "ipxe.efi", Script: base + "/" + bootmedia.PXEScript, HTTPBase: base}
	dhcpSrv, err := pxedhcp.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := servedir.Open(o.dir)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %v (make pxe fills out/pxe)", o.dir, err)
	}
	s = &server{log: logger, dhcp: dhcpSrv, dir: dir, serverAddr: ip}
	opened := s // s is nil once an error is returned
	defer func() {
		if err != nil {
			opened.close()
		}
	}()
	if err := checkFiles(o.dir, dir); err != nil {
		return nil, err
	}
	dir.Log = s.logFile
	if !o.noDHCP {
		if s.dhcpConn, err = listenDHCP(o.iface, o.dhcpPort); err != nil {
			return nil, fmt.Errorf("DHCP port %d on %s: %w", o.dhcpPort, o.iface, unwrapOp(err))
		}
		if s.pxeConn, err = listenDHCP(o.iface, o.pxePort); err != nil {
			return nil, fmt.Errorf("PXE port %d on %s: %w", o.pxePort, o.iface, unwrapOp(err))
		}
	}
	if s.tftpConn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip.AsSlice(), Port: o.tftpPort}); err != nil {
		return nil, fmt.Errorf("TFTP port %d on %s: %w", o.tftpPort, ip, unwrapOp(err))
	}
	if s.httpLn, err = net.Listen("tcp4", netip.AddrPortFrom(ip, uint16(o.httpPort)).String()); err != nil {
		return nil, fmt.Errorf("HTTP port %d on %s: %w", o.httpPort, ip, unwrapOp(err))
	}
	mode := cfg.Mode.String()
	if o.noDHCP {
		mode = "no DHCP"
	}
	s.summary = fmt.Sprintf("%s on %s %s, serving %s: TFTP port %d, HTTP %s/, script %s", mode, o.iface, prefix, o.dir, o.tftpPort, base, cfg.Files.Script)
	if cfg.Mode == pxedhcp.Full {
		s.summary += ", addresses " + cfg.Pool.String()
	}
	if o.httpPort != 80 {
		logger.Printf("warning: HTTP on port %d: UEFI clients chain GRUB, which fetches grub.cfg and the image from port 80 only", o.httpPort)
	}
	return s, nil
}

// ifaceAddr picks the interface's IPv4 address (want, or the first).
func ifaceAddr(iface *net.Interface, want string) (netip.Prefix, error) {
	addrs, err := iface.Addrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("interface %s: %w", iface.Name, err)
	}
	var have []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		bits, _ := n.Mask.Size()
		p := netip.PrefixFrom(ip, bits)
		if want == "" || want == ip.String() {
			return p, nil
		}
		have = append(have, ip.String())
	}
	if want != "" {
		return netip.Prefix{}, fmt.Errorf("interface %s has no address %s (it has: %s)", iface.Name, want, strings.Join(have, ", "))
	}
	return netip.Prefix{}, fmt.Errorf("interface %s has no IPv4 address: give it one (ip addr add 10.0.0.1/24 dev %s)", iface.Name, iface.Name)
}

// checkFiles makes sure the directory holds what clients will ask for:
// the required files and every module boot.ipxe loads.
func checkFiles(dirPath string, dir *servedir.Dir) error {
	names := append([]string(nil), requiredFiles...)
	if f, _, err := dir.Open(bootmedia.PXEScript); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if w := strings.Fields(sc.Text()); len(w) >= 2 && w[0] == "module" {
				names = append(names, path.Clean(w[1]))
			}
		}
		f.Close()
	}
	if err := dir.Check(names...); err != nil {
		return fmt.Errorf("%v (make pxe fills %s; undionly.kpxe and ipxe.efi come from Debian's ipxe, grubx64.efi from grub-efi-amd64-bin)", err, dirPath)
	}
	return nil
}

// unwrapOp drops the *net.OpError's repetition of the address.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// listenDHCP opens a UDP socket on all addresses of one interface (DHCP
// requests from clients without an address are broadcasts), allowed to
// broadcast its answers. It sets no SO_REUSEADDR or SO_REUSEPORT: another
// DHCP server on the port is an error, not a silent split of the traffic.
func listenDHCP(iface string, port int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.BindToDevice(int(fd), iface); serr != nil {
				serr = fmt.Errorf("bind to device %s: %w", iface, serr)
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
}

func (s *server) close() {
	if s.dhcpConn != nil {
		s.dhcpConn.Close()
	}
	if s.pxeConn != nil {
		s.pxeConn.Close()
	}
	if s.tftpConn != nil {
		s.tftpConn.Close()
	}
	if s.httpLn != nil {
		s.httpLn.Close()
	}
	s.dir.Close()
}

// serve runs every server until ctx ends or one of them fails.
func (s *server) serve(ctx context.Context) error {
	errs := make(chan error, 4)
	if s.dhcpConn != nil {
		go func() { errs <- s.serveDHCP(s.dhcpConn, pxedhcp.ServerPort) }()
		go func() { errs <- s.serveDHCP(s.pxeConn, pxedhcp.PXEPort) }()
	}
	t := tftp.NewServer(s.dir.TFTPRead, nil)
	t.SetTimeout(2 * time.Second)
	go func() { errs <- t.Serve(s.tftpConn) }()
	h := s.dir.HTTPServer()
	go func() { errs <- h.Serve(s.httpLn) }()
	s.log.Printf("ready: %s", s.summary)
	var err error
	select {
	case <-ctx.Done():
		s.log.Printf("stopping")
	case err = <-errs:
	}
	t.Shutdown()
	h.Close()
	s.close()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// serveDHCP answers the packets of one DHCP socket; port says which role
// it has (67 or 4011), whatever number it is bound to.
func (s *server) serveDHCP(conn net.PacketConn, port int) error {
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.log.Printf("dhcp %s: unreadable packet (%d bytes): %v", peer, n, err)
			continue
		}
		reply, d := s.dhcp.Reply(req, port)
		name := "dhcp"
		if port == pxedhcp.PXEPort {
			name = "pxe"
		}
		s.log.Printf("%s %s", name, d)
		if reply == nil {
			continue
		}
		udpPeer, _ := peer.(*net.UDPAddr)
		dst := pxedhcp.Destination(req, udpPeer, port)
		if _, err := conn.WriteTo(reply.ToBytes(), dst); err != nil {
			s.log.Printf("%s %s: sending %s to %s: %v", name, d.Client.MAC, d.Reply, dst, err)
		}
	}
}

// logFile logs a TFTP or HTTP request with the client's MAC: from this
// server's leases, or (proxyDHCP, where another server leased the address)
// from the kernel's neighbour table, which has the client once it talks.
func (s *server) logFile(r servedir.Request) {
	who := fmt.Sprint(r.Client)
	if host, _, err := net.SplitHostPort(who); err == nil {
		who = host
		if a, err := netip.ParseAddr(host); err == nil {
			if mac, ok := s.dhcp.LeaseOf(a); ok {
				who += " (" + mac.String() + ")"
			} else if arp, err := os.ReadFile("/proc/net/arp"); err == nil {
				if mac, ok := neighborMAC(string(arp), a); ok {
					who += " (" + mac + ")"
				}
			}
		}
	}
	r.Client = clientName(who)
	s.log.Print(r)
}

// neighborMAC finds an IPv4 address's MAC in the text of /proc/net/arp
// ("IP address, HW type, Flags, HW address, Mask, Device"; flag 0x2 means
// complete).
func neighborMAC(table string, a netip.Addr) (string, bool) {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != a.String() {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 32)
		if err != nil || flags&0x2 == 0 {
			continue
		}
		if _, err := net.ParseMAC(f[3]); err == nil {
			return f[3], true
		}
	}
	return "", false
}

type clientName string

func (c clientName) Network() string { return "" }
func (c clientName) String() string  { return string(c) }
