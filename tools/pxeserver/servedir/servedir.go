// Package servedir serves the files of one directory to network boot
// clients over TFTP (github.com/pin/tftp/v3) and HTTP, and nothing outside
// it: request paths are checked (Clean) and files are opened through an
// os.Root, so neither "..", an absolute path nor a symbolic link can leave
// the directory.
//
// It owns no sockets: the command (hv/tools/pxeserver) listens and hands
// the handlers their requests; each request is reported to a Logger.
package servedir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pin/tftp/v3"
)

// ErrBadPath is returned for a request path that could name something
// outside the served directory, or is not a plain relative file name.
var ErrBadPath = errors.New("bad path")

// Clean turns a request path into a name inside the served directory.
// A leading "/" names the served directory's root, as TFTP servers with a
// served root do: GRUB and some firmware ask for "/file", and every HTTP
// path starts with one. It rejects empty names, "..", NUL, backslashes
// (a DOS-style separator some clients send) and directories ("x/").
func Clean(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadPath, name, why)
	}
	if strings.ContainsAny(name, "\x00\\") {
		return bad("NUL or backslash")
	}
	rel := strings.TrimLeft(name, "/")
	if rel == "" || strings.HasSuffix(rel, "/") {
		return bad("not a file name")
	}
	var parts []string
	for _, p := range strings.Split(rel, "/") {
		switch p {
		case "..":
			return bad(`".." leaves the served directory`)
		case "", ".":
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return bad("not a file name")
	}
	rel = strings.Join(parts, "/")
	if !fs.ValidPath(rel) {
		return bad("not a valid path")
	}
	return rel, nil
}

// Dir is a served directory.
type Dir struct {
	path string
	root *os.Root
	// Log, if set, sees every request.
	Log func(Request)
}

// Request is one file request, for the log.
type Request struct {
	Proto  string // "tftp" or "http"
	Client net.Addr
	Path   string // as the client sent it
	Bytes  int64  // sent
	Err    error  // why it was refused or failed, nil if served
	// Size is set, and Bytes not yet, when an HTTP transfer starts: a
	// client that stops reading (GRUB after a file's header) can keep
	// the transfer open for long.
	Size int64
}

func (r Request) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s %s %q: %s", r.Proto, r.Client, r.Path, printable(r.Err.Error()))
	}
	if r.Size > 0 {
		return fmt.Sprintf("%s %s %q: sending %d bytes", r.Proto, r.Client, r.Path, r.Size)
	}
	return fmt.Sprintf("%s %s %q: sent %d bytes", r.Proto, r.Client, r.Path, r.Bytes)
}

// Open opens the directory to serve.
func Open(path string) (*Dir, error) {
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("servedir: %w", err)
	}
	return &Dir{path: path, root: root}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Open opens a requested file: a regular file inside the directory,
// following symbolic links only while they stay inside.
func (d *Dir) Open(name string) (*os.File, fs.FileInfo, error) {
	rel, err := Clean(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w %q: not a regular file", ErrBadPath, name)
	}
	return f, st, nil
}

// Check reports the first of the named files that cannot be served, with
// a message that names the directory.
func (d *Dir) Check(names ...string) error {
	for _, n := range names {
		f, _, err := d.Open(n)
		if err != nil {
			return fmt.Errorf("%s: cannot serve %s: %w", d.path, n, err)
		}
		f.Close()
	}
	return nil
}

func (d *Dir) log(r Request) {
	if d.Log != nil {
		d.Log(r)
	}
}

// TFTPRead is the read handler of a tftp.Server: it sends the file with its
// size (RFC 2349 tsize, which iPXE and firmware ask for).
func (d *Dir) TFTPRead(name string, rf io.ReaderFrom) error {
	req := Request{Proto: "tftp", Path: name}
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		a := ot.RemoteAddr()
		req.Client = &a
	}
	f, st, err := d.Open(name)
	if err != nil {
		req.Err = err
		d.log(req)
		return err
	}
	defer f.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(st.Size())
	}
	req.Bytes, req.Err = rf.ReadFrom(f)
	d.log(req)
	return req.Err
}

// ServeHTTP serves GET and HEAD requests for files; directories are not
// listed.
func (d *Dir) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	req := Request{Proto: "http", Client: addr(r.RemoteAddr), Path: r.URL.Path}
	defer func() {
		req.Bytes = cw.n
		if req.Err == nil && cw.status >= 400 {
			req.Err = fmt.Errorf("HTTP %d", cw.status)
		}
		d.log(req)
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		req.Err = fmt.Errorf("method %s not allowed", r.Method)
		http.Error(cw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, st, err := d.Open(r.URL.Path)
	if err != nil {
		req.Err = err
		code := http.StatusNotFound
		if errors.Is(err, ErrBadPath) {
			code = http.StatusForbidden
		}
		http.Error(cw, http.StatusText(code), code)
		return
	}
	defer f.Close()
	if r.Method == http.MethodGet {
		d.log(Request{Proto: req.Proto, Client: req.Client, Path: req.Path, Size: st.Size()})
	}
	http.ServeContent(cw, r, st.Name(), st.ModTime(), f)
}

type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// addr is a client address given as a string (http.Request.RemoteAddr).
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// HTTPServer returns an http.Server for d with time limits that a slow or
// stuck client cannot stretch forever; large images may take long to send
// to an emulated NIC, so only reading the request is bounded tightly.
func (d *Dir) HTTPServer() *http.Server {
	return &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
}

// printable drops control characters (a TFTP client's error message may
// end in NUL) so that every request is one clean log line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
