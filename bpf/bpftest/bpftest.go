// Package bpftest holds helpers for tests that need root and a kernel that
// loads BPF programs: the recorder's live tests and the end-to-end tests that
// record real programs.
package bpftest

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a privileged test
// that cannot run is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips t, with the reason, when the process is not root. In CI
// it fails t instead, so that a CI run never passes with its live tier
// silently skipped.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "this test records with eBPF and needs root (run `sudo make test`)")
}

// Unavailable skips t with reason, or fails it when running in CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a live test cannot run: %s", reason)
	}
	t.Skip(reason)
}
