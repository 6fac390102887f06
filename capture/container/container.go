// Package container tells, from a process's cgroup path (v2, else its v1
// hierarchies' on v1 and hybrid hosts: [ParseProcess]), which container
// runtime started it, the container's id and, for Kubernetes, the pod's
// UID and QoS class. It reads only the path the capture recorded, so a
// capture analyzed anywhere says what the node knew.
//
// Recognised layouts (the shapes each runtime and kubelet give their
// cgroups, with the cgroupfs and the systemd cgroup drivers):
//
//	docker         /docker/ID                      /system.slice/docker-ID.scope
//	containerd     /kubepods/…/podUID/ID            …/kubepods-…-podUID.slice/cri-containerd-ID.scope
//	CRI-O          /kubepods/…/podUID/crio-ID       …/kubepods-…-podUID.slice/crio-ID.scope
//	podman         /machine.slice/libpod-ID.scope   …/user@1000.service/…/libpod-ID.scope/container
//	systemd-nspawn /machine.slice/machine-NAME.scope
//
// IDs are the runtimes' 64-hex-digit container ids (nspawn: the machine
// name). Pod UIDs are written with dashes whatever the driver did with them.
//
// Names are not in the path: the recorder reads them from the node, with
// [ParsePodLogDir] for pods and [ParseDockerConfig],
// [ParseStorageContainers] and [ParseContainerLogLink] for containers, and
// records them with the process.
package container

import (
	"strings"
)

// Info is what a cgroup path says of its process's container; the zero
// value means none was recognised (a host process).
type Info struct {
	Runtime string // "docker", "containerd", "cri-o", "podman", "systemd-nspawn"
	ID      string // the container id (nspawn: the machine name)
	PodUID  string // Kubernetes pod UID, "" outside Kubernetes
	QoS     string // "guaranteed", "burstable" or "besteffort" for a pod
	// Pod and Namespace name the pod of PodUID, Hostname is the
	// container's /etc/hostname and Name the name its runtime gave it
	// (docker and podman: --name; in a pod: the pod spec's): not in the
	// cgroup path, but recorded with the process (capture.Process) when
	// the node knew them; "" otherwise.
	Pod, Namespace, Hostname, Name string
}

// Known reports whether a container was recognised.
func (i Info) Known() bool { return i.ID != "" }

// Short is the container id cut to 12 characters, as docker ps shows it.
func (i Info) Short() string {
	if len(i.ID) > 12 && isHex(i.ID) {
		return i.ID[:12]
	}
	return i.ID
}

// Parse reads a cgroup v2 path (or a v1 hierarchy's path) as recorded from
// /proc/PID/cgroup.
func Parse(path string) Info {
	var in Info
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		switch {
		case strings.HasPrefix(seg, "kubepods") && strings.Contains(seg, "-pod") && strings.HasSuffix(seg, ".slice"):
			// kubepods[-<qos>]-pod<uid>.slice (systemd driver)
			in.PodUID = podUID(seg[strings.LastIndex(seg, "-pod")+len("-pod") : len(seg)-len(".slice")])
			in.QoS = cmpOr(qos(seg), in.QoS, "guaranteed")
		case strings.HasPrefix(seg, "kubepods"):
			// Pods of no QoS level below kubepods are guaranteed.
			in.QoS = cmpOr(qos(seg), in.QoS, "guaranteed")
		case in.QoS != "" && (seg == "besteffort" || seg == "burstable"):
			in.QoS = seg
		case in.QoS != "" && strings.HasPrefix(seg, "pod"):
			in.PodUID = podUID(seg[len("pod"):])
		}
		if id, rt := containerSeg(seg, in.PodUID != "", i > 0 && segs[i-1] == "docker"); id != "" {
			in.ID, in.Runtime = id, rt
		}
	}
	if in.ID == "" {
		return Info{}
	}
	if in.Runtime == "" {
		in.Runtime = "containerd"
	}
	return in
}

// ParseProcess reads what a process's recorded cgroups say: its cgroup v2
// path, else its cgroup v1 hierarchy lines ("ID:CONTROLLERS:PATH", one a
// line, as /proc/PID/cgroup lists them on a v1 or hybrid host), where the
// runtimes use the same path shapes in every hierarchy (docker's cgroupfs
// driver: /docker/ID in cpu, memory, pids…; the kubelet's
// /kubepods/QOS/podUID/ID; systemd drivers: the same scope in name=systemd
// and each controller). The first v1 line that names a container wins.
func ParseProcess(v2, v1 string) Info {
	if in := Parse(v2); in.Known() || v1 == "" {
		return in
	}
	for line := range strings.SplitSeq(v1, "\n") {
		// The path is the third field; it may itself hold colons.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if in := Parse(parts[2]); in.Known() {
			return in
		}
	}
	return Info{}
}

// containerSeg recognises a path segment that names a container.
func containerSeg(seg string, inPod, underDocker bool) (id, runtime string) {
	for _, p := range []struct{ prefix, runtime string }{
		{"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "cri-o"}, {"libpod-", "podman"},
	} {
		if rest, ok := strings.CutPrefix(seg, p.prefix); ok {
			rest = strings.TrimSuffix(rest, ".scope")
			if isID(rest) { // crio-conmon-ID and libpod-conmon-ID are monitors: no match
				return rest, p.runtime
			}
		}
	}
	if name, ok := strings.CutPrefix(seg, "machine-"); ok && strings.HasSuffix(name, ".scope") {
		name = strings.TrimSuffix(name, ".scope")
		if !strings.HasPrefix(name, "libpod-") && !strings.HasPrefix(name, "qemu-") {
			return unescape(name), "systemd-nspawn"
		}
	}
	if isID(seg) {
		switch {
		case underDocker:
			return seg, "docker"
		case inPod:
			// A pod's container under the cgroupfs driver names no
			// runtime: containerd's, the default one.
			return seg, ""
		}
	}
	return "", ""
}

// cmpOr returns the first non-empty string.
func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// qos names a kubepods segment's QoS class.
func qos(seg string) string {
	for _, q := range []string{"besteffort", "burstable"} {
		if seg == q || strings.Contains(seg, "kubepods-"+q) {
			return q
		}
	}
	return ""
}

// podUID writes a pod UID with dashes (the systemd driver turns them into
// underscores).
func podUID(s string) string { return strings.ReplaceAll(s, "_", "-") }

func isID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// unescape undoes systemd's \xNN escapes in a unit name (nspawn machines
// with dashes in their names).
func unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2:i+4]) {
			v := hexVal(s[i+2])<<4 | hexVal(s[i+3])
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hexVal(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
