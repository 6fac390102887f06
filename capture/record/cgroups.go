//go:build linux

package record

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/bpf"
	"github.com/rewind-tools/rewind/capture/container"
)

// resolveCgroups finds the cgroup v2 directories that --cgroup and
// --container select: a --cgroup PATH is a directory of the v2 mount,
// given from the mount's root ("/system.slice/nginx.service") or in full
// ("/sys/fs/cgroup/unified/system.slice/nginx.service"); a --container ID
// is every cgroup whose path names that container (a prefix of 4 or more
// characters of its id, or an nspawn machine's name) — its topmost one,
// since the kernel filter takes in the cgroups below.
func resolveCgroups(paths, containers []string) ([]bpf.Cgroup, error) {
	if len(paths) == 0 && len(containers) == 0 {
		return nil, nil
	}
	root := cgroup2Root()
	if root == "" {
		return nil, errors.New("--cgroup and --container select cgroup v2 directories, and this host has no cgroup v2 hierarchy mounted")
	}
	var out []bpf.Cgroup
	add := func(rel string) error {
		rel = "/" + strings.Trim(filepath.ToSlash(filepath.Clean(rel)), "/")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, rel), &st); err != nil {
			return fmt.Errorf("cgroup %s: %w (paths are under %s, as in /proc/PID/cgroup's 0:: line)", rel, err, root)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("cgroup %s is not a directory of %s", rel, root)
		}
		level := 0
		if rel != "/" {
			level = strings.Count(rel, "/")
		}
		if !slices.ContainsFunc(out, func(c bpf.Cgroup) bool { return c.ID == st.Ino }) {
			out = append(out, bpf.Cgroup{ID: st.Ino, Level: level, Path: rel})
		}
		return nil
	}
	for _, p := range paths {
		if rel, ok := strings.CutPrefix(filepath.Clean(p), root); ok && (rel == "" || rel[0] == '/') {
			p = rel
		}
		if err := add(p); err != nil {
			return nil, err
		}
	}
	for _, id := range containers {
		if len(id) < 4 {
			return nil, fmt.Errorf("--container %q: give at least 4 characters of the id (or the nspawn machine name)", id)
		}
		found := 0
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root {
					return err
				}
				return fs.SkipDir // a cgroup gone while walking, or unreadable
			}
			if !d.IsDir() {
				return nil
			}
			rel := strings.TrimPrefix(p, root)
			if in := container.Parse(rel); in.Known() && strings.HasPrefix(in.ID, id) {
				found++
				if err := add(rel); err != nil {
					return err
				}
				return fs.SkipDir // the cgroups below are taken in
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("looking for container %s under %s: %w", id, root, err)
		}
		if found == 0 {
			return nil, fmt.Errorf("--container %s: no cgroup under %s names that container (is it running? docker ps shows its id)", id, root)
		}
	}
	return out, nil
}

// inCgroups reports whether a process's cgroup v2 path is one of the
// selected cgroups' or below one.
func inCgroups(path string, sel []string) bool {
	for _, s := range sel {
		if s == "/" || path == s || strings.HasPrefix(path, s+"/") {
			return true
		}
	}
	return false
}
