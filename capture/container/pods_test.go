package container

import "testing"

// TestParsePodLogDir reads pod log directory names as the kubelet writes
// them: NAMESPACE_NAME_UID (pkg/kubelet/kuberuntime/helpers.go,
// BuildPodLogsDirectory with logPathDelimiter "_").
func TestParsePodLogDir(t *testing.T) {
	for _, c := range []struct {
		name, ns, pod, uid string
	}{
		// A Deployment's pod: ReplicaSet hash and random suffix.
		{"default_nginx-deployment-66b6c48dd5-4jw2p_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "default", "nginx-deployment-66b6c48dd5-4jw2p", "5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"},
		// Dashes in the namespace, a StatefulSet ordinal.
		{"kube-system_coredns-5d78c9869d-8xk2m_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "kube-system", "coredns-5d78c9869d-8xk2m", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		// Dots in a pod name (a DNS-1123 subdomain); a static pod, whose
		// name ends with the node's and whose UID is its manifest's hash.
		{"kube-system_etcd-node-1.example.com_5ba3e1ccf8e1f35e1c3ecb1d2e6e6c0b", "kube-system", "etcd-node-1.example.com", "5ba3e1ccf8e1f35e1c3ecb1d2e6e6c0b"},
		{"shop-prod_web.v2-0_11111111-2222-3333-4444-555555555555", "shop-prod", "web.v2-0", "11111111-2222-3333-4444-555555555555"},
	} {
		ns, pod, uid, ok := ParsePodLogDir(c.name)
		if !ok || ns != c.ns || pod != c.pod || uid != c.uid {
			t.Errorf("%s: %q %q %q %v, want %q %q %q", c.name, ns, pod, uid, ok, c.ns, c.pod, c.uid)
		}
	}
	for _, name := range []string{
		"5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b",                   // kubelet before 1.14: the UID alone
		"default_web_extra_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b", // four parts
		"Default_web_5a0e2f1c",                                   // upper case is no DNS name
		"default_web._5a0e2f1c",                                  // a name ends with a letter or digit
		"ns.x_web_5a0e2f1c",                                      // no dots in a namespace
		"default_web_UID",                                        // not a UID
		"default__5a0e2f1c",                                      // no name
		"",
	} {
		if ns, pod, uid, ok := ParsePodLogDir(name); ok {
			t.Errorf("%q read as %q %q %q", name, ns, pod, uid)
		}
	}
}

func TestPodLabel(t *testing.T) {
	for _, c := range []struct {
		in   Info
		want string
	}{
		{Info{}, ""},
		{Info{Pod: "web-0", Namespace: "shop"}, "shop/web-0"},
		{Info{Pod: "web-0"}, "web-0"},
	} {
		if got := c.in.PodLabel(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.in, got, c.want)
		}
	}
}
