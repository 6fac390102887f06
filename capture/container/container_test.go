package container

import (
	"strings"
	"testing"
)

// TestParse reads cgroup paths in the shapes the runtimes write them. The
// shapes come from each project's cgroup naming: Docker's cgroupfs
// (/docker/ID) and systemd (docker-ID.scope) drivers; the kubelet's
// kubepods hierarchy per QoS class with pod<UID> (cgroupfs) or
// kubepods-<qos>-pod<UID with underscores>.slice (systemd), holding
// cri-containerd-ID.scope (containerd) or crio-ID.scope (CRI-O, whose
// crio-conmon-ID.scope is its monitor); podman's libpod-ID.scope under
// machine.slice (rootful) or the user's service (rootless, with a trailing
// /container); systemd-nspawn's machine-NAME.scope with \x2d for dashes.
func TestParse(t *testing.T) {
	id := strings.Repeat("3f4e9a2b", 8)
	uid, uidU := "7c5d3b6a-1d2e-4f3a-9b8c-0a1b2c3d4e5f", "7c5d3b6a_1d2e_4f3a_9b8c_0a1b2c3d4e5f"
	for _, c := range []struct {
		path string
		want Info
	}{
		{"/docker/" + id, Info{Runtime: "docker", ID: id}},
		{"/system.slice/docker-" + id + ".scope", Info{Runtime: "docker", ID: id}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Info{Runtime: "containerd", ID: id, PodUID: uid, QoS: "burstable"}},
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Info{Runtime: "containerd", ID: id, PodUID: uid, QoS: "guaranteed"}},
		{"/kubepods/besteffort/pod" + uid + "/" + id, Info{Runtime: "containerd", ID: id, PodUID: uid, QoS: "besteffort"}},
		{"/kubepods/pod" + uid + "/" + id, Info{Runtime: "containerd", ID: id, PodUID: uid, QoS: "guaranteed"}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + id + ".scope",
			Info{Runtime: "cri-o", ID: id, PodUID: uid, QoS: "besteffort"}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-conmon-" + id + ".scope", Info{}},
		{"/machine.slice/libpod-" + id + ".scope", Info{Runtime: "podman", ID: id}},
		{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope/container", Info{Runtime: "podman", ID: id}},
		{"/machine.slice/libpod-conmon-" + id + ".scope", Info{}},
		{`/machine.slice/machine-web\x2d1.scope`, Info{Runtime: "systemd-nspawn", ID: "web-1"}},
		{"/user.slice/user-1000.slice/session-3.scope", Info{}},
		{"/system.slice/nginx.service", Info{}},
		{"/", Info{}},
		{"", Info{}},
		{"/system.slice/docker-" + id[:12] + ".scope", Info{}}, // not a full id
	} {
		if got := Parse(c.path); got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.path, got, c.want)
		}
	}
	if s := (Info{ID: id}).Short(); s != id[:12] {
		t.Errorf("Short %q", s)
	}
}

// TestParseProcess reads /proc/PID/cgroup as v1 and hybrid hosts write it:
// a v2 line ("0::PATH") that says nothing of the container (a hybrid host
// whose runtime manages v1 only: "0::/" or the session's scope), beside v1
// lines ("ID:CONTROLLERS:PATH") that name it. The v1 shapes are those of
// Docker's runtime-metrics documentation (/sys/fs/cgroup/memory/docker/ID
// with the cgroupfs driver), the kubelet's cgroupfs driver
// (/kubepods/QOS/podUID/ID in each controller) and CRI-O with the systemd
// driver (the same kubepods slices and crio-ID.scope in name=systemd and
// each controller).
func TestParseProcess(t *testing.T) {
	id := strings.Repeat("0a1b2c3d", 8)
	uid := "7c5d3b6a-1d2e-4f3a-9b8c-0a1b2c3d4e5f"
	for _, c := range []struct {
		v2, v1 string
		want   Info
	}{
		{"/", "12:pids:/docker/" + id + "\n4:memory:/docker/" + id + "\n1:name=systemd:/docker/" + id,
			Info{Runtime: "docker", ID: id}},
		{"/user.slice/user-0.slice/session-1.scope", "9:cpu,cpuacct:/kubepods/burstable/pod" + uid + "/" + id,
			Info{Runtime: "containerd", ID: id, PodUID: uid, QoS: "burstable"}},
		{"", "3:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/crio-" + id + ".scope",
			Info{Runtime: "cri-o", ID: id, PodUID: uid, QoS: "besteffort"}},
		// The v2 path wins when it names a container.
		{"/system.slice/docker-" + id + ".scope", "4:memory:/machine.slice/libpod-" + strings.Repeat("f", 64) + ".scope",
			Info{Runtime: "docker", ID: id}},
		// This host's own layout: nothing.
		{"/", "9:name=systemd:/\n4:memory:/process_api/22e7bafb0990cb0c9bc3e29908d9cf50\n1:cpu:/", Info{}},
		{"/", "garbage", Info{}},
	} {
		if got := ParseProcess(c.v2, c.v1); got != c.want {
			t.Errorf("ParseProcess(%q, %q) = %+v, want %+v", c.v2, c.v1, got, c.want)
		}
	}
}
