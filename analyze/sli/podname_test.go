package sli

import (
	"testing"

	"github.com/rewind-tools/rewind/capture/container"
)

// TestServiceNamePod names a service by its pod, else by its container's
// name, else by its hostname, keeping the comm and pids.
func TestServiceNamePod(t *testing.T) {
	pod := container.Info{Runtime: "containerd", ID: "x", PodUID: "u", Pod: "web-0", Namespace: "shop", Hostname: "web-0"}
	for _, c := range []struct {
		s    Service
		want string
	}{
		{Service{Comm: "nginx", PIDs: []uint32{1, 2}, Container: pod}, "shop/web-0:nginx[1,2]"},
		{Service{Comm: "nginx", PID: 3, Container: container.Info{Runtime: "docker", ID: "x", Hostname: "3f4e5a6b7c8d"}}, "3f4e5a6b7c8d:nginx[3]"},
		{Service{Comm: "nginx", PID: 3, Container: container.Info{Runtime: "docker", ID: "x"}}, "nginx[3]"},
		{Service{Comm: "nginx", PIDs: []uint32{3, 4}, Container: container.Info{Runtime: "docker", ID: "x", Hostname: "3f4e5a6b7c8d", Name: "web"}}, "web:nginx[3,4]"},
		// In a pod the pod's name leads, as kubectl users know it; the
		// comm and pids tell its containers apart.
		{Service{Comm: "envoy", PID: 5, Container: container.Info{Runtime: "containerd", ID: "y", PodUID: "u", Pod: "web-0", Namespace: "shop", Name: "istio-proxy"}}, "shop/web-0:envoy[5]"},
		{Service{Comm: "nginx", Container: pod}, "shop/web-0:nginx"},
		{Service{Comm: "nginx", PID: 3, Host: "node-1", Container: pod}, "shop/web-0:nginx[3]@node-1"},
	} {
		if got := c.s.Name(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}
