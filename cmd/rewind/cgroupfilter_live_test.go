//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// TestLiveRecordCgroupFilter: record --container and --cgroup select in the
// kernel. Two real python3 servers run in cgroups named as docker's systemd
// driver (A) and containerd under a burstable Kubernetes pod (B) name
// theirs, in the cgroup v2 mount; curl, outside both, calls each. With
// --container A's id the capture holds A's exchanges and not one event of
// B's process (user space does not filter by cgroup: only the kernel can
// have left them out), and the same with A given by its docker name; with --cgroup naming the pod's slice (a parent of
// B's cgroup) it holds B's, and those of a server started in B's cgroup
// during the recording (#22 item 3).
func TestLiveRecordCgroupFilter(t *testing.T) {
	bpftest.RequireRoot(t)
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python = needTool(t, "python3")
	}
	curl := needTool(t, "curl")
	root := unifiedCgroups(t)
	dockerID, criID := randomHex(32), randomHex(32)
	base := filepath.Join(root, fmt.Sprintf("rewind-cgfilter-test-%d", os.Getpid()))
	cgA := filepath.Join(base, "system.slice", "docker-"+dockerID+".scope")
	podSlice := filepath.Join(base, "kubepods.slice", "kubepods-burstable.slice", "kubepods-burstable-pod0d1e2f3a_4b5c_4d6e_8f70_8192a3b4c5d6.slice")
	cgB := filepath.Join(podSlice, "cri-containerd-"+criID+".scope")
	var procs []*exec.Cmd
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
		removeCgroups(t, base, cgA, cgB)
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(netnsServer), 0o644); err != nil {
		t.Fatal(err)
	}
	// serve starts the server in cgroup cg (the shell joins it, then
	// becomes python: one pid) and waits until it answers.
	serve := func(cg, name string) (pid, port int) {
		t.Helper()
		if err := os.MkdirAll(cg, 0o755); err != nil {
			bpftest.Unavailable(t, "cannot create cgroup "+cg+": "+err.Error())
		}
		port = freePort(t)
		cmd := exec.Command("sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg, python, "server.py", fmt.Sprint(port), name)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		deadline := time.Now().Add(10 * time.Second)
		for exec.Command(curl, "-s", "-o", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/ready", port)).Run() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("server %s did not answer", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd.Process.Pid, port
	}
	get := func(port int, path string) {
		t.Helper()
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
		if out, err := exec.Command(curl, "-sS", "--max-time", "5", url, url).CombinedOutput(); err != nil {
			t.Fatalf("curl %s: %v: %s", url, err, out)
		}
	}
	pidA, portA := serve(cgA, "A")
	pidB, portB := serve(cgB, "B")

	// pidsOf lists the processes whose data the capture holds.
	pidsOf := func(path string) map[uint32]int {
		rd := openCapture(t, path)
		out := map[uint32]int{}
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			if d, ok := ev.(*capture.Data); ok {
				out[d.PID]++
			}
		}
		return out
	}
	servers := func(path string) map[string]int {
		exs, _ := replayFile(t, path)
		out := map[string]int{}
		for _, ex := range exs {
			if ex.Conn.Role == capture.RoleServer {
				out[fmt.Sprintf("%d %s", ex.Conn.PID, ex.Request.Path)]++
			}
		}
		return out
	}

	t.Run("container", func(t *testing.T) {
		rec := startRecording(t, record.Options{Containers: []string{dockerID[:12]}, Packets: false})
		get(portA, "/a")
		get(portB, "/b")
		rec.stop()
		pids := pidsOf(rec.path)
		if pids[uint32(pidA)] == 0 || pids[uint32(pidB)] != 0 {
			t.Errorf("data events per pid %v: want A's (%d) only, none of B's (%d)", pids, pidA, pidB)
		}
		want := map[string]int{fmt.Sprintf("%d /a", pidA): 2}
		if got := servers(rec.path); !mapsEqual(got, want) {
			t.Errorf("server exchanges %v, want %v", got, want)
		}
	})
	t.Run("container name", func(t *testing.T) {
		// The name docker would have written for A (its files
		// redirected): A's exchanges only, and they carry it.
		name := "rewind-a-" + randomHex(4)
		runtimeFiles(t, map[string]string{"docker/" + dockerID + "/config.v2.json": `{"ID":"` + dockerID + `","Name":"/` + name + `"}`})
		rec := startRecording(t, record.Options{Containers: []string{name}, Packets: false})
		get(portA, "/a")
		get(portB, "/b")
		rec.stop()
		if pids := pidsOf(rec.path); pids[uint32(pidA)] == 0 || pids[uint32(pidB)] != 0 {
			t.Errorf("data events per pid %v: want A's (%d) only, none of B's (%d)", pids, pidA, pidB)
		}
		exs, _ := replayFile(t, rec.path)
		n := 0
		for _, ex := range exs {
			if ex.Conn.Role == capture.RoleServer {
				n++
				if ex.Conn.PID != uint32(pidA) || ex.Request.Path != "/a" || ex.Conn.Container.Name != name {
					t.Errorf("pid %d %s in %+v; want A's /a in %s", ex.Conn.PID, ex.Request.Path, ex.Conn.Container, name)
				}
			}
		}
		if n != 2 {
			t.Errorf("%d server exchanges, want A's 2", n)
		}
	})
	t.Run("cgroup", func(t *testing.T) {
		rel := strings.TrimPrefix(podSlice, root)
		rec := startRecording(t, record.Options{Cgroups: []string{rel}, Packets: false})
		// A server started in B's cgroup during the recording: in.
		pidC, portC := serve(cgB, "C")
		get(portA, "/a")
		get(portB, "/b")
		get(portC, "/c")
		rec.stop()
		pids := pidsOf(rec.path)
		if pids[uint32(pidA)] != 0 || pids[uint32(pidB)] == 0 || pids[uint32(pidC)] == 0 {
			t.Errorf("data events per pid %v: want B's (%d) and C's (%d), none of A's (%d)", pids, pidB, pidC, pidA)
		}
		got := servers(rec.path)
		if got[fmt.Sprintf("%d /b", pidB)] != 2 || got[fmt.Sprintf("%d /c", pidC)] != 2 || got[fmt.Sprintf("%d /a", pidA)] != 0 {
			t.Errorf("server exchanges %v: want /b and /c twice each, no /a", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			opts record.Options
			want string
		}{
			{record.Options{Containers: []string{"ffffffffeeee"}}, "no running container has that name or id"},
			{record.Options{Cgroups: []string{"/no/such/cgroup-rewind"}}, "cgroup /no/such/cgroup-rewind"},
		} {
			_, err := record.ToFile(t.Context(), c.opts, filepath.Join(t.TempDir(), "x.rwd"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
			}
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
