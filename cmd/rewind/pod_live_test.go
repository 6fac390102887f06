//go:build linux

package main

import (
	"errors"
	"fmt"
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

// TestLivePodNames lays out a Kubernetes pod on this machine as the kubelet
// and containerd would: the kubelet's /var/log/pods/NAMESPACE_NAME_UID
// directory, a python3 server in a cri-containerd scope under
// kubepods-burstable-pod<UID>.slice in the cgroup v2 mount, in a network
// namespace of its own and with its own /etc/hostname (the pod name, bind
// mounted in the mount namespace ip netns exec makes). curl, started in the
// pod's cgroup and namespace during the recording, calls it; a server on
// the same address outside any pod is called too. Every exchange of the
// pod must carry its name, namespace and hostname (the server's from the
// snapshot, curl's from its exec), --namespace and --pod NAME select the
// pod alone, and the report names its service by the pod (#22 items 3-4).
func TestLivePodNames(t *testing.T) {
	bpftest.RequireRoot(t)
	python := systemPython(t)
	curl := needTool(t, "curl")
	ip := needTool(t, "ip")
	root := unifiedCgroups(t)
	if _, err := os.Stat("/etc/hostname"); err != nil {
		bpftest.Unavailable(t, "no /etc/hostname to bind mount the pod's hostname over")
	}
	nsPod, inoPod := bpftest.NetNS(t, "pod")
	nsHost, inoHost := bpftest.NetNS(t, "nopod")
	rnd := randomHex
	u := rnd(16)
	uid := u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
	namespace, pod := "rewind-test.ns-"+rnd(3), "web-"+rnd(4)+".v1-0"
	namespace = strings.ReplaceAll(namespace, ".", "-") // a namespace is a DNS label: no dots
	const port = "18322"

	// The kubelet's directory for the pod: in the real /var/log/pods,
	// creating only what is missing and removing only what was created.
	var created []string
	for _, d := range []string{"/var/log", container.PodLogsDir} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(d, 0o755); err != nil {
				bpftest.Unavailable(t, "cannot create "+d+": "+err.Error())
			}
			created = append(created, d)
		}
	}
	podDir := filepath.Join(container.PodLogsDir, namespace+"_"+pod+"_"+uid)
	if err := os.Mkdir(podDir, 0o755); err != nil {
		bpftest.Unavailable(t, "cannot create "+podDir+": "+err.Error())
	}
	created = append(created, podDir)

	base := filepath.Join(root, fmt.Sprintf("rewind-pod-test-%d", os.Getpid()))
	cg := filepath.Join(base, "kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod"+strings.ReplaceAll(uid, "-", "_")+".slice", "cri-containerd-"+rnd(32)+".scope")
	var procs []*exec.Cmd
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
		removeCgroups(t, base, cg)
		slices.Reverse(created)
		for _, d := range created {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("removing %s: %v", d, err)
			}
		}
	})
	if err := os.MkdirAll(cg, 0o755); err != nil {
		bpftest.Unavailable(t, "cannot create cgroup "+cg+": "+err.Error())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.py"), []byte(netnsServer), 0o644)
	os.WriteFile(filepath.Join(dir, "hostname"), []byte(pod+"\n"), 0o644)
	// inPod runs a program in the pod: the shell joins the cgroup and
	// becomes ip netns exec, whose new mount namespace gets the pod's
	// /etc/hostname before the program replaces the shell there (one pid
	// throughout).
	inPod := func(args ...string) *exec.Cmd {
		cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg,
			ip, "netns", "exec", nsPod, "sh", "-c", `mount --bind "$0" /etc/hostname && exec "$@"`, filepath.Join(dir, "hostname")}, args...)...)
		cmd.Dir = dir
		return cmd
	}
	server := inPod(python, "server.py", port, "P")
	hostServer := exec.Command(ip, "netns", "exec", nsHost, python, "server.py", port, "H")
	hostServer.Dir = dir
	for _, cmd := range []*exec.Cmd{server, hostServer} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	for _, ns := range []string{nsPod, nsHost} {
		deadline := time.Now().Add(10 * time.Second)
		for exec.Command(ip, "netns", "exec", ns, curl, "-s", "-o", "/dev/null", "http://127.0.0.1:"+port+"/ready").Run() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("server in %s did not answer", ns)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	rec := startRecording(t, record.Options{Comms: []string{"python3", "curl"}, Ports: []int{18322}})
	get := func(cmd *exec.Cmd, want string) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != want {
			t.Fatalf("%v: %v: %q, want %q", cmd.Args, err, out, want)
		}
	}
	url := "http://127.0.0.1:" + port
	get(inPod(curl, "-sS", "--max-time", "5", url+"/p-0", url+"/p-1"), "P /p-0\nP /p-1\n")
	get(exec.Command(ip, "netns", "exec", nsHost, curl, "-sS", "--max-time", "5", url+"/h-0"), "H /h-0\n")
	rec.stop()

	exs, _ := replayFile(t, rec.path)
	count := map[string]int{}
	for _, e := range exs {
		c, ct := e.Conn, e.Conn.Container
		p := e.Request.Path
		t.Logf("%s %s pid %d netns %d %s %s pod %q/%q hostname %q", c.ID, c.Comm, c.PID, c.NetNS, c.Role, p, ct.Namespace, ct.Pod, ct.Hostname)
		switch {
		case c.NetNS == inoPod && (strings.HasPrefix(p, "/p-") || c.Comm == "curl"):
			if ct.PodUID != uid || ct.Pod != pod || ct.Namespace != namespace || ct.Hostname != pod {
				t.Errorf("%s %s %s: container %+v, want pod %s/%s (%s), hostname %s", c.Comm, c.Role, p, ct, namespace, pod, uid, pod)
			}
			count[c.Comm+" "+c.Role.String()]++
		case c.NetNS == inoHost && strings.HasPrefix(p, "/h-"):
			if ct.Known() || ct.Pod != "" || ct.Hostname != "" {
				t.Errorf("host server %s: container %+v", p, ct)
			}
			count["host "+c.Role.String()]++
		}
	}
	if count["python3 server"] != 2 || count["curl client"] != 2 || count["host server"] != 1 {
		t.Fatalf("exchanges %v, want the pod's server 2, its curl 2, the host server 1", count)
	}

	// --namespace and --pod NAME select the pod's exchanges alone; JSON
	// lines carry the names.
	for _, args := range [][]string{{"--namespace", namespace}, {"--pod", pod}, {"--pod", namespace + "/" + pod}} {
		code, out, errOut := runCLI(t, append([]string{"analyze", rec.path, "-q", "--exchanges", "-", "-o", os.DevNull}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != exitOK || len(lines) != 4 {
			t.Fatalf("%v: exit %d, %d lines, want 4 (2 server, 2 client): %s%s", args, code, len(lines), out, errOut)
		}
		for _, l := range lines {
			if !strings.Contains(l, fmt.Sprintf(`"pod":%q,"namespace":%q,"hostname":%q}`, pod, namespace, pod)) || !strings.Contains(l, `"path":"/p-`) {
				t.Errorf("%v: %s", args, l)
			}
		}
	}
	// The report names the pod's services by the pod, the other by comm.
	_, rep, _ := runCLI(t, "analyze", rec.path, "-q", "--group-by", "pid")
	for _, want := range []string{
		fmt.Sprintf("server %s/%s:python3[%d]", namespace, pod, server.Process.Pid),
		fmt.Sprintf("server python3[%d]", hostServer.Process.Pid),
		fmt.Sprintf("client %s/%s:curl[", namespace, pod),
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}
