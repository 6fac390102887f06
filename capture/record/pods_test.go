//go:build linux

package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

func TestPodCacheLookup(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{
		"shop_web-0_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
		"11111111-2222-3333-4444-555555555555", // kubelet before 1.14: UID alone
	} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "kube-system_file_22222222-2222-3333-4444-555555555555"), nil, 0o644)
	c := &podCache{dir: dir}
	if ns, name := c.lookup("5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"); ns != "shop" || name != "web-0" {
		t.Errorf("lookup: %q %q", ns, name)
	}
	for _, uid := range []string{"11111111-2222-3333-4444-555555555555", "22222222-2222-3333-4444-555555555555", "33333333-2222-3333-4444-555555555555"} {
		if ns, name := c.lookup(uid); ns != "" || name != "" {
			t.Errorf("lookup %s: %q %q", uid, ns, name)
		}
	}
	// A pod that starts later is found then.
	os.Mkdir(filepath.Join(dir, "kube-system_coredns-5d78c9869d-8xk2m_33333333-2222-3333-4444-555555555555"), 0o755)
	if ns, name := c.lookup("33333333-2222-3333-4444-555555555555"); ns != "kube-system" || name != "coredns-5d78c9869d-8xk2m" {
		t.Errorf("lookup of a later pod: %q %q", ns, name)
	}
}

// TestContainerHostname reads etc/hostname under a process's root as that
// root sees it: a symlink in the container that points to an absolute path
// stays inside the container.
func TestContainerHostname(t *testing.T) {
	proc := t.TempDir()
	root := t.TempDir()
	os.Symlink(root, filepath.Join(proc, "root"))
	os.Mkdir(filepath.Join(root, "etc"), 0o755)
	host := func(content string) string {
		os.Remove(filepath.Join(root, "etc", "hostname"))
		os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte(content), 0o644)
		return containerHostname(proc)
	}
	if h := host("web-0\n"); h != "web-0" {
		t.Errorf("hostname %q", h)
	}
	if h := host("bad name\n"); h != "" {
		t.Errorf("unprintable hostname read as %q", h)
	}
	if h := host(strings.Repeat("a", 300)); h != strings.Repeat("a", maxHostname) {
		t.Errorf("long hostname: %d bytes", len(h))
	}
	// etc/hostname -> /inside: the root's /inside, not the host's.
	os.Remove(filepath.Join(root, "etc", "hostname"))
	os.WriteFile(filepath.Join(root, "inside"), []byte("in-the-container\n"), 0o644)
	os.Symlink("/inside", filepath.Join(root, "etc", "hostname"))
	if h := containerHostname(proc); h != "in-the-container" {
		t.Errorf("absolute symlink read as %q", h)
	}
	// ../../../../etc/hostname cannot climb above the root either.
	os.Remove(filepath.Join(root, "etc", "hostname"))
	os.Symlink("../../../../../../etc/hostname", filepath.Join(root, "etc", "hostname"))
	if h := containerHostname(proc); h != "" {
		t.Errorf("symlink out of the root read as %q", h)
	}
	// A directory or FIFO is not read.
	os.Remove(filepath.Join(root, "etc", "hostname"))
	os.Mkdir(filepath.Join(root, "etc", "hostname"), 0o755)
	if h := containerHostname(proc); h != "" {
		t.Errorf("directory read as %q", h)
	}
}

// TestFillContainer records the pod, hostname and container name only for
// a process in a container.
func TestFillContainer(t *testing.T) {
	proc, root, logs := t.TempDir(), t.TempDir(), t.TempDir()
	os.Symlink(root, filepath.Join(proc, "root"))
	os.Mkdir(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("web-0\n"), 0o644)
	os.Mkdir(filepath.Join(logs, "shop_web-0_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"), 0o755)
	saved, savedNames := pods, containerNames
	pods, containerNames = &podCache{dir: logs}, &nameCache{}
	t.Cleanup(func() { pods, containerNames = saved, savedNames })
	_, _, ctrLogs := runtimeRoots(t)
	id := strings.Repeat("ab", 32)
	os.Symlink("/var/log/pods/x/app/0.log", filepath.Join(ctrLogs, "web-0_shop_app-"+id+".log"))
	p := &capture.Process{Cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5a0e2f1c_3b4d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-" + id + ".scope"}
	fillContainer(proc, p)
	if p.PodNamespace != "shop" || p.PodName != "web-0" || p.Hostname != "web-0" || p.ContainerName != "app" {
		t.Errorf("pod process: %+v", p)
	}
	host := &capture.Process{Cgroup: "/user.slice/user-1000.slice/session-1.scope"}
	fillContainer(proc, host)
	if host.PodName != "" || host.Hostname != "" || host.ContainerName != "" {
		t.Errorf("host process: %+v", host)
	}
}
