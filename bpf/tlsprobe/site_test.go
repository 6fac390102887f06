//go:build linux

package tlsprobe

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// The first bytes of functions of Debian 12's libssl.so.3 (OpenSSL 3.0),
// at their addresses there.
var (
	// SSL_read at 0x35430, whole: sub $0x18,%rsp; stack guard;
	// test %edx,%edx; js 0x35477; mov %rsp,%rcx; movslq %edx,%rdx;
	// call 0x35290; …; ret at 0x35476. At 0x35477 the error return:
	// ERR_new, ERR_set_debug and ERR_set_error through the PLT (0x1f020
	// to 0x218c8 in that file), then a jump back to the epilogue.
	sslRead   = []byte{0x48, 0x83, 0xec, 0x18, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, 0x48, 0x89, 0x44, 0x24, 0x08, 0x31, 0xc0, 0x85, 0xd2, 0x78, 0x2f, 0x48, 0x89, 0xe1, 0x48, 0x63, 0xd2, 0xe8, 0x3d, 0xfe, 0xff, 0xff, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48, 0x8b, 0x54, 0x24, 0x08, 0x64, 0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, 0x75, 0x44, 0x48, 0x83, 0xc4, 0x18, 0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0xc3, 0xe8, 0x44, 0x9f, 0xfe, 0xff, 0x48, 0x8d, 0x15, 0x05, 0xd5, 0x04, 0x00, 0xbe, 0x4c, 0x07, 0x00, 0x00, 0x48, 0x8d, 0x3d, 0x62, 0xcc, 0x04, 0x00, 0xe8, 0x2c, 0xa6, 0xfe, 0xff, 0x31, 0xc0, 0x31, 0xd2, 0xbe, 0x0f, 0x01, 0x00, 0x00, 0xbf, 0x14, 0x00, 0x00, 0x00, 0xe8, 0x49, 0xa4, 0xfe, 0xff, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xeb, 0xac, 0xe8, 0x3d, 0xb1, 0xfe, 0xff}
	sslReadVA = uint64(0x35430)
	// SSL_read_ex at 0x354c0: sub $0x8,%rsp; call 0x35290.
	sslReadEx = []byte{0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff, 0x31, 0xd2, 0x85, 0xc0}
	// ssl_read_internal at 0x35290: push %r13; push %r12; push %rbp; …
	readInternal = []byte{0x41, 0x55, 0x41, 0x54, 0x55, 0x53, 0x48, 0x83, 0xec, 0x38}
)

func TestCheapEntry(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		skip int
		ok   bool
	}{
		// Go 1.26's crypto/tls.(*Conn).Read: cmp 0x10(%r14),%rsp; jbe.
		{"Go's stack check", []byte{0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x7a, 0x03, 0x00, 0x00}, 4, true},
		// (*Conn).Write: lea -0x48(%rsp),%r12; cmp 0x10(%r14),%r12; jbe.
		{"Go's stack check of a larger frame", []byte{0x4c, 0x8d, 0x64, 0x24, 0xb8, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x93, 0x07, 0x00, 0x00}, 9, true},
		{"the slice's pointer overwritten", []byte{0x48, 0x89, 0xc3, 0x0f, 0x86, 0, 0, 0, 0}, 0, false}, // mov %rax,%rbx
		{"push", readInternal, 0, true},
		{"push with REX.W, single-stepped", []byte{0x48, 0x53}, 0, false},
		{"endbr64 then push", append([]byte{0xf3, 0x0f, 0x1e, 0xfa}, readInternal...), 4, true},
		{"sub from the stack pointer", sslRead, 0, false},
		{"pop", []byte{0x5f, 0xe8, 0, 0, 0, 0}, 0, false},
		{"undecodable", []byte{0x0f, 0xff}, 0, false},
	} {
		skip, ok := cheapEntry(c.code, goEntryReads)
		if skip != c.skip || ok != c.ok {
			t.Errorf("%s: cheapEntry = %d, %v; want %d, %v", c.name, skip, ok, c.skip, c.ok)
		}
	}
}

