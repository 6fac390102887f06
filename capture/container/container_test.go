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
