//go:build linux

package record

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWithDescendants: --pid of a wrapper includes the whole tree it
// already runs, and nothing beside it.
func TestWithDescendants(t *testing.T) {
	proc := t.TempDir()
	// pid → ppid: 10 (timeout) → 11 (sh) → 12 (python3), 13; 20 unrelated;
	// 30 (a comm with spaces and parentheses) under 12.
	for pid, v := range map[int]struct {
		comm string
		ppid int
	}{10: {"timeout", 1}, 11: {"sh", 10}, 12: {"python3", 11}, 13: {"sleep", 11}, 20: {"nginx", 1}, 30: {"a (b) c", 12}} {
		dir := filepath.Join(proc, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := fmt.Sprintf("%d (%s) S %d 1 1 0 -1\n", pid, v.comm, v.ppid)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := WithDescendants(proc, []int{10}), []int{10, 11, 12, 13, 30}; !slices.Equal(got, want) {
		t.Errorf("descendants of 10 = %v, want %v", got, want)
	}
	if got, want := WithDescendants(proc, []int{12, 20, 12}), []int{12, 20, 30}; !slices.Equal(got, want) {
		t.Errorf("descendants of 12, 20 = %v, want %v", got, want)
	}
	if got := WithDescendants(proc, []int{99}); !slices.Equal(got, []int{99}) {
		t.Errorf("a pid not in proc = %v, want [99]", got)
	}
}