func TestCEntrySite(t *testing.T) {
	for _, c := range []struct {
		name    string
		code    []byte
		out     uint8
		skip    int
		siteOut uint8
		ok      bool
	}{
		{"push", readInternal, 4, 0, 4, true},
		// OpenSSL 3.5's SSL_write_ex: endbr64; mov %rcx,%r8; xor %ecx,%ecx;
		// jmp SSL_write_ex2@plt: at the jump the count's pointer is in r8.
		{"the out argument moved to r8", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x49, 0x89, 0xc8, 0x31, 0xc9, 0xe9, 0x02, 0x70, 0xfe, 0xff}, 4, 9, 5, true},
		{"GnuTLS's gnutls_record_send", []byte{0x45, 0x31, 0xc0, 0x31, 0xc9, 0xe9, 0x86, 0x9c, 0xff, 0xff}, 0, 5, 0, true},
		{"the out argument zeroed", []byte{0x31, 0xc9, 0xe9, 0, 0, 0, 0}, 4, 0, 0, false},
		{"the out argument in both", []byte{0x49, 0x89, 0xc8, 0xe9, 0, 0, 0, 0}, 4, 0, 0, false},
		{"the buffer moved", []byte{0x48, 0x89, 0xd6, 0xe9, 0, 0, 0, 0}, 0, 0, 0, false},
		{"the stack pointer moved", sslReadEx, 4, 0, 0, false},
	} {
		skip, siteOut, ok := cEntrySite(c.code, c.out)
		if skip != c.skip || siteOut != c.siteOut || ok != c.ok {
			t.Errorf("%s: cEntrySite = %d, %d, %v; want %d, %d, %v", c.name, skip, siteOut, ok, c.skip, c.siteOut, c.ok)
		}
	}
}

// debian12 reads the code of SSL_read in Debian 12's libssl.so.3.
func debian12(va uint64) []byte {
	if va >= sslReadVA && va < sslReadVA+uint64(len(sslRead)) {
		return sslRead[va-sslReadVA:]
	}
	return nil
}

func debian12PLT(va uint64) bool { return va >= 0x1f020 && va < 0x218c8 }

