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

// recordCheckCases are mistakes in record's arguments and what the refusal
// says. dir holds existing, a file that must not be overwritten.
func recordCheckCases(dir, existing string) []struct {
	args []string
	want string
} {
	return []struct {
		args []string
		want string
	}{
		{[]string{"-o", "/nonexistent-dir/x.rwd"}, "directory /nonexistent-dir does not exist"},
		{[]string{"-o", dir}, "is a directory"},
		{[]string{"-o", filepath.Join(dir, "x.rwd"), "--iface", "nosuch0"}, "--iface nosuch0: no such interface"},
		{[]string{"-o", filepath.Join(dir, "x.rwd"), "--pid", "999999999"}, "--pid 999999999: no such process"},
		{[]string{"-o", existing}, "refusing to overwrite"},
	}
}

// TestRecordTargetsChecked: the checks record makes before loading any
// probe, which need no root: a bad -o path, an interface or process that
// does not exist, an existing capture without --force (#19 item 8).
func TestRecordTargetsChecked(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.rwd")
	os.WriteFile(existing, []byte("a capture someone kept"), 0o600)
	for _, tc := range recordCheckCases(dir, existing) {
		var out, iface string
		var pids []int
		for i := 0; i < len(tc.args); i += 2 {
			switch tc.args[i] {
			case "-o":
				out = tc.args[i+1]
			case "--iface":
				iface = tc.args[i+1]
			case "--pid":
				pids = append(pids, 999999999)
			}
		}
		err := checkRecordTargets(out, false, pids, iface)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("record %v: %v; want a usage error saying %q", tc.args, err, tc.want)
		}
	}
	if err := checkRecordTargets(existing, true, nil, ""); err != nil {
		t.Errorf("--force: %v", err)
	}
	if err := checkRecordTargets(filepath.Join(dir, "new.rwd"), false, []int{os.Getpid()}, "lo"); err != nil {
		t.Errorf("a new file, this process and lo: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "a capture someone kept" {
		t.Fatalf("the existing capture was changed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the checks created files: %v", ents)
	}
}

// TestRecordChecksFirst: mistakes in record's arguments fail at once, with
// exit 2 and a message naming them, before any probe is loaded; an existing
// capture is not overwritten without --force (#19 item 8).
func TestRecordChecksFirst(t *testing.T) {
	bpftest.RequireRoot(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.rwd")
	os.WriteFile(existing, []byte("a capture someone kept"), 0o600)
	for _, tc := range recordCheckCases(dir, existing) {
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
	// A container that is not there: refused before any probe loads, and
	// the file created for the capture is gone again.
	x := filepath.Join(dir, "x.rwd")
	code, _, errOut := runCLI(t, "record", "--duration", "1s", "-o", x, "--container", "rewind-no-such-container")
	switch {
	case strings.Contains(errOut, "no cgroup v2 hierarchy"):
	case code != exitUsage || !strings.Contains(errOut, "--container rewind-no-such-container: no running container has that name or id") ||
		!strings.Contains(errOut, "config.v2.json") || strings.Contains(errOut, "recording"):
		t.Errorf("record --container rewind-no-such-container: exit %d, %q; want exit 2 saying what was searched", code, errOut)
	}
	if _, err := os.Stat(x); err == nil {
		t.Errorf("record --container rewind-no-such-container left %s", x)
	}
	code, _, errOut = runCLI(t, "record", "--duration", "1s", "--no-packets", "--force", "-o", existing)
	if code != exitOK {
		t.Fatalf("record --force: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(existing); strings.HasPrefix(string(b), "a capture") {
		t.Error("--force did not replace the file")
	}
}
