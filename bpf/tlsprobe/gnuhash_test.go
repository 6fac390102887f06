//go:build linux

package tlsprobe

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hashTestFiles are ELF files of this machine with GNU hash tables: the
// system's shared libraries, node when it is installed, and a few programs.
func hashTestFiles(t testing.TB) []string {
	var paths []string
	for _, l := range SystemLibraries() {
		paths = append(paths, l.Path)
	}
	for _, cmd := range []string{"node", "curl", "nginx", "bash"} {
		if p, err := exec.LookPath(cmd); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				paths = append(paths, r)
			}
		}
	}
	more, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/lib*.so.*")
	if len(more) > 60 {
		more = more[:60]
	}
	return append(paths, more...)
}

// TestHashedSymbolsMatchDynsym checks the hash lookup against a full read
// of .dynsym: every defined function found by one is found by the other at
// the same address, and names a file lacks are not found. A wrong hash, a
// chain walked past its end or an off-by-one in symoffset shows up as a
// miss or a wrong Value.
func TestHashedSymbolsMatchDynsym(t *testing.T) {
	files := hashTestFiles(t)
	checked, lookups := 0, 0
	for _, path := range files {
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		syms, err := f.DynamicSymbols()
		if err != nil {
			f.Close()
			continue
		}
		// Ask for our own names, every defined function of the file (up
		// to a bound, so node's 55,000 do not take long) and names that
		// are surely absent.
		want := map[string]elf.Symbol{}
		names := append([]string{"rewind_no_such_symbol", "SSL_read_"}, cSymbolNames...)
		for _, s := range syms {
			if s.Section == elf.SHN_UNDEF || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
				continue
			}
			if _, dup := want[s.Name]; dup {
				continue // versioned twins: the first one is the default
			}
			want[s.Name] = s
			if len(names) < 3000 {
				names = append(names, s.Name)
			}
		}
		got, ok := hashedSymbols(f, names)
		f.Close()
		if !ok {
			if f.Section(".gnu.hash") != nil {
				t.Errorf("%s: has .gnu.hash, yet the lookup gave up", path)
			}
			continue
		}
		checked++
		for _, n := range names {
			lookups++
			w, inDynsym := want[n]
			g, found := got[n]
			switch {
			case inDynsym && !found:
				t.Errorf("%s: %s defined at %#x in .dynsym, not found by hash", path, n, w.Value)
			case !inDynsym && found:
				t.Errorf("%s: %s found by hash at %#x, not a defined function in .dynsym", path, n, g.Value)
			case found && g.Value != w.Value:
				// Versioned twins share a name; accept any of them.
				same := false
				for _, s := range syms {
					if s.Name == n && s.Value == g.Value {
						same = true
					}
				}
				if !same {
					t.Errorf("%s: %s at %#x by hash, %#x in .dynsym", path, n, g.Value, w.Value)
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d files with a GNU hash table checked (of %d)", checked, len(files))
	}
	t.Logf("%d files, %d lookups", checked, lookups)
}

// TestSymbolsSameEitherWay checks that symbols() answers what the full read
// answers for the files this machine has: the fast path must not change
// which probes are attached.
func TestSymbolsSameEitherWay(t *testing.T) {
	for _, path := range hashTestFiles(t) {
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		fast, _ := symbols(f)
		full := map[string]elf.Symbol{}
		if syms, err := f.DynamicSymbols(); err == nil {
			for _, s := range syms {
				if cSymbols[s.Name] && s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
					if _, dup := full[s.Name]; !dup {
						full[s.Name] = s
					}
				}
			}
		}
		f.Close()
		if full["SSL_read"].Value == 0 && full["gnutls_record_recv"].Value == 0 {
			continue // the static table decides; not the fast path's business
		}
		for n, s := range full {
			if fast[n].Value != s.Value {
				t.Errorf("%s: %s at %#x, full read says %#x", path, n, fast[n].Value, s.Value)
			}
		}
		for n := range fast {
			if _, ok := full[n]; !ok {
				t.Errorf("%s: %s found only by the fast path", path, n)
			}
		}
	}
}

// BenchmarkInspectNode measures the time from a node exec to knowing its
// probes, which is time node runs unrecorded.
func BenchmarkInspectNode(b *testing.B) {
	node, err := exec.LookPath("node")
	if err != nil {
		b.Skip("no node")
	}
	node, _ = filepath.EvalSymlinks(node)
	if _, err := os.Stat(node); err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Inspect(node); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInspectNode checks that node, whose OpenSSL is linked in and
// exported, is found by the fast path with all of its entry points.
func TestInspectNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no node on PATH; scripts/test-setup.sh installs it")
		}
		t.Skip("no node")
	}
	tg := mustInspect(t, node)
	have := map[string]bool{}
	for _, p := range tg.Probes {
		if p.Kind == Entry {
			have[p.Symbol] = true
		}
	}
	for _, want := range []string{"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"} {
		if !have[want] {
			t.Errorf("%s (%s): no probe on %s (%v)", node, tg.Library, want, have)
		}
	}
}
