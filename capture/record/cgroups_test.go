//go:build linux

package record

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveContainers resolves --container values to cgroups in a
// directory tree shaped as the runtimes shape theirs, with the runtimes'
// files redirected: a name (docker's config.v2.json, containers.json, the
// kubelet's log links, an nspawn machine's), else an id prefix; several
// running containers, or none, are refused with what to do.
func TestResolveContainers(t *testing.T) {
	docker, storage, logs := runtimeRoots(t)
	id := func(b string) string { return strings.Repeat(b, 32) }
	web, webOld, pm, app0, app1, appOld, proxy := id("a1"), id("a2"), id("b1"), id("c1"), id("c2"), id("c3"), id("c4")
	named := "c1c1c1" + strings.Repeat("d1", 29) // its id starts as app0's
	pod0, pod1 := "5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "6b1f3a2d-4c5e-4f60-9bac-1d2e3f4a5b6c"
	root := t.TempDir()
	cg := map[string]string{
		web:   "/system.slice/docker-" + web + ".scope",
		pm:    "/machine.slice/libpod-" + pm + ".scope",
		app0:  "/kubepods.slice/kubepods-pod" + strings.ReplaceAll(pod0, "-", "_") + ".slice/cri-containerd-" + app0 + ".scope",
		app1:  "/kubepods.slice/kubepods-pod" + strings.ReplaceAll(pod1, "-", "_") + ".slice/cri-containerd-" + app1 + ".scope",
		proxy: "/kubepods.slice/kubepods-pod" + strings.ReplaceAll(pod0, "-", "_") + ".slice/crio-" + proxy + ".scope",
		named: "/system.slice/docker-" + named + ".scope",
		"f":   "/machine.slice/machine-fedora.scope",
	}
	for _, rel := range cg {
		// podman's payload is a cgroup below its scope: taken in.
		if err := os.MkdirAll(filepath.Join(root, rel, "container"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "system.slice", "nginx.service"), 0o755)
	writeDockerConfig(t, docker, web, "web")
	writeDockerConfig(t, docker, webOld, "old") // stopped: no cgroup
	writeDockerConfig(t, docker, named, "c1c1") // a name that is also a prefix of app0's id
	writeStorage(t, storage, map[string]string{pm: "cache", proxy: "k8s_proxy_web-0_shop_" + pod0 + "_0"})
	for _, l := range []string{
		"web-0_shop_app-" + app0 + ".log", "web-1_shop_app-" + app1 + ".log", "web-0_shop_proxy-" + proxy + ".log",
		"web-2_shop_lone-" + appOld + ".log", // its container has exited
	} {
		os.Symlink("/var/log/pods/x/0.log", filepath.Join(logs, l))
	}

	for _, c := range []struct {
		values []string
		want   []string // cgroups
	}{
		{[]string{"web"}, []string{cg[web]}},
		{[]string{"cache"}, []string{cg[pm]}},
		{[]string{"proxy"}, []string{cg[proxy]}},                               // the kubelet's name
		{[]string{"k8s_proxy_web-0_shop_" + pod0 + "_0"}, []string{cg[proxy]}}, // CRI-O's own
		{[]string{"fedora"}, []string{cg["f"]}},
		{[]string{"fedo"}, []string{cg["f"]}},
		{[]string{web[:12]}, []string{cg[web]}},
		{[]string{app1}, []string{cg[app1]}},
		{[]string{"c1c1"}, []string{cg[named]}}, // the name wins over app0's id
		{[]string{"web", web[:4], "cache"}, []string{cg[web], cg[pm]}},
	} {
		got, err := resolveCgroupsIn(root, nil, c.values)
		if err != nil {
			t.Errorf("%v: %v", c.values, err)
			continue
		}
		var paths []string
		for _, g := range got {
			paths = append(paths, g.Path)
		}
		if strings.Join(paths, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: cgroups %v, want %v", c.values, paths, c.want)
		}
	}

	for _, c := range []struct {
		value string
		want  []string // in the message
	}{
		// Two pods' containers named app: both listed, with their pods.
		{"app", []string{"--container app: 2 running containers are named app", app0[:12] + " (containerd, pod " + pod0 + ", name app)", app1[:12] + " (containerd, pod " + pod1}},
		{"c1c1c1", []string{"2 running containers' ids start with c1c1c1", app0[:12], named[:12] + " (docker, name c1c1)"}},
		{"old", []string{"id " + webOld[:12], "not running", "--cgroup"}},
		{"lone", []string{"id " + appOld[:12], "not running"}},
		{"nosuch", []string{"no running container has that name or id", docker + "/*/config.v2.json", storage, logs, "docker ps"}},
		{"db", []string{"an id prefix needs at least 4 characters"}},
		{"", []string{"give a container's name"}},
	} {
		_, err := resolveCgroupsIn(root, nil, []string{c.value})
		var se *SelectionError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a SelectionError", c.value, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v\nwant %q in it", c.value, err, w)
			}
		}
	}

	// --cgroup alongside, relative or in full; a missing one is refused.
	got, err := resolveCgroupsIn(root, []string{"/system.slice/nginx.service", filepath.Join(root, cg[web])}, []string{"web"})
	if err != nil || len(got) != 2 || got[0].Path != "/system.slice/nginx.service" || got[1].Path != cg[web] || got[1].Level != 2 {
		t.Errorf("--cgroup and --container: %+v, %v", got, err)
	}
	var se *SelectionError
	if _, err := resolveCgroupsIn(root, []string{"/no/such"}, nil); !errors.As(err, &se) {
		t.Errorf("missing --cgroup: %v, want a SelectionError", err)
	}
}
