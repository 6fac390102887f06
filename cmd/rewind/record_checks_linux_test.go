//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// TestRecordChecksFirst: mistakes in record's arguments fail at once, with
// exit 2 and a message naming them, before any probe is loaded; an existing
// capture is not overwritten without --force (#19 item 8).
func TestRecordChecksFirst(t *testing.T) {
	bpftest.RequireRoot(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.rwd")
	os.WriteFile(existing, []byte("a capture someone kept"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "/nonexistent-dir/x.rwd"}, "directory /nonexistent-dir does not exist"},
		{[]string{"-o", dir}, "is a directory"},
		{[]string{"-o", filepath.Join(dir, "x.rwd"), "--iface", "nosuch0"}, "--iface nosuch0: no such interface"},
		{[]string{"-o", filepath.Join(dir, "x.rwd"), "--pid", "999999999"}, "--pid 999999999: no such process"},
		{[]string{"-o", existing}, "refusing to overwrite"},
	} {
		start := time.Now()
		code, _, errOut := runCLI(t, append([]string{"record", "--duration", "1s"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("record %v: exit %d, %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(errOut, "recording") || time.Since(start) > 2*time.Second {
			t.Errorf("record %v: failed only after loading the probes (%v): %q", tc.args, time.Since(start), errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.rwd")); err == nil {
			t.Fatalf("record %v created x.rwd", tc.args)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "a capture someone kept" {
		t.Fatalf("the existing capture was changed: %q", b)
	}
	code, _, errOut := runCLI(t, "record", "--duration", "1s", "--no-packets", "--force", "-o", existing)
	if code != exitOK {
		t.Fatalf("record --force: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(existing); strings.HasPrefix(string(b), "a capture") {
		t.Error("--force did not replace the file")
	}
}
