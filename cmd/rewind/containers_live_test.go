//go:build linux

package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture/container"
	"github.com/rewind-tools/rewind/capture/record"
)

// unifiedCgroups is where this machine mounts cgroup v2 (a v1/v2 hybrid);
// a pure v2 system mounts it at /sys/fs/cgroup.
func unifiedCgroups(t *testing.T) string {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), " "+d+" ") {
				return d
			}
		}
	}
	bpftest.Unavailable(t, "no cgroup v2 hierarchy mounted")
	return ""
}

// TestLiveContainers runs three real servers (python3 http.server) in
// cgroups named as docker's systemd driver, containerd under a burstable
// Kubernetes pod and CRI-O under a besteffort one name them, records them, and checks that every
// exchange says which container (and pod) served it, that --container and
// --pod select each alone, and that the report gives each its own service
// (#22 items 1, 3, 4). The containers' names are laid out as the runtimes
// keep them, in directories of the test that stand for /var/lib/docker and
// /var/log/containers: docker's config.v2.json for the docker container,
// the kubelet's log links for the two in pods; the exchanges carry them,
// --container selects by name and the report names the docker container's
// service by it.
func TestLiveContainers(t *testing.T) {
	bpftest.RequireRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		bpftest.Unavailable(t, "python3 is not installed")
	}
	root := unifiedCgroups(t)
	dockerID, criID, crioID := randomHex(32), randomHex(32), randomHex(32)
	pod := "0d6c3b2a-1e2f-4a5b-8c9d-7e6f5a4b3c2d"
	crioPod := "7b1c2d3e-4f50-4a6b-9c7d-8e9f0a1b2c3d"
	base := filepath.Join(root, fmt.Sprintf("rewind-test-%d", os.Getpid()))
	groups := map[string]string{
		"docker": filepath.Join(base, "system.slice", "docker-"+dockerID+".scope"),
		"k8s": filepath.Join(base, "kubepods.slice", "kubepods-burstable.slice",
			"kubepods-burstable-pod"+strings.ReplaceAll(pod, "-", "_")+".slice", "cri-containerd-"+criID+".scope"),
		// CRI-O with the systemd cgroup manager, as OpenShift runs it.
		"crio": filepath.Join(base, "kubepods.slice", "kubepods-besteffort.slice",
			"kubepods-besteffort-pod"+strings.ReplaceAll(crioPod, "-", "_")+".slice", "crio-"+crioID+".scope"),
	}
	ports := map[string]int{"docker": freePort(t), "k8s": freePort(t), "crio": freePort(t)}
	dockerName := fmt.Sprintf("rewind-web-%d", os.Getpid())
	runtimeFiles(t, map[string]string{
		"docker/" + dockerID + "/config.v2.json":   `{"StreamConfig":{},"State":{"Running":true},"ID":"` + dockerID + `","Name":"/` + dockerName + `","Driver":"overlay2"}`,
		"logs/web-0_shop_app-" + criID + ".log":    "",
		"logs/web-1_shop_proxy-" + crioID + ".log": "",
	})
	var servers []*exec.Cmd
	for name, dir := range groups {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			bpftest.Unavailable(t, "cannot create cgroup "+dir+": "+err.Error())
		}
		// The shell moves itself into the cgroup, then becomes the server.
		cmd := exec.Command("sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec python3 -m http.server %d --bind 127.0.0.1`, dir, ports[name]))
		cmd.Dir = t.TempDir()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, cmd)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Process.Kill()
			s.Wait()
		}
		// Remove the cgroups, innermost first.
		for _, dir := range groups {
			for d := dir; strings.HasPrefix(d, base); d = filepath.Dir(d) {
				os.Remove(d)
			}
		}
	})
	for name, p := range ports {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", p), name)
	}
	rec := startRecording(t, record.Options{Ports: []int{ports["docker"], ports["k8s"], ports["crio"]}})
	for name, p := range ports {
		for i := range 3 {
			fetch(t, fmt.Sprintf("http://127.0.0.1:%d/%s-%d", p, name, i))
		}
	}
	rec.stop()
	exs, _ := replayFile(t, rec.path)
	got := map[string]int{}
	for _, e := range exs {
		if e.Conn.Role.String() != "server" {
			continue
		}
		ct := e.Conn.Container
		switch {
		case strings.HasPrefix(e.Request.Path, "/docker-"):
			if ct.Runtime != "docker" || ct.ID != dockerID || ct.PodUID != "" || ct.Name != dockerName {
				t.Errorf("%s served by %+v, want docker %s named %s", e.Request.Path, ct, dockerID, dockerName)
			}
		case strings.HasPrefix(e.Request.Path, "/k8s-"):
			if ct.Runtime != "containerd" || ct.ID != criID || ct.PodUID != pod || ct.QoS != "burstable" || ct.Name != "app" {
				t.Errorf("%s served by %+v, want containerd %s named app in burstable pod %s", e.Request.Path, ct, criID, pod)
			}
		case strings.HasPrefix(e.Request.Path, "/crio-"):
			if ct.Runtime != "cri-o" || ct.ID != crioID || ct.PodUID != crioPod || ct.QoS != "besteffort" || ct.Name != "proxy" {
				t.Errorf("%s served by %+v, want cri-o %s named proxy in besteffort pod %s", e.Request.Path, ct, crioID, crioPod)
			}
		}
		got[ct.Runtime]++
	}
	if got["docker"] != 3 || got["containerd"] != 3 || got["cri-o"] != 3 {
		t.Fatalf("server exchanges by runtime %v, want 3 each", got)
	}
	// The filters select each alone; the report names each container.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--container", dockerID[:12]}, "/docker-"}, {[]string{"--pod", pod}, "/k8s-"}, {[]string{"--container", crioID[:12]}, "/crio-"},
		{[]string{"--container", dockerName}, "/docker-"}, {[]string{"--container", "proxy"}, "/crio-"},
	} {
		code, out, errOut := runCLI(t, append([]string{"analyze", rec.path, "-q", "--role", "server", "--exchanges", "-", "-o", os.DevNull}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != exitOK || len(lines) != 3 {
			t.Fatalf("%v: exit %d, %d lines: %s%s", c.args, code, len(lines), out, errOut)
		}
		for _, l := range lines {
			if !strings.Contains(l, `"path":"`+c.want) || !strings.Contains(l, `"container":{`) {
				t.Errorf("%v: %s", c.args, l)
			}
		}
	}
	_, out, _ := runCLI(t, "analyze", rec.path, "-q", "--role", "server")
	if !strings.Contains(out, "in docker "+dockerID[:12]) || !strings.Contains(out, "in containerd "+criID[:12]+" (pod "+pod+")") ||
		!strings.Contains(out, "server "+dockerName+":python3[") {
		t.Errorf("report does not name the containers:\n%s", out)
	}
}

// runtimeFiles points the container runtimes' paths (docker's containers
// directory, containers/storage's containers.json, the kubelet's container
// log directory) at a directory of the test for its duration, so that only
// the files given are found: "docker/ID/config.v2.json" or "logs/NAME",
// each with its content (a log entry with none is a symlink, as the
// kubelet makes them).
func runtimeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	saved := [...]string{container.DockerContainersDir, container.StorageContainersFile, container.ContainerLogsDir}
	container.DockerContainersDir = filepath.Join(dir, "docker")
	container.StorageContainersFile = filepath.Join(dir, "storage.json")
	container.ContainerLogsDir = filepath.Join(dir, "logs")
	t.Cleanup(func() {
		container.DockerContainersDir, container.StorageContainersFile, container.ContainerLogsDir = saved[0], saved[1], saved[2]
	})
	os.Mkdir(container.ContainerLogsDir, 0o755)
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		var err error
		if strings.HasPrefix(name, "logs/") && content == "" {
			err = os.Symlink("/var/log/pods/x/0.log", path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitHTTP waits until url answers.
func waitHTTP(t *testing.T, url, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s server at %s did not answer", name, url)
}

// TestLiveCgroupV1 puts a real server in a cgroup v1 hierarchy (pids) under
// /docker/ID, as Docker's cgroupfs driver does on a v1 host, while its v2
// path says nothing: the capture keeps the v1 lines and the exchanges name
// the container from them (#22 item 3).
func TestLiveCgroupV1(t *testing.T) {
	bpftest.RequireRoot(t)
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python = needTool(t, "python3")
	}
	v1 := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(v1, "cgroup.procs")); err != nil {
		bpftest.Unavailable(t, "no cgroup v1 pids hierarchy at "+v1+" (a pure cgroup v2 host)")
	}
	id := randomHex(32)
	base := filepath.Join(v1, fmt.Sprintf("rewind-v1-test-%d", os.Getpid()))
	dir := filepath.Join(base, "docker", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		bpftest.Unavailable(t, "cannot create cgroup "+dir+": "+err.Error())
	}
	port := freePort(t)
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec %s -m http.server %d --bind 127.0.0.1`, dir, python, port))
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, d := range []string{dir, filepath.Dir(dir), base} {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitHTTP(t, url, "python3")
	rec := startRecording(t, record.Options{Ports: []int{port}})
	for i := range 2 {
		fetch(t, fmt.Sprintf("%sv1-%d", url, i))
	}
	rec.stop()
	exs, _ := replayFile(t, rec.path)
	n := 0
	for _, e := range exs {
		if e.Conn.Role.String() != "server" || !strings.HasPrefix(e.Request.Path, "/v1-") {
			continue
		}
		n++
		if ct := e.Conn.Container; ct.Runtime != "docker" || ct.ID != id {
			t.Errorf("%s served by %+v, want docker %s (from the v1 pids hierarchy)", e.Request.Path, ct, id)
		}
	}
	if n != 2 {
		t.Fatalf("%d server exchanges, want 2", n)
	}
}

// randomHex returns n random bytes in hex: container ids (32 bytes) and
// names unique to a test run.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeCgroups removes the test's cgroups under base: each of leaves and
// every directory between it and base, deepest first (a cgroup can only
// be removed empty, once its processes and children are gone).
func removeCgroups(t *testing.T, base string, leaves ...string) {
	t.Helper()
	var dirs []string
	for _, dir := range leaves {
		for d := dir; strings.HasPrefix(d, base); d = filepath.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	for _, d := range slices.Compact(dirs) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing cgroup %s: %v", d, err)
		}
	}
}

// fetch GETs url and reads the whole answer.
func fetch(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
