//go:build linux && amd64

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/internal/golden"
)

// crossInputs are the captures every target analyzes: each fixed .rwd in
// testdata plus classic pcap and compressed raw-IP pcap input.
func crossInputs(t *testing.T) []string {
	t.Helper()
	inputs := fixedCaptures(t)
	for _, p := range []string{"conversation.pcap", "conversation.pcapng.gz", "conversation-raw.pcap.zst"} {
		inputs = append(inputs, filepath.Join("../../analyze/pcapin/testdata", p))
	}
	return inputs
}

// crossOutputs are the files one analyze invocation pair writes per input.
var crossOutputs = []string{"report.txt", "report.json", "exchanges.jsonl", "har.json", "decrypted.pcapng", "exchanges.parquet"}

// crossTarget is a GOOS/GOARCH pair and how to run its binary on this host.
type crossTarget struct {
	goos, goarch string
	// runner returns the command line prefix that executes a binary of this
	// target, and an error saying what is missing when it cannot run here.
	runner func(t *testing.T, work string) ([]string, []string, error)
}

// TestCrossPlatformOutputsIdentical builds rewind for windows/amd64 and
// linux/arm64, runs them under wine64 and qemu-aarch64-static on every fixed
// capture and on pcap input, and requires every output to be byte-identical
// to what the native linux/amd64 binary writes. It is how "the same inputs
// give the same bytes on every OS and architecture" is checked rather than
// assumed.
func TestCrossPlatformOutputsIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and runs two emulators")
	}
	work := t.TempDir()
	inputs := crossInputs(t)
	for _, in := range inputs {
		copyFile(t, in, filepath.Join(work, "in", filepath.Base(in)))
	}

	native, _, _ := runTarget(t, work, crossTarget{goos: "linux", goarch: "amd64", runner: direct}, inputs)
	for _, tg := range []crossTarget{
		{goos: "windows", goarch: "amd64", runner: wineRunner},
		{goos: "linux", goarch: "arm64", runner: qemuRunner},
	} {
		t.Run(tg.goos+"-"+tg.goarch, func(t *testing.T) {
			got, prefix, env := runTarget(t, work, tg, inputs)
			compared := 0
			for key, want := range native {
				g, ok := got[key]
				if !ok {
					t.Errorf("%s: missing", key)
					continue
				}
				if !bytes.Equal(g, want) {
					t.Errorf("%s differs from linux/amd64 (%d vs %d bytes): %s", key, len(g), len(want), golden.FirstDiff(g, want))
				}
				compared++
			}
			if tg.goos != "linux" {
				checkRecordRefused(t, work, tg, prefix, env)
			}
			t.Logf("%s/%s: %d outputs of %d inputs compared byte for byte with linux/amd64", tg.goos, tg.goarch, compared, len(inputs))
		})
	}
}

