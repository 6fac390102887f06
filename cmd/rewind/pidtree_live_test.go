//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// TestLivePIDTree records --pid of a wrapper (timeout) whose child (a
// shell) was already running when the recording started; the shell then
// starts curl. The shell is part of the tree, so curl is too: its requests
// are recorded.
func TestLivePIDTree(t *testing.T) {
	bpftest.RequireRoot(t)
	curl := needTool(t, "curl")
	timeout := needTool(t, "timeout")
	root := fillWWW(t)
	ngx := startNginx(t, root, "")
	go_ := filepath.Join(t.TempDir(), "go")
	url := fmt.Sprintf("http://127.0.0.1:%d", ngx.Port)
	script := fmt.Sprintf(`while [ ! -e %[1]s ]; do sleep 0.05; done; %[2]s -sS -o /dev/null %[3]s/small.txt?tree=1 -o /dev/null %[3]s/small.txt?tree=2`, go_, curl, url)
	cmd := exec.Command(timeout, "60", "sh", "-c", script)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond) // the shell is running under timeout
	rec := startRecording(t, record.Options{PIDs: []int{cmd.Process.Pid}})
	if err := os.WriteFile(go_, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("timeout sh -c curl: %v", err)
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	var got []string
	for _, e := range exs {
		if e.Conn.Role == capture.RoleClient && e.Conn.Comm == "curl" {
			got = append(got, exchangeLine(e))
		}
	}
	if len(got) != 2 {
		t.Fatalf("curl exchanges under --pid %d (timeout → sh → curl): %v, want the 2 requests (all %d, warnings %v)",
			cmd.Process.Pid, got, len(exs), sum.Warnings)
	}
}
