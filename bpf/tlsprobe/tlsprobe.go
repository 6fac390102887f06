//go:build linux

// Package tlsprobe finds where rewind's TLS uprobes go: the files that hold a
// TLS library (a dynamic libssl or libgnutls, an executable with OpenSSL or
// BoringSSL linked in, a Go program using crypto/tls), which of their
// functions to probe, and at which file offsets. It reads ELF files only and
// loads nothing into the kernel; package bpf attaches the probes.
package tlsprobe

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/sys/unix"
)

// Library is a TLS implementation. Its values are those of the data
// sources in the capture format (capture.Source): OpenSSL 32 … Go 35.
type Library uint8

// TLS libraries.
const (
	OpenSSL   Library = 32
	BoringSSL Library = 33
	GnuTLS    Library = 34
	GoTLS     Library = 35
)

// String returns the library's name as the capture format spells it.
func (l Library) String() string {
	switch l {
	case OpenSSL:
		return "openssl"
	case BoringSSL:
		return "boringssl"
	case GnuTLS:
		return "gnutls"
	case GoTLS:
		return "go-tls"
	}
	return fmt.Sprintf("library(%d)", uint8(l))
}

// Kind says how a [Probe] attaches and which register convention its
// program reads.
type Kind uint8

// Probe kinds.
const (
	// Entry is a uprobe at a C function's entry (System V arguments).
	Entry Kind = iota + 1
	// Return is a uretprobe of a C function.
	Return
	// GoEntry is a uprobe at a Go function's entry (Go register ABI).
	GoEntry
	// GoReturn is a uprobe at one RET instruction of a Go function: Go
	// programs must never get uretprobes (they rewrite the return address
	// on a stack the Go runtime moves).
	GoReturn
)

// Directions of a probed call, as in the BPF records.
const (
	DirIngress uint8 = 1 // reads: plaintext received
	DirEgress  uint8 = 2 // writes: plaintext sent
)

// Probe is one attach point in a file.
type Probe struct {
	Symbol string
	// Offset is the file offset of the probed instruction.
	Offset uint64
	Kind   Kind
	Dir    uint8
	// OutArg is the 1-based argument that receives the byte count (the
	// size_t * of SSL_read_ex and friends); 0 when the return value is it.
	OutArg uint8
}

// Target is a file with a TLS library in it and the probes it needs.
type Target struct {
	Path      string
	Library   Library
	GoVersion string // Go programs: the toolchain that built it
	Probes    []Probe
}

// cFunc is a C TLS function: (conn, buf, num, …) returning the byte count or,
// with out set, 1 and the count in *out.
type cFunc struct {
	name string
	dir  uint8
	out  uint8
}

var opensslFuncs = []cFunc{
	{"SSL_read", DirIngress, 0},
	{"SSL_read_ex", DirIngress, 4},
	{"SSL_write", DirEgress, 0},
	{"SSL_write_ex", DirEgress, 4},
	{"SSL_write_ex2", DirEgress, 5}, // OpenSSL >= 3.3: (ssl, buf, num, flags, written)
}

var gnutlsFuncs = []cFunc{
	{"gnutls_record_recv", DirIngress, 0},
	{"gnutls_record_send", DirEgress, 0},
}

// Go functions probed: func (c *Conn) Read(b []byte) (int, error) and Write.
var goFuncs = []struct {
	name string
	dir  uint8
}{
	{"crypto/tls.(*Conn).Read", DirIngress},
	{"crypto/tls.(*Conn).Write", DirEgress},
}

// goEntryReads are the registers go_tls_enter reads: the receiver, the
// slice's pointer and length, and g.
var goEntryReads = []x86asm.Reg{x86asm.RAX, x86asm.RBX, x86asm.RCX, x86asm.R14}

// ErrUnsupported is wrapped by Inspect's error for a file with a TLS library
// rewind cannot probe (another architecture, a Go older than 1.17).
var ErrUnsupported = errors.New("unsupported TLS target")

// Inspect reads the ELF file at path and returns its TLS probes, or nil
// without an error when it holds no TLS library.
func Inspect(path string) (*Target, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading ELF file %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return nil, nil // TLS probes read x86-64 registers
	}
	if f.Section(".gopclntab") != nil || f.Section(".go.buildinfo") != nil {
		return inspectGo(path, f)
	}
	return inspectC(path, f)
}

// cSymbolNames are the names inspectC looks up: the probed functions and
// the ones that tell libraries apart.
var cSymbolNames = func() []string {
	names := []string{"SSL_CTX_set_strict_cipher_list"}
	for _, fn := range append(append([]cFunc(nil), opensslFuncs...), gnutlsFuncs...) {
		names = append(names, fn.name)
	}
	return names
}()