// runTarget builds rewind for tg and analyzes each input with it, returning
// every output keyed by "input/output", with the command prefix and
// environment that run its binary.
func runTarget(t *testing.T, work string, tg crossTarget, inputs []string) (map[string][]byte, []string, []string) {
	t.Helper()
	name := "rewind-" + tg.goos + "-" + tg.goarch
	if tg.goos == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(work, name)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS="+tg.goos, "GOARCH="+tg.goarch, "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s/%s: %v\n%s", tg.goos, tg.goarch, err, out)
	}
	prefix, env, err := tg.runner(t, work)
	if err != nil {
		bpftest.Unavailable(t, err.Error())
	}
	outputs := map[string][]byte{}
	for _, in := range inputs {
		base := filepath.Base(in)
		dir := filepath.Join(work, "out-"+tg.goos+"-"+tg.goarch, base)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Relative names only: the binary runs in dir, so no path syntax of
		// one OS reaches another, and no absolute path reaches an output.
		input := filepath.Join("..", "..", "in", base)
		if tg.goos == "windows" {
			input = strings.ReplaceAll(input, "/", `\`)
		}
		runIn(t, dir, prefix, env, bin, "analyze", input, "--quiet",
			"--report", "text", "-o", "report.txt",
			"--exchanges", "exchanges.jsonl", "--har", "har.json", "--pcapng", "decrypted.pcapng", "--parquet", "exchanges.parquet")
		runIn(t, dir, prefix, env, bin, "analyze", input, "--quiet", "--report", "json", "-o", "report.json")
		for _, o := range crossOutputs {
			b, err := os.ReadFile(filepath.Join(dir, o))
			if err != nil {
				t.Fatalf("%s/%s on %s: %v", tg.goos, tg.goarch, base, err)
			}
			outputs[base+"/"+o] = b
		}
	}
	return outputs, prefix, env
}

// checkRecordRefused runs `rewind record` and `rewind demo` built for a
// system without eBPF: record must exit 1 with one line saying recording
// needs Linux, and demo must still replay the bundled sample.
func checkRecordRefused(t *testing.T, work string, tg crossTarget, prefix, env []string) {
	t.Helper()
	bin := filepath.Join(work, "rewind-"+tg.goos+"-"+tg.goarch+".exe")
	cmd := targetCommand(context.Background(), work, prefix, env, bin, "record", "-o", "x.rwd")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	msg := strings.TrimSpace(stderr.String())
	if code != 1 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "Linux") || !strings.Contains(msg, "analyze") {
		t.Errorf("record on %s: exit %d, stderr %q; want exit 1 and one line naming Linux and analyze", tg.goos, code, msg)
	}
	out, err := targetCommand(context.Background(), work, prefix, env, bin, "demo").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("rewind SLI report")) {
		t.Errorf("demo on %s: %v\n%s", tg.goos, err, out)
	}
}

func runIn(t *testing.T, dir string, prefix, env []string, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := targetCommand(ctx, dir, prefix, env, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
}

// targetCommand runs bin with args in dir through the target's runner
// prefix (wine, qemu or none) and with its environment.
func targetCommand(ctx context.Context, dir string, prefix, env []string, bin string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, prefix...), bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func direct(*testing.T, string) ([]string, []string, error) { return nil, []string{"TZ=UTC"}, nil }

func qemuRunner(*testing.T, string) ([]string, []string, error) {
	q, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		return nil, nil, fmt.Errorf("qemu-aarch64-static not installed (Debian package qemu-user-static; scripts/test-setup.sh installs it)")
	}
	return []string{q}, []string{"TZ=UTC"}, nil
}

// wineRunner prepares a private wine prefix. Go 1.24+ Windows binaries need
// ProcessPrng from bcryptprimitives.dll, which wine 8 does not ship, so the
// prefix gets a small DLL, built here with mingw-w64, that provides it on top
// of RtlGenRandom. The shim only feeds the runtime's random source; nothing
// the outputs depend on.
func wineRunner(t *testing.T, work string) ([]string, []string, error) {
	wine := "/usr/lib/wine/wine64"
	if _, err := os.Stat(wine); err != nil {
		if wine, err = exec.LookPath("wine64"); err != nil {
			return nil, nil, fmt.Errorf("wine64 not installed (Debian package wine64; scripts/test-setup.sh installs it)")
		}
	}
	cc, err := exec.LookPath("x86_64-w64-mingw32-gcc")
	if err != nil {
		return nil, nil, fmt.Errorf("x86_64-w64-mingw32-gcc not installed (Debian package gcc-mingw-w64-x86-64-win32; scripts/test-setup.sh installs it)")
	}
	prefix := filepath.Join(work, "wineprefix")
	env := []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=bcryptprimitives=n;mscoree,mshtml=", "TZ=UTC"}
	// Create the prefix.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := exec.CommandContext(ctx, wine, "wineboot", "--init")
	boot.Env = append(os.Environ(), env...)
	if out, err := boot.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("wineboot --init: %v: %s", err, out)
	}
	sys32 := filepath.Join(prefix, "drive_c", "windows", "system32")
	src := filepath.Join(work, "processprng.c")
	if err := os.WriteFile(src, []byte(processPrngShim), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-shared", "-O2", "-o", filepath.Join(sys32, "bcryptprimitives.dll"), src, "-ladvapi32").CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("building the ProcessPrng shim: %v: %s", err, out)
	}
	return []string{wine}, env, nil
}

const processPrngShim = `#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n; len -= n;
  }
  return TRUE;
}
`

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(to), 0o755); err == nil {
			err = os.WriteFile(to, data, 0o644)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
