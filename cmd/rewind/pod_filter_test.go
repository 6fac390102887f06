package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// TestPodNamespaceFilters selects exchanges by pod UID, pod name,
// NAMESPACE/NAME and --namespace, over a capture with two pods named web-0
// in two namespaces and a host process (#22 items 3 and 4).
func TestPodNamespaceFilters(t *testing.T) {
	b := capturetest.New()
	uids := []string{"5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162"}
	inPod := func(i int, ns string) func(*capture.Process) {
		return func(p *capture.Process) {
			p.Cgroup = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uids[i], "-", "_") +
				".slice/cri-containerd-" + strings.Repeat(fmt.Sprintf("%02x", i+1), 32) + ".scope"
			p.PodName, p.PodNamespace, p.Hostname = "web-0", ns, "web-0"
		}
	}
	procs := []*capturetest.Proc{
		b.Process(100, "app").With(inPod(0, "shop")),
		b.Process(200, "app").With(inPod(1, "shop-staging")),
		b.Process(300, "app"),
	}
	path := oneExchangeEach(t, b, procs)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--pod", uids[0]}, []string{"/0"}},
		{[]string{"--pod", "web-0"}, []string{"/0", "/1"}},
		{[]string{"--pod", "shop-staging/web-0"}, []string{"/1"}},
		{[]string{"--namespace", "shop"}, []string{"/0"}},
		{[]string{"--namespace", "shop", "--namespace", "shop-staging"}, []string{"/0", "/1"}},
		{[]string{"--namespace", "shop", "--pod", "shop-staging/web-0"}, nil},
		{[]string{"--namespace", "default"}, nil},
	} {
		selectedPaths(t, path, c.args, c.want)
	}
	// The report names the pods' services by pod, the host's by comm.
	_, rep, _ := runCLI(t, "analyze", path, "-q")
	for _, want := range []string{"server shop/web-0:app[100]", "server shop-staging/web-0:app[200]", "server app[300]"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

// TestContainerNameFilter selects exchanges by container name as well as by
// id prefix, over a capture with a docker container named web, a podman one
// named db, a pod's container named app and a host process (#22 item 1).
func TestContainerNameFilter(t *testing.T) {
	b := capturetest.New()
	id := func(i int) string { return strings.Repeat(fmt.Sprintf("%02x", i), 32) }
	in := func(cgroup, name string) func(*capture.Process) {
		return func(p *capture.Process) { p.Cgroup, p.ContainerName = cgroup, name }
	}
	procs := []*capturetest.Proc{
		b.Process(100, "nginx").With(in("/system.slice/docker-"+id(1)+".scope", "web")),
		b.Process(200, "postgres").With(in("/machine.slice/libpod-"+id(2)+".scope", "db")),
		b.Process(300, "app").With(func(p *capture.Process) {
			in("/kubepods.slice/kubepods-pod5a0e2f1c_3b4d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-"+id(3)+".scope", "app")(p)
			p.PodName, p.PodNamespace = "web-0", "shop"
		}),
		b.Process(400, "web"),
	}
	path := oneExchangeEach(t, b, procs)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--container", "web"}, []string{"/0"}}, // not the host's comm web
		{[]string{"--container", id(1)[:12]}, []string{"/0"}},
		{[]string{"--container", "db", "--container", "app"}, []string{"/1", "/2"}},
		{[]string{"--container", "we"}, nil},      // a name matches whole
		{[]string{"--container", id(2)[:3]}, nil}, // an id prefix needs 4 characters
		{[]string{"--container", "app", "--pod", "web-0"}, []string{"/2"}},
	} {
		got, out := selectedPaths(t, path, c.args, c.want)
		if slices.Contains(got, "/0") && !strings.Contains(out, `"id":"`+id(1)+`","name":"web"}`) {
			t.Errorf("%v: no container name in %s", c.args, out)
		}
	}
	// The report names a container's services by its name, a pod's by the
	// pod, the host's by comm.
	_, rep, _ := runCLI(t, "analyze", path, "-q")
	for _, want := range []string{"server web:nginx[100]", "server db:postgres[200]", "server shop/web-0:app[300]", "server web[400]"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

// oneExchangeEach gives each process one server exchange on
// 127.0.0.1:8080 (GET /0, /1, … in order) and writes the capture.
func oneExchangeEach(t *testing.T, b *capturetest.Builder, procs []*capturetest.Proc) string {
	t.Helper()
	for i, p := range procs {
		c := p.Accept(4, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:4000%d", i))
		c.Read(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		c.Close()
	}
	path := filepath.Join(t.TempDir(), "c.rwd")
	b.WriteFile(t, path)
	return path
}

// selectedPaths analyzes path with the filter args and checks which
// requests' paths ("/0", …) the JSON lines hold against want; it returns
// them and the lines.
func selectedPaths(t *testing.T, path string, args, want []string) ([]string, string) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"analyze", path, "-q", "--exchanges", "-", "-o", "/dev/null"}, args...)...)
	if code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if i := strings.Index(l, `"path":"`); i >= 0 {
			got = append(got, l[i+8:i+10])
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%v: paths %v, want %v\n%s", args, got, want, out)
	}
	return got, out
}
