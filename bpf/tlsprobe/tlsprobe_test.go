//go:build linux

package tlsprobe

import (
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestRetOffsets(t *testing.T) {
	code := []byte{
		0x48, 0x89, 0xd8, // mov rax, rbx
		0xc3,                   // ret
		0x48, 0x83, 0xc4, 0x10, // add rsp, 0x10
		0xc3, // ret
		0xcc, // int3 (padding)
	}
	if got := RetOffsets(code); !slices.Equal(got, []uint64{3, 8}) {
		t.Errorf("RetOffsets = %v, want [3 8]", got)
	}
}

func TestGoRegisterABI(t *testing.T) {
	for v, want := range map[string]bool{"go1.16.15": false, "go1.17": true, "go1.26.8": true, "devel +abc": true, "go1.22rc1": true} {
		if got := goRegisterABI(v); got != want {
			t.Errorf("goRegisterABI(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestInspectSystem inspects the machine's libssl and the go command (which
// links crypto/tls) when they are there.
func TestInspectSystem(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("TLS probes are amd64 only")
	}
	libs := SystemLibraries()
	var ssl string
	for _, f := range libs {
		if soname(f.Path) == "libssl.so.3" {
			ssl = f.Path
		}
	}
	if ssl != "" {
		tg := mustInspect(t, ssl)
		if tg.Library != OpenSSL {
			t.Errorf("%s: library %s", ssl, tg.Library)
		}
		var names []string
		for _, p := range tg.Probes {
			if p.Kind == Entry {
				// "SSL_read,SSL_read_ex>internal": probed inside.
				names = append(names, strings.Split(strings.TrimSuffix(p.Symbol, ">internal"), ",")...)
			}
		}
		for _, want := range []string{"SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s: no probe on %s (%v)", ssl, want, names)
			}
		}
	} else {
		t.Log("no libssl.so.3 here")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	tg := mustInspect(t, goCmd)
	entries, rets := 0, 0
	for _, p := range tg.Probes {
		switch p.Kind {
		case GoEntry:
			entries++
		case GoReturn:
			rets++
		case Return:
			t.Errorf("a uretprobe in a Go program: %+v", p)
		}
	}
	if tg.Library != GoTLS || entries != 2 || rets < 2 {
		t.Errorf("%s: %s, %d entries, %d RETs", goCmd, tg.Library, entries, rets)
	}
}
