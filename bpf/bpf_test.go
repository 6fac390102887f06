//go:build linux

package bpf

import (
	"testing"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

func TestLoadAttach(t *testing.T) {
	bpftest.RequireRoot(t)
	tr, err := Load(Options{Ports: []uint16{1}, Comms: []string{"no-such-task"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if n := len(tr.Probes()); n != 32 {
		t.Errorf("%d probes attached, want 32: %v", n, tr.Probes())
	}
	for _, c := range LossCauses {
		if _, err := tr.Losses(c); err != nil {
			t.Error(err)
		}
	}
}
