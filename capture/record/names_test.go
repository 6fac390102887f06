//go:build linux

package record

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/capture/container"
)

// runtimeRoots points the runtimes' paths at empty directories of the test
// for its duration, and returns them.
func runtimeRoots(t *testing.T) (docker, storage, logs string) {
	t.Helper()
	docker, logs = t.TempDir(), t.TempDir()
	storage = filepath.Join(t.TempDir(), "containers.json")
	saved := [...]string{container.DockerContainersDir, container.StorageContainersFile, container.ContainerLogsDir}
	container.DockerContainersDir, container.StorageContainersFile, container.ContainerLogsDir = docker, storage, logs
	t.Cleanup(func() {
		container.DockerContainersDir, container.StorageContainersFile, container.ContainerLogsDir = saved[0], saved[1], saved[2]
	})
	return docker, storage, logs
}

func writeDockerConfig(t *testing.T, dir, id, name string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, id), 0o700)
	cfg := fmt.Sprintf(`{"StreamConfig":{},"State":{"Running":true},"ID":%q,"Name":"/%s","Driver":"overlay2"}`, id, name)
	if err := os.WriteFile(filepath.Join(dir, id, "config.v2.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeStorage replaces containers.json as containers/storage does (a new
// file renamed over the old).
func writeStorage(t *testing.T, path string, names map[string]string) {
	t.Helper()
	var elems []string
	for id, name := range names {
		elems = append(elems, fmt.Sprintf(`{"id":%q,"names":[%q],"image":"1997b7a5","layer":"d85d9661"}`, id, name))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("["+strings.Join(elems, ",")+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestContainerNames(t *testing.T) {
	docker, storage, logs := runtimeRoots(t)
	id := func(b string) string { return strings.Repeat(b, 32) }
	web, db, pm, crio, k8s, crioPod := id("a1"), id("a2"), id("b1"), id("b2"), id("c1"), id("c2")
	pod := "5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
	writeDockerConfig(t, docker, web, "web")
	writeStorage(t, storage, map[string]string{pm: "cache", crio: "k8s_web_web-0_shop_" + pod + "_0", crioPod: "k8s_proxy_web-0_shop_" + pod + "_0"})
	for _, c := range []string{"web-0_shop_app-" + k8s + ".log", "web-0_shop_proxy-" + crioPod + ".log", "web-0_shop_app-" + id("ff")[:60] + ".log"} {
		os.Symlink("/var/log/pods/x/0.log", filepath.Join(logs, c))
	}
	c := &nameCache{}
	for _, tc := range []struct {
		ct   container.Info
		want string
	}{
		{container.Info{Runtime: "docker", ID: web}, "web"},
		{container.Info{Runtime: "docker", ID: db}, ""}, // not there yet
		{container.Info{Runtime: "podman", ID: pm}, "cache"},
		{container.Info{Runtime: "cri-o", ID: crio}, "k8s_web_web-0_shop_" + pod + "_0"},
		// In a pod, the kubelet's name, whatever the runtime's.
		{container.Info{Runtime: "containerd", ID: k8s, PodUID: pod}, "app"},
		{container.Info{Runtime: "cri-o", ID: crioPod, PodUID: pod}, "proxy"},
		{container.Info{Runtime: "systemd-nspawn", ID: "fedora"}, ""},
		{container.Info{}, ""},
	} {
		if got := c.lookup(tc.ct); got != tc.want {
			t.Errorf("%s %.8s pod %q: %q, want %q", tc.ct.Runtime, tc.ct.ID, tc.ct.PodUID, got, tc.want)
		}
	}
	// containerd outside Kubernetes: nothing of the others' is read for it.
	if got := (&nameCache{}).lookup(container.Info{Runtime: "containerd", ID: pm}); got != "" {
		t.Errorf("containerd outside a pod named %q", got)
	}
	// Containers started later are found then.
	writeDockerConfig(t, docker, db, "db")
	writeStorage(t, storage, map[string]string{pm: "cache", id("b3"): "queue"})
	os.Symlink("/var/log/pods/x/0.log", filepath.Join(logs, "web-1_shop_app-"+id("c3")+".log"))
	for _, tc := range []struct {
		ct   container.Info
		want string
	}{
		{container.Info{Runtime: "docker", ID: db}, "db"},
		{container.Info{Runtime: "podman", ID: id("b3")}, "queue"},
		{container.Info{Runtime: "containerd", ID: id("c3"), PodUID: pod}, "app"},
		// Names found are kept for the recording, even when the
		// runtime's file has gone.
		{container.Info{Runtime: "cri-o", ID: crio}, "k8s_web_web-0_shop_" + pod + "_0"},
	} {
		if got := c.lookup(tc.ct); got != tc.want {
			t.Errorf("later %s %.8s: %q, want %q", tc.ct.Runtime, tc.ct.ID, got, tc.want)
		}
	}
}

// TestContainerNamesUnchangedList reads a list again on a miss only when it
// may have changed: a file whose inode, size and mtime are as when it was
// last read, well after its mtime, is not read again.
func TestContainerNamesUnchangedList(t *testing.T) {
	_, storage, _ := runtimeRoots(t)
	a, b := strings.Repeat("a1", 32), strings.Repeat("b1", 32)
	writeStorage(t, storage, map[string]string{a: "one"})
	old := time.Now().Add(-time.Hour)
	os.Chtimes(storage, old, old)
	c := &nameCache{}
	if got := c.lookup(container.Info{Runtime: "podman", ID: b}); got != "" {
		t.Fatalf("b before it exists: %q", got)
	}
	// The same bytes but for the id, and the old mtime back: a stamp
	// that cannot tell, so the file is not read again.
	f, err := os.OpenFile(storage, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(`[{"id":"`+b), 0)
	f.Close()
	os.Chtimes(storage, old, old)
	if got := c.lookup(container.Info{Runtime: "podman", ID: b}); got != "" {
		t.Errorf("an unchanged-looking file was read again: %q", got)
	}
	// A real change (a new mtime) is read.
	os.Chtimes(storage, time.Now(), time.Now())
	if got := c.lookup(container.Info{Runtime: "podman", ID: b}); got != "one" {
		t.Errorf("changed file: %q, want one", got)
	}
}

// TestContainerNamesBounded keeps at most maxContainers names, and still
// names the container asked for when the cache is full.
func TestContainerNamesBounded(t *testing.T) {
	_, _, logs := runtimeRoots(t)
	for i := range maxContainers + 10 {
		os.WriteFile(filepath.Join(logs, fmt.Sprintf("p-%d_ns_c%d-%064x.log", i, i, i)), nil, 0o600)
	}
	c := &nameCache{}
	last := fmt.Sprintf("%064x", maxContainers+5)
	if got := c.lookup(container.Info{Runtime: "containerd", ID: last, PodUID: "u"}); got != fmt.Sprintf("c%d", maxContainers+5) {
		t.Errorf("asked-for container in a full cache: %q", got)
	}
	if len(c.known) > maxContainers {
		t.Errorf("%d names kept, at most %d", len(c.known), maxContainers)
	}
}