func TestFindForward(t *testing.T) {
	rel := func(b ...byte) []byte { return b }
	// exits: SSL_read's error return in Debian 12; any other branch target
	// leads elsewhere.
	exits := func(va uint64) bool { return exitPath(debian12, debian12PLT, va) }
	for _, c := range []struct {
		name string
		code []byte
		va   uint64
		out  uint8
		want forward
		ok   bool
	}{
		{"SSL_read", sslRead, sslReadVA, 0, forward{target: 0x35290, outArg: 4}, true},
		{"SSL_read_ex", sslReadEx, 0x354c0, 4, forward{target: 0x35290, outArg: 4}, true},
		// OpenSSL 3.3's SSL_write_ex(s, buf, num, written) is
		// SSL_write_ex2(s, buf, num, 0, written): mov %rcx,%r8;
		// xor %ecx,%ecx; jmp.
		{"a tail call moving the out argument", rel(0x49, 0x89, 0xc8, 0x31, 0xc9, 0xe9, 0x10, 0x00, 0x00, 0x00), 0x1000, 4,
			forward{target: 0x101a, outArg: 5, tail: true}, true},
		// ssl_write_internal(s, buf, (size_t)num, 0, &written): sub;
		// xor %ecx,%ecx; lea 0x8(%rsp),%r8; movslq %edx,%rdx; call.
		{"the count's place in the frame as argument 5", rel(0x48, 0x83, 0xec, 0x18, 0x31, 0xc9, 0x4c, 0x8d, 0x44, 0x24, 0x08, 0x48, 0x63, 0xd2, 0xe8, 0x00, 0x01, 0x00, 0x00), 0x2000, 0,
			forward{target: 0x2113, outArg: 5}, true},
		// The same with a QUIC check inlined before the call: cmpl
		// $1,(%rdi); jne to the TLS path, which is not an error return.
		{"a branch to other work", rel(0x48, 0x83, 0xec, 0x18, 0x83, 0x3f, 0x01, 0x75, 0x20, 0x31, 0xc9, 0x4c, 0x8d, 0x44, 0x24, 0x08, 0x48, 0x63, 0xd2, 0xe8, 0x00, 0x01, 0x00, 0x00), 0x2000, 0,
			forward{}, false},
		{"a test and a call with the arguments as they came", rel(0xf3, 0x0f, 0x1e, 0xfa, 0x83, 0x3f, 0x01, 0x75, 0x10, 0xe8, 0, 0, 0, 0), 0x3000, 4,
			forward{}, false},
		// lea -0x10(%rsp),%rcx; jmp: a place in a frame the jump leaves.
		{"a tail call handing over the caller's stack", rel(0x48, 0x8d, 0x4c, 0x24, 0xf0, 0xe9, 0, 0, 0, 0), 0, 0, forward{}, false},
		{"two places in the frame", rel(0x48, 0x89, 0xe1, 0x4c, 0x8d, 0x44, 0x24, 0x08, 0xe8, 0, 0, 0, 0), 0, 0, forward{}, false},
		{"no place for the count", rel(0x31, 0xc9, 0xe8, 0, 0, 0, 0), 0, 0, forward{}, false},
		{"the buffer replaced", rel(0x48, 0x89, 0xe1, 0x48, 0x89, 0xd6, 0xe8, 0, 0, 0, 0), 0, 0, forward{}, false},
		{"the connection loaded from memory", rel(0x48, 0x89, 0xe1, 0x48, 0x8b, 0x3f, 0xe8, 0, 0, 0, 0), 0, 0, forward{}, false},
		{"a jump out of a frame", rel(0x48, 0x83, 0xec, 0x08, 0xe9, 0, 0, 0, 0), 0, 4, forward{}, false},
		{"an indirect call", rel(0x48, 0x89, 0xe1, 0xff, 0xd0), 0, 0, forward{}, false},
		{"an instruction it does not model", rel(0x48, 0x99, 0x48, 0x89, 0xe1, 0xe8, 0, 0, 0, 0), 0, 0, forward{}, false}, // cqo writes rdx
		{"a return first", rel(0xc3), 0, 0, forward{}, false},
	} {
		got, ok := findForward(c.code, c.va, c.out, exits)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("%s: findForward = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestExitPath(t *testing.T) {
	if !exitPath(debian12, debian12PLT, 0x35477) {
		t.Error("SSL_read's error return not seen as one")
	}
	if exitPath(debian12, func(uint64) bool { return false }, 0x35477) {
		t.Error("calls outside the PLT passed")
	}
	if exitPath(debian12, debian12PLT, 0x35290) {
		t.Error("code that is not there passed")
	}
	// Code at 0x100, 0x200, …, each read up to the end of its piece.
	code := map[uint64][]byte{
		0x100: {0xff, 0xe0}, // jmp *%rax
		0x200: {0xeb, 0xfe}, // a jump to itself
		// xor %eax,%eax; je 0x305; ret; ret: both sides return.
		0x300: {0x31, 0xc0, 0x74, 0x01, 0xc3, 0xc3},
		// xor; je 0x305; ret; then the taken side calls 0x1000, not the PLT.
		0x400: {0x31, 0xc0, 0x74, 0x01, 0xc3, 0xe8, 0xf6, 0x0b, 0x00, 0x00, 0xc3},
		// The taken side of an unreadable branch.
		0x500: {0x31, 0xc0, 0x74, 0x40, 0xc3},
		// sub %fs:0x28,%rdx; jne 0x60c; ret; then __stack_chk_fail's call
		// (here not through the PLT: the side is skipped all the same).
		0x600: {0x64, 0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, 0x75, 0x01, 0xc3, 0xe8, 0xef, 0x09, 0x00, 0x00},
		// The same branch after a compare with another memory operand.
		0x700: {0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, 0x75, 0x01, 0xc3, 0xe8, 0xf0, 0x08, 0x00, 0x00},
	}
	read := func(va uint64) []byte {
		b := code[va&^0xff]
		if off := va & 0xff; off < uint64(len(b)) {
			return b[off:]
		}
		return nil
	}
	for va, want := range map[uint64]bool{0x100: false, 0x200: false, 0x300: true, 0x400: false, 0x500: false, 0x600: true, 0x700: false} {
		if got := exitPath(read, debian12PLT, va); got != want {
			t.Errorf("%#x: exitPath = %v, want %v", va, got, want)
		}
	}
}

func TestBranchesInto(t *testing.T) {
	// xor %ecx,%ecx; jmp …; … jne back to the jmp at +2.
	code := []byte{0x31, 0xc9, 0xeb, 0x02, 0x90, 0x90, 0x75, 0xfa}
	if !branchesInto(code, 0, 2) {
		t.Error("a branch back to +2 not seen")
	}
	if branchesInto(code, 2, 4) {
		t.Error("a branch to +2 seen in (2, 4]")
	}
}

// TestSystemProbesEmulated checks that every entry probe Inspect places in
// this machine's TLS libraries lands on an instruction the kernel emulates
// (the single-stepped ones cost ~17 µs a call here), and so do the entry
// probes of the go command's crypto/tls. GnuTLS's
// gnutls_record_recv, which begins with sub $8,%rsp and shuffles its
// arguments before any call, is the one known exception.
func TestSystemProbesEmulated(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("TLS probes are amd64 only")
	}
	seen := 0
	libs := map[string]int{} // entry probes checked, by library
	paths := []string{}
	for _, lib := range SystemLibraries() {
		paths = append(paths, lib.Path)
	}
	// Debian 13's OpenSSL 3.5, when scripts/test-setup.sh unpacked it.
	if p := "../../.cache/trixie/usr/lib/x86_64-linux-gnu/libssl.so.3"; fileExists(p) {
		paths = append(paths, p)
	}
	for _, path := range paths {
		base := soname(path)
		if base != "libssl.so.3" && base != "libgnutls.so.30" {
			continue
		}
		n := entriesEmulated(t, path, base, func(p Probe) bool { return p.Kind == Entry && p.Symbol != "gnutls_record_recv" })
		seen += n
		libs[path] += n
	}
	t.Logf("entry probes checked: %v", libs)
	// A Go program's entry probes: past the stack check, on its jbe.
	if goCmd, err := exec.LookPath("go"); err == nil {
		seen += entriesEmulated(t, goCmd, "go", func(p Probe) bool { return p.Kind == GoEntry })
	}
	if seen == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no libssl.so.3, libgnutls.so.30 or go command on this machine")
		}
		t.Skip("no libssl.so.3, libgnutls.so.30 or go command here")
	}
}

