package servedir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
)

func TestRequestString(t *testing.T) {
	r := Request{Proto: "tftp", Client: addr("10.0.0.2:1234"), Path: "/hv", Err: errors.New("sending block 3: closed\x00")}
	if got, want := r.String(), `tftp 10.0.0.2:1234 "/hv": sending block 3: closed`; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"boot.ipxe", "boot.ipxe"},
		{"/boot.ipxe", "boot.ipxe"},
		{"//modules/./vmlinuz", "modules/vmlinuz"},
		{"modules//vmlinuz", "modules/vmlinuz"},
		{"..", ""},
		{"../etc/passwd", ""},
		{"/../etc/passwd", ""},
		{"modules/../../x", ""},
		{"modules/../hv", ""}, // harmless, but ".." is refused outright
		{`..\..\windows`, ""},
		{"a\x00b", ""},
		{"", ""},
		{"/", ""},
		{"modules/", ""},
		{"./", ""},
	}
	for _, tt := range tests {
		got, err := Clean(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrBadPath) {
				t.Errorf("Clean(%q) = %q, %v; want ErrBadPath", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// served makes a directory to serve, a secret next to it, and links
// inside it pointing in and out.
func served(t *testing.T) (dir, secret string) {
	t.Helper()
	top := t.TempDir()
	dir = filepath.Join(top, "pxe")
	secret = filepath.Join(top, "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "modules"), 0o755))
	must(os.WriteFile(secret, []byte("secret"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "hv"), []byte("image"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "modules", "vmlinuz"), []byte("kernel"), 0o644))
	must(os.Symlink("hv", filepath.Join(dir, "link-in")))
	must(os.Symlink("../hv", filepath.Join(dir, "modules", "link-up-in")))
	must(os.Symlink("../secret", filepath.Join(dir, "link-out")))
	must(os.Symlink(secret, filepath.Join(dir, "link-abs")))
	must(os.Symlink(top, filepath.Join(dir, "dir-out")))
	return dir, secret
}

func TestOpenStaysInside(t *testing.T) {
	dir, secret := served(t)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, want := range map[string]string{
		"hv":                 "image",
		"/hv":                "image",
		"modules/vmlinuz":    "kernel",
		"link-in":            "image",
		"modules/link-up-in": "image", // a link may use ".." while it stays inside
	} {
		f, _, err := d.Open(name)
		if err != nil {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != want {
			t.Errorf("Open(%q) = %q, want %q", name, b, want)
		}
	}
	for _, name := range []string{
		"../secret",
		"/../secret",
		secret,           // an absolute host path names a file inside the root, which is not there
		"link-out",       // a relative link leaving the root
		"link-abs",       // an absolute link
		"dir-out/secret", // through a linked directory outside
		"modules",        // a directory
		"modules/../../secret",
		"nothere",
	} {
		if f, _, err := d.Open(name); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("Open(%q) served %q", name, b)
		}
	}
	if err := d.Check("hv", "modules/vmlinuz"); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := d.Check("hv", "ipxe.efi"); err == nil || !strings.Contains(err.Error(), "ipxe.efi") || !strings.Contains(err.Error(), dir) {
		t.Errorf("Check of a missing file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nothere")); err == nil {
		t.Errorf("Open of a missing directory succeeded")
	}
}

// logged collects the requests a Dir reports; next waits for the next
// one (a TFTP transfer is logged after the client has its last block).
type logged chan Request

func (l logged) add(r Request) { l <- r }

func (l logged) next(t *testing.T) Request {
	t.Helper()
	select {
	case r := <-l:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request logged")
	}
	return Request{}
}

func TestTFTP(t *testing.T) {
	dir, _ := served(t)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	log := make(logged, 16)
	d.Log = log.add
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := tftp.NewServer(d.TFTPRead, nil)
	go s.Serve(conn)
	defer s.Shutdown()
	c, err := tftp.NewClient(conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.RequestTSize(true)
	get := func(name string) ([]byte, error) {
		wt, err := c.Receive(name, "octet")
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		_, err = wt.WriteTo(&b)
		return b.Bytes(), err
	}
	b, err := get("modules/vmlinuz")
	if err != nil || string(b) != "kernel" {
		t.Errorf("tftp modules/vmlinuz = %q, %v", b, err)
	}
	if r := log.next(t); r.Proto != "tftp" || r.Bytes != 6 || r.Err != nil || r.Client == nil {
		t.Errorf("log: %+v", r)
	}
	for _, name := range []string{"../secret", "link-out", "link-abs", "nothere"} {
		if b, err := get(name); err == nil {
			t.Errorf("tftp %q served %q", name, b)
		}
		if r := log.next(t); r.Path != name || r.Err == nil {
			t.Errorf("tftp %q: log %+v", name, r)
		}
	}
	// Writes are refused.
	if _, err := c.Send("upload", "octet"); err == nil {
		t.Errorf("tftp write accepted")
	}
}

func TestHTTP(t *testing.T) {
	dir, _ := served(t)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	log := make(logged, 16)
	d.Log = log.add
	ts := httptest.NewServer(d)
	defer ts.Close()
	// get sends the path as it is, without the client's cleaning.
	get := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = path
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/hv"); code != 200 || body != "image" {
		t.Errorf("GET /hv = %d %q", code, body)
	}
	if r := log.next(t); r.String() != fmt.Sprintf("http %s \"/hv\": sending 5 bytes", r.Client) {
		t.Errorf("start of transfer: log %q", r)
	}
	if r := log.next(t); r.Proto != "http" || r.Path != "/hv" || r.Bytes != 5 || r.Err != nil {
		t.Errorf("log: %+v", r)
	}
	if code, body := get("HEAD", "/modules/vmlinuz"); code != 200 || body != "" {
		t.Errorf("HEAD = %d %q", code, body)
	}
	if r := log.next(t); r.Path != "/modules/vmlinuz" || r.Err != nil {
		t.Errorf("log: %+v", r)
	}
	for path, want := range map[string]int{
		"/../secret":         403,
		"/%2e%2e/secret":     403,
		"/modules/../../sec": 403,
		"/link-out":          404,
		"/link-abs":          404,
		"/dir-out/secret":    404,
		"/modules/":          403,
		"/":                  403,
		"/nothere":           404,
	} {
		if code, body := get("GET", path); code != want || strings.Contains(body, "secret") {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
		if r := log.next(t); r.Err == nil {
			t.Errorf("GET %s: log has no error: %+v", path, r)
		}
	}
	if code, _ := get("POST", "/hv"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d", code)
	}
	if r := log.next(t); r.Err == nil || !strings.Contains(r.Err.Error(), "POST") {
		t.Errorf("POST: log %+v", r)
	}
}

// FuzzClean: whatever a client sends, an accepted name is a plain relative
// path inside the directory.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"boot.ipxe", "/hv", "../x", "a/../../b", "//a//b/", `a\b`, "a\x00", ".", "/./a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		rel, err := Clean(name)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Clean(%q): error %v is not ErrBadPath", name, err)
			}
			return
		}
		if !fs.ValidPath(rel) || rel == "." || strings.HasPrefix(rel, "/") || strings.Contains(rel, `\`) {
			t.Fatalf("Clean(%q) = %q", name, rel)
		}
		for _, p := range strings.Split(rel, "/") {
			if p == ".." || p == "." || p == "" {
				t.Fatalf("Clean(%q) = %q has element %q", name, rel, p)
			}
		}
	})
}