var cSymbols = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range cSymbolNames {
		m[n] = true
	}
	return m
}()

// symbols returns the functions of cSymbols that f's dynamic and static
// symbol tables define, by name, and those it imports. It looks them up in
// the GNU hash table when f has one and the answer needs no imports; else
// it reads the tables, the static one only when the dynamic one has no TLS
// entry point: a library, or a program exporting its TLS library for
// plugins (node), has the API there, and the static table of a big program
// takes far longer to read, which would delay attaching to a program that
// was just exec'd.
func symbols(f *elf.File) (defined map[string]elf.Symbol, imported map[string]bool) {
	if d, ok := hashedSymbols(f, cSymbolNames); ok {
		switch {
		case d["gnutls_record_recv"].Value != 0,
			d["SSL_read"].Value != 0 && !needsGnuTLS(f):
			return d, map[string]bool{}
		}
	}
	defined = map[string]elf.Symbol{}
	imported = map[string]bool{}
	add := func(syms []elf.Symbol) {
		for _, s := range syms {
			if !cSymbols[s.Name] {
				continue
			}
			if s.Section == elf.SHN_UNDEF {
				imported[s.Name] = true
				continue
			}
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
				continue
			}
			if _, ok := defined[s.Name]; !ok {
				defined[s.Name] = s
			}
		}
	}
	if syms, err := f.DynamicSymbols(); err == nil {
		add(syms)
	}
	if defined["SSL_read"].Value != 0 || defined["gnutls_record_recv"].Value != 0 {
		return defined, imported
	}
	if syms, err := f.Symbols(); err == nil {
		add(syms)
	}
	return defined, imported
}

func inspectC(path string, f *elf.File) (*Target, error) {
	defined, imported := symbols(f)
	t := &Target{Path: path}
	switch {
	case defined["gnutls_record_recv"].Value != 0:
		t.Library = GnuTLS
		probes, err := placeC(f, defined, gnutlsFuncs, false)
		if err != nil {
			return nil, fmt.Errorf("placing probes in %s: %w", path, err)
		}
		t.Probes = probes
	case defined["SSL_read"].Value != 0 && !imported["gnutls_record_recv"]:
		// (GnuTLS's OpenSSL compatibility library exports SSL_read too,
		// on top of gnutls_record_recv, which is probed itself.)
		t.Library = OpenSSL
		if defined["SSL_CTX_set_strict_cipher_list"].Value != 0 {
			t.Library = BoringSSL // an API only BoringSSL has
		}
		probes, err := placeC(f, defined, opensslFuncs, t.Library == OpenSSL)
		if err != nil {
			return nil, fmt.Errorf("placing probes in %s: %w", path, err)
		}
		t.Probes = probes
	}
	if len(t.Probes) == 0 {
		return nil, nil
	}
	return t, nil
}

func inspectGo(path string, f *elf.File) (*Target, error) {
	t := &Target{Path: path, Library: GoTLS}
	if bi, err := buildinfo.ReadFile(path); err == nil {
		t.GoVersion = bi.GoVersion
	}
	funcs, err := goFuncRanges(f)
	if err != nil {
		return nil, fmt.Errorf("finding Go functions in %s: %w", path, err)
	}
	if _, ok := funcs[goFuncs[0].name]; !ok {
		return nil, nil // no crypto/tls linked in
	}
	if !goRegisterABI(t.GoVersion) {
		return nil, fmt.Errorf("%s built by %s: %w (Go crypto/tls probes need the register ABI of Go >= 1.17)",
			path, t.GoVersion, ErrUnsupported)
	}
	for _, fn := range goFuncs {
		r, ok := funcs[fn.name]
		if !ok {
			continue
		}
		code, err := readVA(f, r[0], r[1]-r[0])
		if err != nil {
			return nil, fmt.Errorf("reading %s in %s: %w", fn.name, path, err)
		}
		entry, err := fileOffset(f, r[0])
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", fn.name, path, err)
		}
		// The stack check (cmp 0x10(%r14),%rsp) is single-stepped, the
		// jbe after it emulated; both see the arguments of the entry.
		skip, ok := cheapEntry(code, goEntryReads)
		if !ok || !slideAllowed(code, skip, func() []byte { return code }) {
			skip = 0
		}
		t.Probes = append(t.Probes, Probe{Symbol: fn.name, Offset: entry + uint64(skip), Kind: GoEntry, Dir: fn.dir})
		rets := RetOffsets(code)
		if len(rets) == 0 {
			return nil, fmt.Errorf("%s in %s: no RET instruction found", fn.name, path)
		}
		for _, off := range rets {
			t.Probes = append(t.Probes, Probe{Symbol: fn.name, Offset: entry + off, Kind: GoReturn, Dir: fn.dir})
		}
	}
	return t, nil
}

