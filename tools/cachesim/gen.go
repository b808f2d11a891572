package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"hv/tools/cachesim/lackey"
	"hv/tools/cachesim/trace"
)

// cmdGen runs each workload under valgrind's lackey and stores the reduced
// trace as DIR/NAME.llct.
func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fs.String("dir", "tools/cachesim/testdata/traces", "directory for the reduced traces")
	only := fs.String("only", "", "generate only this workload")
	jobs := fs.Int("j", 2, "workloads traced in parallel")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("cachesim: gen: %w", err)
	}
	scratch, err := os.MkdirTemp("", "cachesim-in")
	if err != nil {
		return fmt.Errorf("cachesim: gen: %w", err)
	}
	defer os.RemoveAll(scratch)
	if err := writeInputs(scratch); err != nil {
		return err
	}
	cc1, err := findCC1()
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, max(*jobs, 1))
	)
	for _, w := range workloads {
		if *only != "" && w.name != *only {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(*dir, w.name+".llct")
			red, err := traceWorkload(w, scratch, cc1, out)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			fmt.Printf("%-8s %12d instructions %12d L1 accesses %9d L1 misses -> %s\n",
				w.name, red.Instrs, red.Accesses, red.Misses, out)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("cachesim: gen: %v", errs)
	}
	return nil
}

// traceWorkload runs one program under lackey with the trace on a pipe
// (file descriptor 3, so the program's own output stays separate) and
// reduces it on the fly; nothing of the raw trace touches the disk.
func traceWorkload(w workload, scratch, cc1, out string) (*lackey.Reducer, error) {
	argv := append([]string{"--tool=lackey", "--trace-mem=yes", "--log-fd=3"}, w.expand(scratch, cc1)...)
	cmd := exec.Command("valgrind", argv...)
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout = io.Discard
	if w.stdin != "" {
		f, err := os.Open(filepath.Join(scratch, w.stdin))
		if err != nil {
			return nil, fmt.Errorf("cachesim: %s: stdin: %w", w.name, err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cachesim: %s: pipe: %w", w.name, err)
	}
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("cachesim: %s: start valgrind: %w", w.name, err)
	}
	pw.Close()
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		pr.Close()
		cmd.Wait()
		return nil, fmt.Errorf("cachesim: %s: %w", w.name, err)
	}
	tw, err := trace.NewWriter(f, w.name)
	if err != nil {
		f.Close()
		pr.Close()
		cmd.Wait()
		return nil, err
	}
	red, rerr := lackey.Reduce(pr, tw)
	pr.Close()
	werr := cmd.Wait()
	cerr := f.Close()
	if rerr != nil || werr != nil || cerr != nil {
		os.Remove(tmp)
	}
	switch {
	case rerr != nil:
		return nil, fmt.Errorf("cachesim: %s: %w", w.name, rerr)
	case werr != nil:
		return nil, fmt.Errorf("cachesim: %s: valgrind: %w", w.name, werr)
	case cerr != nil:
		return nil, fmt.Errorf("cachesim: %s: %w", w.name, cerr)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("cachesim: %s: %w", w.name, err)
	}
	return red, nil
}
