// Package golden compares test output with golden files, for every package
// of the module. There is one way to rewrite them: run the tests with
// REWIND_UPDATE=1 (REWIND_UPDATE=1 go test ./...), then review the diff
// like code.
package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Updating reports whether the tests run to rewrite their golden files
// (REWIND_UPDATE=1) rather than to compare with them.
func Updating() bool { return os.Getenv("REWIND_UPDATE") == "1" }

// Check compares got with the file at path, or writes got there (creating
// its directory) when [Updating].
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if Updating() {
		Write(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run REWIND_UPDATE=1 go test to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run REWIND_UPDATE=1 go test and review the diff):\n%s", path, FirstDiff(got, want))
	}
}

// Write writes b to the file at path, creating its directory: for test data
// that [Updating] regenerates but no test compares (fuzz seeds).
func Write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FirstDiff shows the first line where got and want differ, for a test's
// failure message.
func FirstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + string(gl) + "\nwant: " + string(wl)
		}
	}
	return "(same lines, different bytes)"
}
