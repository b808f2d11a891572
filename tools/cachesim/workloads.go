package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// workload is one real Debian program run under lackey.
type workload struct {
	name string
	// argv is the command; "{in}" and "{dir}" expand to the input text and
	// the scratch directory.
	argv []string
	// stdin names a file in the scratch directory fed to standard input.
	stdin string
}

// workloads are the programs whose traces the validation uses: compressors
// with different dictionary structures, a sort, a compiler, a database
// engine and a hashing text processor, which between them span small and
// large, streaming and reusing working sets.
var workloads = []workload{
	{name: "gzip", argv: []string{"gzip", "-9", "-c", "{in}"}},
	{name: "bzip2", argv: []string{"bzip2", "-9", "-c", "{in}"}},
	{name: "xz", argv: []string{"xz", "-3", "-c", "{in}"}},
	{name: "zstd", argv: []string{"zstd", "-q", "-6", "-c", "{in}"}},
	{name: "sort", argv: []string{"sort", "{in}"}},
	{name: "cc1", argv: []string{"{cc1}", "-quiet", "-O0", "{dir}/prog.c", "-o", "/dev/null"}},
	{name: "sqlite3", argv: []string{"sqlite3", ":memory:"}, stdin: "db.sql"},
	{name: "awk", argv: []string{"mawk", "{for(i=1;i<=NF;i++)c[$i]++} END{for(w in c)n++; print n}", "{in}"}},
}

// inputBytes is the size of the text the compressors, sort and awk read:
// large enough that their tables outgrow a scaled LLC, small enough that
// lackey (about a million records a second) finishes in tens of seconds.
const inputBytes = 160 << 10

// writeInputs creates the inputs in dir: text made of the Go standard
// library's own sources (present wherever this tool builds), a C file for
// the compiler and an SQL script for sqlite3.
func writeInputs(dir string) error {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("cachesim: go env GOROOT: %w", err)
	}
	goroot := strings.TrimSpace(string(out))
	files, err := filepath.Glob(filepath.Join(goroot, "src", "net", "*.go"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("cachesim: no Go sources under %s for input text: %v", goroot, err)
	}
	sort.Strings(files)
	var text bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("cachesim: read input source: %w", err)
		}
		text.Write(b)
		if text.Len() >= inputBytes {
			break
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), text.Bytes()[:min(text.Len(), inputBytes)], 0o644); err != nil {
		return fmt.Errorf("cachesim: write input: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prog.c"), []byte(cProgram), 0o644); err != nil {
		return fmt.Errorf("cachesim: write C input: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db.sql"), []byte(sqlScript), 0o644); err != nil {
		return fmt.Errorf("cachesim: write SQL input: %w", err)
	}
	return nil
}

// expand substitutes the placeholders of argv.
func (w workload) expand(dir, cc1 string) []string {
	out := make([]string, len(w.argv))
	for i, a := range w.argv {
		a = strings.ReplaceAll(a, "{in}", filepath.Join(dir, "in.txt"))
		a = strings.ReplaceAll(a, "{dir}", dir)
		a = strings.ReplaceAll(a, "{cc1}", cc1)
		out[i] = a
	}
	return out
}

// findCC1 asks gcc where its compiler proper lives; tracing gcc itself would
// interleave the driver, cc1 and as in one address-space-less stream.
func findCC1() (string, error) {
	out, err := exec.Command("gcc", "-print-prog-name=cc1").Output()
	if err != nil {
		return "", fmt.Errorf("cachesim: gcc -print-prog-name=cc1: %w", err)
	}
	p := strings.TrimSpace(string(out))
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("cachesim: gcc reports cc1 at %q, not an absolute path", p)
	}
	return p, nil
}

// sqlScript builds, indexes and queries a table, touching B-tree pages in
// both sequential and random order.
const sqlScript = `CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 6000)
INSERT INTO t SELECT x, (x*7919) % 6007, printf('row-%08d-%s', x, hex(x*x)) FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)) FROM t WHERE k BETWEEN 100 AND 4000;
SELECT k % 97 AS g, count(*) FROM t GROUP BY g ORDER BY 2 DESC LIMIT 5;
`

// cProgram is a small but real C translation unit. It is compiled at -O0:
// at -O1 and above cc1 executes a few hundred million instructions even
// for this file, which lackey needs over ten minutes to trace.
// It includes no headers because cc1 run without the gcc driver has no
// system include path.
const cProgram = `typedef __SIZE_TYPE__ size_t;
#define memset __builtin_memset
struct node { struct node *left, *right; int key; double val; };
static struct node pool[4096];
static size_t used;
static struct node *insert(struct node *n, int key, double val) {
	if (!n) { if (used == 4096) return 0; n = &pool[used++]; n->key = key; n->val = val; n->left = n->right = 0; return n; }
	if (key < n->key) n->left = insert(n->left, key, val);
	else if (key > n->key) n->right = insert(n->right, key, val);
	else n->val += val;
	return n;
}
static double walk(const struct node *n, int depth) {
	if (!n) return 0;
	return n->val * depth + walk(n->left, depth + 1) + walk(n->right, depth + 1);
}
static void qs(int *a, int lo, int hi) {
	while (lo < hi) {
		int p = a[(lo + hi) / 2], i = lo, j = hi;
		while (i <= j) { while (a[i] < p) i++; while (a[j] > p) j--; if (i <= j) { int t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; } }
		if (j - lo < hi - i) { qs(a, lo, j); lo = i; } else { qs(a, i, hi); hi = j; }
	}
}
size_t lz(const unsigned char *in, size_t n, unsigned char *out) {
	static int head[1 << 14];
	size_t o = 0, i = 0;
	memset(head, -1, sizeof head);
	while (i + 3 < n) {
		unsigned h = ((in[i] << 10) ^ (in[i + 1] << 5) ^ in[i + 2]) & 0x3fff;
		int cand = head[h];
		head[h] = (int)i;
		size_t len = 0;
		if (cand >= 0 && i - (size_t)cand < 65535)
			while (i + len < n && len < 255 && in[cand + len] == in[i + len]) len++;
		if (len >= 4) { out[o++] = 0xff; out[o++] = (unsigned char)len; out[o++] = (unsigned char)((i - cand) >> 8); out[o++] = (unsigned char)(i - cand); i += len; }
		else out[o++] = in[i++];
	}
	while (i < n) out[o++] = in[i++];
	return o;
}
double matmul(int n, const double *a, const double *b, double *c) {
	double s = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < n; k++) {
			double aik = a[i * n + k];
			for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
		}
	for (int i = 0; i < n * n; i++) s += c[i];
	return s;
}
double run(int *a, int n) {
	struct node *root = 0;
	for (int i = 0; i < n; i++) root = insert(root, a[i] % 1000, a[i] * 0.5);
	qs(a, 0, n - 1);
	return walk(root, 0) + a[n / 2];
}
`
