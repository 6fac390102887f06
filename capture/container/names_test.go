package container

import (
	"strings"
	"testing"
)

// TestParseDockerConfig reads the name from docker's config.v2.json, the
// daemon's container object as it writes it to
// /var/lib/docker/containers/ID/config.v2.json ("Name" with a leading
// slash, beside "ID", "State", "Config" and the rest).
func TestParseDockerConfig(t *testing.T) {
	id := strings.Repeat("3f", 32)
	for _, c := range []struct{ in, want string }{
		{`{"StreamConfig":{},"State":{"Running":true,"Pid":4242},"ID":"` + id + `","Created":"2026-12-07T10:00:00.123456789Z","Path":"nginx","Args":["-g","daemon off;"],"Config":{"Hostname":"3f3f3f3f3f3f","Image":"nginx:1.25"},"Image":"sha256:` + id + `","Name":"/web","RestartCount":0,"Driver":"overlay2"}`, "web"},
		// Compose names: project, service and index joined by '-' (v2) or '_' (v1).
		{`{"ID":"` + id + `","Name":"/shop-web-1"}`, "shop-web-1"},
		{`{"ID":"` + id + `","Name":"/shop_web_1"}`, "shop_web_1"},
		{`{"ID":"` + id + `"}`, ""},
		{`{"Name":"/bad name"}`, ""},
		{`{"Name":"/` + strings.Repeat("a", maxName+1) + `"}`, ""},
		{`[]`, ""},
		{`{"Name":"/web"`, ""}, // cut off mid-write
		{``, ""},
	} {
		if got := ParseDockerConfig([]byte(c.in)); got != c.want {
			t.Errorf("%.60s: %q, want %q", c.in, got, c.want)
		}
	}
}

// TestParseStorageContainers reads containers/storage's containers.json as
// podman 4.3 writes it to
// /var/lib/containers/storage/overlay-containers/containers.json (one
// object per container: id, names, image, layer, metadata, created,
// flags), and as CRI-O names its containers there.
func TestParseStorageContainers(t *testing.T) {
	web, db, crio, noName := strings.Repeat("77", 32), strings.Repeat("be", 32), strings.Repeat("c1", 32), strings.Repeat("d4", 32)
	in := `[{"id":"` + web + `","names":["web"],"image":"1997b7a5","layer":"d85d9661","metadata":"{\"image-name\":\"localhost/server:1\",\"name\":\"web\",\"created-at\":1796642955}","created":"2026-12-07T11:29:15.617935635Z","flags":{"MountLabel":"","ProcessLabel":""}},` +
		`{"id":"` + db + `","names":["db","db-alias"],"image":"1997b7a5","layer":"aa"},` +
		`{"id":"` + crio + `","names":["k8s_web_web-0_shop_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b_0"]},` +
		`{"id":"` + noName + `","names":[]},` +
		`{"id":"short","names":["nope"]},` +
		`{"id":"` + strings.Repeat("e5", 32) + `","names":["bad name"]}]`
	got := map[string]string{}
	if err := ParseStorageContainers(strings.NewReader(in), func(id, name string) { got[id] = name }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{web: "web", db: "db", crio: "k8s_web_web-0_shop_5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b_0"}
	if len(got) != len(want) {
		t.Errorf("read %v, want %v", got, want)
	}
	for id, name := range want {
		if got[id] != name {
			t.Errorf("%s: %q, want %q", id[:4], got[id], name)
		}
	}
	// An empty store, and files that are no array.
	if err := ParseStorageContainers(strings.NewReader("[]"), func(string, string) { t.Error("added from []") }); err != nil {
		t.Errorf("[]: %v", err)
	}
	for _, bad := range []string{``, `{}`, `null`} {
		if err := ParseStorageContainers(strings.NewReader(bad), func(string, string) {}); err == nil {
			t.Errorf("%q read without error", bad)
		}
	}
	// Cut off mid-write: what came before is kept, and the cut reported.
	got = map[string]string{}
	if err := ParseStorageContainers(strings.NewReader(in[:len(in)/2]), func(id, name string) { got[id] = name }); err == nil || got[web] != "web" {
		t.Errorf("cut file: %v, read %v", err, got)
	}
}

// TestParseContainerLogLink reads the kubelet's container log links in
// /var/log/containers: POD_NAMESPACE_CONTAINER-ID.log (logSymlink in
// pkg/kubelet/kuberuntime/kuberuntime_container.go, the pod's full name
// being POD_NAMESPACE).
func TestParseContainerLogLink(t *testing.T) {
	id := strings.Repeat("3959d7ab", 8)
	for _, c := range []struct{ name, pod, ns, ctr string }{
		{"web-0_shop_nginx-" + id + ".log", "web-0", "shop", "nginx"},
		// Dashes in every part: the id is after the last one.
		{"coredns-5d78c9869d-8xk2m_kube-system_coredns-" + id + ".log", "coredns-5d78c9869d-8xk2m", "kube-system", "coredns"},
		{"kube-proxy-6xsx9_kube-system_kube-proxy-" + id + ".log", "kube-proxy-6xsx9", "kube-system", "kube-proxy"},
		// A static pod's name holds the node's, dots included.
		{"etcd-node-1.example.com_kube-system_etcd-" + id + ".log", "etcd-node-1.example.com", "kube-system", "etcd"},
		{"web-0_shop_istio-proxy-" + id + ".log", "web-0", "shop", "istio-proxy"},
	} {
		pod, ns, ctr, gotID, ok := ParseContainerLogLink(c.name)
		if !ok || pod != c.pod || ns != c.ns || ctr != c.ctr || gotID != id {
			t.Errorf("%s: %q %q %q %q %v", c.name, pod, ns, ctr, gotID, ok)
		}
	}
	for _, name := range []string{
		"web-0_shop_nginx-" + id,                                    // no .log
		"web-0_shop_nginx-" + id[:60] + ".log",                      // cut to 255 bytes: the id is lost
		"web-0_shop_nginx-" + id + "x.log",                          // not an id
		"web-0_nginx-" + id + ".log",                                // two parts
		"web-0_shop_extra_nginx-" + id + ".log",                     // four parts
		"web-0_shop.x_nginx-" + id + ".log",                         // no dots in a namespace
		"web-0_shop_nginx.v1-" + id + ".log",                        // nor in a container name
		"web-0_shop_Nginx-" + id + ".log",                           // upper case is no DNS name
		"web-0_shop_-" + id + ".log",                                // no container name
		"web-0_shop_" + strings.Repeat("a", 64) + "-" + id + ".log", // a label has 63 bytes at most
		".log",
		"",
	} {
		if pod, ns, ctr, gotID, ok := ParseContainerLogLink(name); ok {
			t.Errorf("%q read as %q %q %q %q", name, pod, ns, ctr, gotID)
		}
	}
}
