//go:build linux

package record

import (
	"cmp"
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
// ("/sys/fs/cgroup/unified/system.slice/nginx.service"); a --container
// value is one running container (see [selectContainer]), and selects
// every cgroup whose path names it — its topmost one, since the kernel
// filter takes in the cgroups below. A value that selects nothing, or
// several containers, is a [*SelectionError].
func resolveCgroups(paths, containers []string) ([]bpf.Cgroup, error) {
	if len(paths) == 0 && len(containers) == 0 {
		return nil, nil
	}
	root := cgroup2Root()
	if root == "" {
		return nil, errors.New("--cgroup and --container select cgroup v2 directories, and this host has no cgroup v2 hierarchy mounted")
	}
	return resolveCgroupsIn(root, paths, containers)
}

// resolveCgroupsIn is [resolveCgroups] with the v2 hierarchy mounted at
// root.
func resolveCgroupsIn(root string, paths, containers []string) ([]bpf.Cgroup, error) {
	var out []bpf.Cgroup
	add := func(rel string) error {
		rel = "/" + strings.Trim(filepath.ToSlash(filepath.Clean(rel)), "/")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, rel), &st); err != nil {
			return &SelectionError{Msg: fmt.Sprintf("cgroup %s: %v (paths are under %s, as in /proc/PID/cgroup's 0:: line)", rel, err, root)}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &SelectionError{Msg: fmt.Sprintf("cgroup %s is not a directory of %s", rel, root)}
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
	if len(containers) == 0 {
		return out, nil
	}
	running, err := containerCgroups(root)
	if err != nil {
		return nil, fmt.Errorf("looking for containers under %s: %w", root, err)
	}
	names := &nameCache{}
	for _, v := range containers {
		id, err := selectContainer(v, root, running, names)
		if err != nil {
			return nil, err
		}
		for _, c := range running {
			if c.info.ID == id {
				if err := add(c.rel); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// containerCgroup is a cgroup that names a container, relative to the v2
// root.
type containerCgroup struct {
	rel  string
	info container.Info
}

// containerCgroups lists the topmost cgroups under root that name a
// container, in the walk's (lexical) order: the running containers.
func containerCgroups(root string) ([]containerCgroup, error) {
	var out []containerCgroup
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
		if in := container.Parse(rel); in.Known() {
			out = append(out, containerCgroup{rel: rel, info: in})
			return fs.SkipDir // the cgroups below are taken in
		}
		return nil
	})
	return out, err
}

// selectContainer returns the id of the one running container (one with
// a cgroup in running) that v names: the container named v by its
// runtime (as [containersNamed] finds it; an nspawn machine's name is its
// id), else the one whose id starts with v, 4 or more characters. A name
// or prefix that fits several containers, or none, is a
// [*SelectionError] that lists them or says what was searched. A
// container that is not running has no cgroup to select: one that starts
// during the recording is not recorded, by name or by id.
func selectContainer(v, root string, running []containerCgroup, names *nameCache) (string, error) {
	flag := "--container " + v
	if v == "" {
		return "", &SelectionError{Msg: "--container: give a container's name or at least 4 characters of its id"}
	}
	var ids []string // running containers v names or prefixes, sorted
	byName := containersNamed(v)
	for _, c := range running {
		if slices.Contains(byName, c.info.ID) || c.info.Runtime == "systemd-nspawn" && c.info.ID == v {
			ids = append(ids, c.info.ID)
		}
	}
	how, hint := "containers are named", "give the id of the one to record instead, or 4 or more characters of it"
	if len(ids) == 0 && len(v) >= 4 {
		how, hint = "containers' ids start with", "give more of the id of the one to record"
		for _, c := range running {
			if strings.HasPrefix(c.info.ID, v) {
				ids = append(ids, c.info.ID)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch {
	case len(ids) == 1:
		return ids[0], nil
	case len(ids) > 1:
		var list []string
		for _, id := range ids {
			i := slices.IndexFunc(running, func(c containerCgroup) bool { return c.info.ID == id })
			list = append(list, describeContainer(running[i].info, len(v) >= 12, names))
		}
		return "", &SelectionError{Msg: fmt.Sprintf("%s: %d running %s %s: %s; %s (one --container for each to record several)",
			flag, len(ids), how, v, strings.Join(list, ", "), hint)}
	case len(byName) > 0:
		return "", &SelectionError{Msg: fmt.Sprintf("%s: no cgroup under %s holds the container of that name (id %s): it is not running. "+
			"A container must be running when the recording starts; to take in ones started later, select a cgroup above them with --cgroup",
			flag, root, strings.Join(shortIDs(byName), ", "))}
	}
	short := ""
	if len(v) < 4 {
		short = " (an id prefix needs at least 4 characters)"
	}
	return "", &SelectionError{Msg: fmt.Sprintf("%s: no running container has that name or id%s: searched the container cgroups under %s for ids, and %s for names. "+
		"docker ps, podman ps or crictl ps list the running containers, machinectl the nspawn machines", flag, short, root, nameSources())}
}

// describeContainer says which container in is, for a list to choose
// from: its id (in full when long prefixes do not tell them apart),
// runtime, pod and name.
func describeContainer(in container.Info, full bool, names *nameCache) string {
	id := in.Short()
	if full {
		id = in.ID
	}
	what := []string{in.Runtime}
	if in.PodUID != "" {
		in.Namespace, in.Pod = pods.lookup(in.PodUID)
		what = append(what, "pod "+cmp.Or(in.PodLabel(), in.PodUID))
	}
	if name := names.lookup(in); name != "" {
		what = append(what, "name "+name)
	}
	return id + " (" + strings.Join(what, ", ") + ")"
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = container.Info{ID: id}.Short()
	}
	return out
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
