//go:build linux

package record

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/container"
)

// podCache names pods by UID from the kubelet's pod log directories
// (container.PodLogsDir: NAMESPACE_NAME_UID). Names found are kept for the
// recording (a pod's name and namespace never change); a UID not found is
// looked up again next time, since its pod may have started since.
type podCache struct {
	dir   string
	mu    sync.Mutex
	known map[string]podName
}

type podName struct{ namespace, name string }

// maxPods bounds the cache (a node runs about a hundred pods).
const maxPods = 4096

var pods = &podCache{dir: container.PodLogsDir}

// lookup returns the namespace and name of the pod of uid, or "" and "".
func (c *podCache) lookup(uid string) (namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.known[uid]; ok {
		return p.namespace, p.name
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return "", ""
	}
	if c.known == nil {
		c.known = map[string]podName{}
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if ns, pod, u, ok := container.ParsePodLogDir(e.Name()); ok && len(c.known) < maxPods {
			c.known[u] = podName{ns, pod}
		}
	}
	p := c.known[uid]
	return p.namespace, p.name
}

// fillContainer adds to a process in a container what the node knows of
// it beyond the cgroup path: its pod's name and namespace, and the
// container's hostname and name.
func fillContainer(dir string, p *capture.Process) {
	ct := container.ParseProcess(p.Cgroup, p.CgroupV1)
	if !ct.Known() {
		return
	}
	p.Hostname = containerHostname(dir)
	p.ContainerName = containerNames.lookup(ct)
	if ct.PodUID != "" {
		p.PodNamespace, p.PodName = pods.lookup(ct.PodUID)
	}
}

// maxHostname bounds what is read of /etc/hostname (HOST_NAME_MAX is 64).
const maxHostname = 256

// containerHostname reads etc/hostname under the root directory of the
// process at dir (/proc/PID/root): the file runtimes write for a container
// (a pod's containers: the pod name). The path is resolved with openat2 as
// if the container's root were "/" (RESOLVE_IN_ROOT), so no symlink in
// the container leads out of it, and without magic links; only a regular
// file is read, at most maxHostname bytes, and its first line is kept if
// it is printable. "" when any of this fails (kernels before 5.6 lack
// openat2).
func containerHostname(dir string) string {
	root, err := unix.Open(filepath.Join(dir, "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, "etc/hostname", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return ""
	}
	f := os.NewFile(uintptr(fd), "hostname")
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxHostname))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSpace(b)
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return ""
		}
	}
	return string(b)
}