// RetOffsets disassembles x86-64 code and returns the offsets of its RET
// instructions. Decoding stops at the first byte sequence that is no
// instruction (the padding after a function).
func RetOffsets(code []byte) []uint64 {
	var rets []uint64
	for i := 0; i < len(code); {
		inst, err := x86asm.Decode(code[i:], 64)
		if err != nil || inst.Len == 0 {
			break
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, uint64(i))
		}
		i += inst.Len
	}
	return rets
}

// goFuncRanges returns [entry, end) of the probed Go functions, from the
// symbol table or, in a stripped binary, from .gopclntab.
func goFuncRanges(f *elf.File) (map[string][2]uint64, error) {
	out := map[string][2]uint64{}
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			for _, fn := range goFuncs {
				if s.Name == fn.name && s.Value != 0 && s.Size != 0 {
					out[s.Name] = [2]uint64{s.Value, s.Value + s.Size}
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		return out, nil
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .gopclntab: %w", err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, fmt.Errorf("decoding .gopclntab: %w", err)
	}
	for _, fn := range goFuncs {
		if g := tab.LookupFunc(fn.name); g != nil && g.End > g.Entry {
			out[fn.name] = [2]uint64{g.Entry, g.End}
		}
	}
	return out, nil
}

// goRegisterABI reports whether a Go version ("go1.21.3") passes arguments
// in registers on amd64 (Go >= 1.17). An unknown version is assumed recent.
func goRegisterABI(v string) bool {
	rest, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return true
	}
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		rest = rest[:i]
	}
	minor, err := strconv.Atoi(rest)
	return err != nil || minor >= 17
}

// fileOffset converts a virtual address of f to the file offset uprobes
// take.
func fileOffset(f *elf.File, va uint64) (uint64, error) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= va && va < p.Vaddr+p.Filesz {
			return va - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("address %#x is in no executable segment", va)
}

func readVA(f *elf.File, va, n uint64) ([]byte, error) {
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Addr <= va && va+n <= s.Addr+s.Size {
			b := make([]byte, n)
			if _, err := s.ReadAt(b, int64(va-s.Addr)); err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("address %#x+%d is in no section", va, n)
}

// File is a file a process maps, named by device and inode (attach once
// per file, however many processes map it) and by a path that opens it from
// this process.
type File struct {
	Dev, Ino uint64
	Path     string // to open: /proc/PID/root/…, /proc/PID/exe
	Name     string // as the process sees it
}

// libraryName reports whether a mapped file's name suggests a TLS library
// worth inspecting.
func libraryName(name string) bool {
	base := strings.ToLower(filepath.Base(name))
	return strings.Contains(base, "ssl") || strings.Contains(base, "tls")
}

// ProcessFiles returns the files of process pid to inspect: its executable
// (statically linked TLS, Go) and the mapped libraries whose name suggests
// TLS (libssl, libgnutls, …).
func ProcessFiles(pid int) ([]File, error) {
	var out []File
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return nil, fmt.Errorf("reading executable of process %d: %w", pid, err)
	}
	name, _ := os.Readlink(exe)
	out = append(out, File{Dev: st.Dev, Ino: st.Ino, Path: exe, Name: name})
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return out, fmt.Errorf("reading memory map of process %d: %w", pid, err)
	}
	seen := map[[2]uint64]bool{{st.Dev, st.Ino}: true}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.Contains(fields[1], "x") || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		path := fields[5]
		if !libraryName(path) {
			continue
		}
		ino, err := strconv.ParseUint(fields[4], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		maj, min, ok := strings.Cut(fields[3], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 16, 32)
		mi, err2 := strconv.ParseUint(min, 16, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		key := [2]uint64{unix.Mkdev(uint32(ma), uint32(mi)), ino}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, File{Dev: key[0], Ino: ino, Path: fmt.Sprintf("/proc/%d/root%s", pid, path), Name: path})
	}
	return out, nil
}

// libraryDirs are where SystemLibraries looks.
var libraryDirs = []string{
	"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64",
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
}

// SystemLibraries returns the libssl and libgnutls files of the standard
// library directories: probed at start, they cover the programs started
// during a recording from their first call on.
func SystemLibraries() []File {
	var out []File
	seen := map[[2]uint64]bool{}
	for _, dir := range libraryDirs {
		for _, pat := range []string{"libssl.so*", "libgnutls.so*"} {
			matches, _ := filepath.Glob(filepath.Join(dir, pat))
			for _, m := range matches {
				var st unix.Stat_t
				if unix.Stat(m, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
					continue
				}
				key := [2]uint64{st.Dev, st.Ino}
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, File{Dev: st.Dev, Ino: st.Ino, Path: m, Name: m})
			}
		}
	}
	return out
}
