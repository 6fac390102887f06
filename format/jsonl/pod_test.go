package jsonl

import (
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture/container"
	"github.com/rewind-tools/rewind/format/internal/fixture"
)

// TestPod checks that a line names the pod, hostname and container name
// recorded with the process, inside "container".
func TestPod(t *testing.T) {
	ex := *fixture.Exchanges()[0]
	c := *ex.Conn
	c.Container = container.Info{Runtime: "containerd", ID: strings.Repeat("3f", 32), PodUID: "6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162", QoS: "burstable",
		Pod: "web-0", Namespace: "shop", Hostname: "web-0", Name: "app"}
	ex.Conn = &c
	out := string(write(t, []*analyze.Exchange{&ex}))
	want := `"container":{"runtime":"containerd","id":"` + strings.Repeat("3f", 32) + `","pod_uid":"6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162","qos":"burstable","pod":"web-0","namespace":"shop","hostname":"web-0","name":"app"}`
	if !strings.Contains(out, want) {
		t.Errorf("no %s in\n%s", want, out)
	}
}
