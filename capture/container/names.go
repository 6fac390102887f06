package container

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Where the runtimes keep the names of their containers on the node. The
// recorder reads them (read-only) to name a container it recognised from
// a cgroup path; they are variables so tests can point them elsewhere.
var (
	// DockerContainersDir holds a directory per docker container, named
	// by its id, with the container's configuration in config.v2.json.
	DockerContainersDir = "/var/lib/docker/containers"
	// StorageContainersFile is the containers/storage list of the
	// containers podman and CRI-O created, with their names.
	StorageContainersFile = "/var/lib/containers/storage/overlay-containers/containers.json"
	// ContainerLogsDir is where the kubelet links each container's log
	// under a name made of its pod, namespace, container name and id.
	ContainerLogsDir = "/var/log/containers"
)

// ParseDockerConfig reads a container's name from docker's config.v2.json
// (DockerContainersDir/ID/config.v2.json): the JSON object the daemon
// writes for each container (its container.Container), whose "Name" is
// the name docker ps shows with a leading "/" ("/web"). The leading slash
// is dropped; "" when the field is missing or the file is no JSON object.
func ParseDockerConfig(b []byte) string {
	var c struct{ Name string }
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return printable(strings.TrimPrefix(c.Name, "/"))
}

// ParseStorageContainers reads the containers/storage containers.json
// (StorageContainersFile), a JSON array of the containers podman and
// CRI-O created through containers/storage, each an object with its
// "id" and its "names" (podman: the container's name; CRI-O: the name it
// builds from the Kubernetes container, pod and namespace). It calls add
// with each container's id and first name, one element at a time, so a
// long list is never held whole. Elements without an id or a name are
// skipped; an error reports a file that is no such array (what was read
// before it has been added).
func ParseStorageContainers(r io.Reader, add func(id, name string)) error {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return errors.New("containers.json: not a JSON array")
	}
	for dec.More() {
		var c struct {
			ID    string   `json:"id"`
			Names []string `json:"names"`
		}
		if err := dec.Decode(&c); err != nil {
			return err
		}
		if len(c.Names) > 0 && isID(c.ID) {
			if name := printable(c.Names[0]); name != "" {
				add(c.ID, name)
			}
		}
	}
	return nil
}

// ParseContainerLogLink reads the name of a container's log link in
// ContainerLogsDir. The kubelet names it POD_NAMESPACE_CONTAINER-ID.log
// (logSymlink in pkg/kubelet/kuberuntime/kuberuntime_container.go: the
// pod's full name, POD_NAMESPACE, then "_", the container's name, "-",
// the runtime's container id and ".log"). Pod and namespace names are
// DNS-1123 names and a container's name a DNS-1123 label, none holding
// "_", so the split is unambiguous; the id is the runtime's 64 hex digits.
// The kubelet cuts names longer than 255 bytes, losing the id: those, and
// anything else, report ok false.
func ParseContainerLogLink(name string) (pod, namespace, ctr, id string, ok bool) {
	rest, found := strings.CutSuffix(name, ".log")
	if !found {
		return "", "", "", "", false
	}
	dash := strings.LastIndexByte(rest, '-')
	if dash < 0 || !isID(rest[dash+1:]) {
		return "", "", "", "", false
	}
	id, rest = rest[dash+1:], rest[:dash]
	parts := strings.Split(rest, "_")
	if len(parts) != 3 {
		return "", "", "", "", false
	}
	pod, namespace, ctr = parts[0], parts[1], parts[2]
	if !dnsName(pod, true) || !dnsName(namespace, false) || !dnsName(ctr, false) || len(ctr) > 63 {
		return "", "", "", "", false
	}
	return pod, namespace, ctr, id, true
}

// maxName bounds a recorded container name (docker's and podman's are
// short; CRI-O's joins the Kubernetes names).
const maxName = 512

// printable returns s when it is a plausible name to record: not too long,
// no control characters or spaces; "" otherwise.
func printable(s string) string {
	if len(s) > maxName {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return ""
		}
	}
	return s
}
