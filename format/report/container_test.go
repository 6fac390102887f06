package report

import (
	"encoding/json"
	"testing"

	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture/container"
)

// TestContainerJSON checks a service's container object: what its cgroup
// says, then the names recorded with its processes, each only when known.
func TestContainerJSON(t *testing.T) {
	for _, c := range []struct {
		ct   container.Info
		want string
	}{
		{container.Info{}, `null`},
		{container.Info{Runtime: "docker", ID: "3f4e", Hostname: "3f4e", Name: "web"},
			`{"runtime":"docker","id":"3f4e","hostname":"3f4e","name":"web"}`},
		{container.Info{Runtime: "containerd", ID: "ab", PodUID: "u", QoS: "burstable", Pod: "web-0", Namespace: "shop", Name: "app"},
			`{"runtime":"containerd","id":"ab","pod_uid":"u","qos":"burstable","pod":"web-0","namespace":"shop","name":"app"}`},
	} {
		b, err := json.Marshal(containerJSON(&sli.Service{Container: c.ct}))
		if err != nil || string(b) != c.want {
			t.Errorf("%+v: %s %v, want %s", c.ct, b, err, c.want)
		}
	}
}
