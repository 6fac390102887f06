//go:build linux

package record

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rewind-tools/rewind/capture/container"
)

// nameCache names containers by id from what their runtimes keep on the
// node, read-only: the kubelet's log links for a pod's containers,
// docker's config.v2.json, containers/storage's containers.json for podman
// and CRI-O (the paths are container's variables, read at each lookup).
// Names found are kept for the recording; an id not found is looked up
// again next time, since its container may have started since, but a
// list that cannot have changed since it was last read is not read again.
type nameCache struct {
	mu    sync.Mutex
	known map[string]string // container id -> name
	// What the kubelet's log directory and containers.json were when
	// last read in full.
	logs, storage fileStamp
}

// maxContainers bounds the cache (a node runs a few hundred containers).
const maxContainers = 4096

// Bounds on what is read of a runtime's file: docker's config.v2.json is
// a few kilobytes (more with a long environment); containers.json holds
// about 600 bytes per container and is decoded one container at a time.
const (
	maxDockerConfig = 4 << 20
	maxStorageList  = 64 << 20
)

var containerNames = &nameCache{}

// lookup returns the name of the container ct, or "".
func (c *nameCache) lookup(ct container.Info) string {
	if !ct.Known() {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.known[ct.ID]; ok {
		return name
	}
	var name string
	switch {
	case ct.PodUID != "":
		// Whatever the runtime, the kubelet names a pod's containers as
		// the pod spec does; the runtimes' own names for them are made up.
		name = c.scanLogLinks(ct.ID)
	case ct.Runtime == "docker":
		name = dockerName(container.DockerContainersDir, ct.ID)
	case ct.Runtime == "podman" || ct.Runtime == "cri-o":
		name = c.scanStorage(ct.ID)
	}
	if name != "" {
		c.add(ct.ID, name)
	}
	return name
}

func (c *nameCache) add(id, name string) {
	if c.known == nil {
		c.known = map[string]string{}
	}
	if len(c.known) < maxContainers {
		c.known[id] = name
	}
}

// scanLogLinks reads the names in the kubelet's container log directory,
// keeps every container it names, and returns the name of id.
func (c *nameCache) scanLogLinks(id string) string {
	dir := container.ContainerLogsDir
	stamp, ok := stampOf(dir)
	if !ok || !stamp.changedSince(c.logs) {
		return ""
	}
	f, err := os.Open(dir)
	if err != nil {
		return ""
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	c.logs = stamp
	var found string
	for _, n := range names {
		if _, _, ctr, cid, ok := container.ParseContainerLogLink(n); ok {
			c.add(cid, ctr)
			if cid == id {
				found = ctr
			}
		}
	}
	return found
}

// scanStorage reads containers/storage's containers.json, keeps every
// container it names, and returns the name of id.
func (c *nameCache) scanStorage(id string) string {
	path := container.StorageContainersFile
	stamp, ok := stampOf(path)
	if !ok || !stamp.changedSince(c.storage) {
		return ""
	}
	f, ok := openRegular(path)
	if !ok {
		return ""
	}
	defer f.Close()
	c.storage = stamp
	var found string
	// A file cut short (being replaced) still names what it holds.
	container.ParseStorageContainers(io.LimitReader(f, maxStorageList), func(cid, name string) {
		c.add(cid, name)
		if cid == id {
			found = name
		}
	})
	return found
}

// dockerName reads the name of docker container id from its
// config.v2.json under dir.
func dockerName(dir, id string) string {
	f, ok := openRegular(filepath.Join(dir, id, "config.v2.json"))
	if !ok {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDockerConfig))
	if err != nil {
		return ""
	}
	return container.ParseDockerConfig(b)
}

// openRegular opens path for reading if it is a regular file (never
// blocking on a FIFO).
func openRegular(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, false
	}
	return f, true
}

// fileStamp is what tells whether a file or directory may have changed:
// its inode (files are replaced by rename), size and modification time,
// and when it was read.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
	read  time.Time
}

func stampOf(path string) (fileStamp, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	s := fileStamp{size: st.Size(), mtime: st.ModTime(), read: time.Now()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s, true
}

// mtimeGrain is longer than the kernel's file time granularity (a clock
// tick): a change made after a read that began this long after the
// previous change has a later mtime.
const mtimeGrain = time.Second

// changedSince reports whether the file stamped s may differ from what was
// read at last.
func (s fileStamp) changedSince(last fileStamp) bool {
	if last.read.IsZero() || s.ino != last.ino || s.size != last.size || !s.mtime.Equal(last.mtime) {
		return true
	}
	// Unchanged stamps, but a change within the same time grain as the
	// last read would not show in the mtime.
	return last.read.Sub(last.mtime) < mtimeGrain
}

// containersNamed returns the ids of every container the runtimes' files
// on the node give the name name, running or not, sorted: docker's
// DockerContainersDir/*/config.v2.json, containers/storage's
// containers.json (podman, CRI-O) and the kubelet's log links (a pod's
// containers, by the pod spec's names). It is what record --container
// NAME looks for, once, before the recording.
func containersNamed(name string) []string {
	var ids []string
	if ents, err := os.ReadDir(container.DockerContainersDir); err == nil {
		for _, e := range ents {
			if e.IsDir() && dockerName(container.DockerContainersDir, e.Name()) == name {
				ids = append(ids, e.Name())
			}
		}
	}
	if f, ok := openRegular(container.StorageContainersFile); ok {
		container.ParseStorageContainers(io.LimitReader(f, maxStorageList), func(id, n string) {
			if n == name {
				ids = append(ids, id)
			}
		})
		f.Close()
	}
	if f, err := os.Open(container.ContainerLogsDir); err == nil {
		links, _ := f.Readdirnames(-1)
		f.Close()
		for _, l := range links {
			if _, _, ctr, id, ok := container.ParseContainerLogLink(l); ok && ctr == name {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// nameSources says where [containersNamed] looks, for messages.
func nameSources() string {
	return fmt.Sprintf("%s (docker), %s (podman, CRI-O) and the kubelet's log links in %s",
		filepath.Join(container.DockerContainersDir, "*", "config.v2.json"), container.StorageContainersFile, container.ContainerLogsDir)
}