// soname returns the name of the library a path leads to up to its major
// version (libssl.so.3, libgnutls.so.30): SystemLibraries lists a library
// under the first of its names it finds, often the libssl.so link.
func soname(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	base := filepath.Base(path)
	for _, n := range []string{"libssl.so.3", "libgnutls.so.30"} {
		if strings.HasPrefix(base, n) && (len(base) == len(n) || base[len(n)] == '.') {
			return n
		}
	}
	return base
}

// mustInspect is Inspect for a file the test knows to have TLS probes.
func mustInspect(t testing.TB, path string) *Target {
	t.Helper()
	tg, err := Inspect(path)
	if err != nil || tg == nil {
		t.Fatalf("Inspect(%s) = %v, %v", path, tg, err)
	}
	return tg
}

// entriesEmulated checks that the probes of path that keep selects lie on
// instructions the kernel emulates, and returns how many it checked.
func entriesEmulated(t *testing.T, path, label string, keep func(Probe) bool) int {
	t.Helper()
	tg := mustInspect(t, path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range tg.Probes {
		if !keep(p) {
			continue
		}
		n++
		inst, err := x86asm.Decode(raw[p.Offset:], 64)
		if err != nil || !emulated(inst) {
			t.Errorf("%s: %s probed at %#x on %v (single-stepped)", label, p.Symbol, p.Offset, inst)
		}
	}
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestPlacementOpenSSL pins where the probes of the two OpenSSL builds the
// tests run on go, by name and out argument: Debian 12's 3.0 (the
// machine's) follows SSL_read and SSL_read_ex, SSL_write and SSL_write_ex
// into their internal functions; Debian 13's 3.5 (unpacked by
// scripts/test-setup.sh) follows SSL_write into ssl_write_internal, which
// SSL_write_ex2 shares with its count in r8, while SSL_write_ex, a jump
// to SSL_write_ex2 with its out argument moved to r8, keeps its own pair.
// A change to following, to merging wrappers that share an internal
// function, or to the conflict rule shows here.
func TestPlacementOpenSSL(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("TLS probes are amd64 only")
	}
	cases := map[string]map[string]uint8{
		"../../.cache/trixie/usr/lib/x86_64-linux-gnu/libssl.so.3": {
			"SSL_read,SSL_read_ex>internal":    4,
			"SSL_write,SSL_write_ex2>internal": 5,
			"SSL_write_ex":                     5,
		},
	}
	for _, lib := range SystemLibraries() {
		if soname(lib.Path) == "libssl.so.3" {
			cases[lib.Path] = map[string]uint8{
				"SSL_read,SSL_read_ex>internal":   4,
				"SSL_write,SSL_write_ex>internal": 4,
			}
		}
	}
	checked := 0
	for path, want := range cases {
		if !fileExists(path) {
			continue
		}
		tg := mustInspect(t, path)
		got := map[string]uint8{}
		for _, p := range tg.Probes {
			if p.Kind == Entry {
				got[p.Symbol] = p.OutArg
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: entry probes %v, want %v", path, got, want)
		}
		checked++
	}
	if checked == 0 && os.Getenv("CI") == "true" {
		t.Fatal("no OpenSSL build to check")
	}
}
