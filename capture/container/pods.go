package container

import "strings"

// PodLogsDir is where the kubelet keeps a directory per pod on the node,
// named NAMESPACE_NAME_UID: the recorder learns a pod's name and namespace
// there from the pod UID in a process's cgroup path, without the API
// server.
const PodLogsDir = "/var/log/pods"

// ParsePodLogDir reads the name of a pod's directory under [PodLogsDir].
// The kubelet names it by joining namespace, pod name and UID with "_"
// (BuildPodLogsDirectory in pkg/kubelet/kuberuntime/helpers.go, its
// logPathDelimiter). A namespace is a DNS-1123 label (lowercase letters,
// digits, '-') and a pod name a DNS-1123 subdomain (the same and '.'), so
// neither holds '_' and the split is unambiguous. A UID is the API
// server's UUID, or for a static pod the hash of its manifest (hex digits).
// Anything else, such as the UID-only directories kubelets before 1.14
// wrote, reports ok false.
func ParsePodLogDir(name string) (namespace, pod, uid string, ok bool) {
	parts := strings.Split(name, "_")
	if len(parts) != 3 {
		return "", "", "", false
	}
	namespace, pod, uid = parts[0], parts[1], parts[2]
	if !dnsName(namespace, false) || len(namespace) > 63 || !dnsName(pod, true) || len(pod) > 253 || !podUIDChars(uid) {
		return "", "", "", false
	}
	return namespace, pod, uid, true
}

// dnsName reports whether s is made of lowercase letters, digits, '-' (and
// '.' when dots), starting and ending with a letter or digit.
func dnsName(s string, dots bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && !(c == '-' || dots && c == '.') {
			return false
		}
		if !alnum && (i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

func podUIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return false
		}
	}
	return s != ""
}

// PodLabel names the pod as kubectl does across namespaces
// ("NAMESPACE/NAME"), or "" when the pod's name is unknown.
func (i Info) PodLabel() string {
	if i.Pod == "" {
		return ""
	}
	if i.Namespace == "" {
		return i.Pod
	}
	return i.Namespace + "/" + i.Pod
}
