package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/internal/golden"
)

// goldenOutputs are the files analyze writes for each fixed capture.
var goldenOutputs = []string{"report.txt", "report.json", "exchanges.jsonl", "har.json"}

// analyzeAll runs analyze once with every output and returns them by name.
func analyzeAll(t *testing.T, capturePath string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	args := []string{"analyze", capturePath, "--quiet",
		"--report", "text", "-o", filepath.Join(dir, "report.txt"),
		"--exchanges", filepath.Join(dir, "exchanges.jsonl"), "--har", filepath.Join(dir, "har.json")}
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("analyze %s: exit %d: %s", capturePath, code, errOut)
	}
	if code, _, errOut := runCLI(t, "analyze", capturePath, "--quiet", "--report", "json", "-o", filepath.Join(dir, "report.json")); code != 0 {
		t.Fatalf("analyze %s: exit %d: %s", capturePath, code, errOut)
	}
	out := map[string][]byte{}
	for _, name := range goldenOutputs {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func fixedCaptures(t *testing.T) []string {
	paths, _ := filepath.Glob("../../testdata/*.rwd")
	if len(paths) == 0 {
		t.Fatal("no fixed captures in testdata/")
	}
	return paths
}

// TestGolden replays every fixed capture in testdata and compares each
// output with its golden file; REWIND_UPDATE=1 rewrites them.
func TestGolden(t *testing.T) {
	for _, path := range fixedCaptures(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".rwd")
		t.Run(name, func(t *testing.T) {
			got := analyzeAll(t, path)
			dir := filepath.Join("../../testdata/golden", name)
			for _, out := range goldenOutputs {
				golden.Check(t, filepath.Join(dir, out), got[out])
			}
		})
	}
}

// TestDeterministic replays each fixed capture twice and with GOMAXPROCS 1
// and 4, and requires byte-identical outputs.
func TestDeterministic(t *testing.T) {
	for _, path := range fixedCaptures(t) {
		prev := runtime.GOMAXPROCS(1)
		a := analyzeAll(t, path)
		runtime.GOMAXPROCS(4)
		b := analyzeAll(t, path)
		c := analyzeAll(t, path)
		runtime.GOMAXPROCS(prev)
		for name := range a {
			if !bytes.Equal(a[name], b[name]) || !bytes.Equal(b[name], c[name]) {
				t.Errorf("%s: %s differs between runs:\n%s", path, name, golden.FirstDiff(a[name], b[name]))
			}
		}
	}
}

// TestSampleEmbedded keeps the capture embedded for 'rewind demo' identical to
// testdata/sample.rwd.
func TestSampleEmbedded(t *testing.T) {
	want, err := os.ReadFile("../../testdata/sample.rwd")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sampleCapture, want) {
		t.Fatal("cmd/rewind/sample.rwd differs from testdata/sample.rwd: cp testdata/sample.rwd cmd/rewind/")
	}
	if len(want) < 4096 {
		t.Fatalf("sample capture is %d bytes, want > 4 KiB", len(want))
	}
}
