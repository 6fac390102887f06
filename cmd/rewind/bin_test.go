package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// built is the rewind binary of this test run, shared by the tests that
// run it as a user would: with real pipes, signals and terminals.
var built struct {
	once sync.Once
	dir  string
	bin  string
	out  []byte
	err  error
}

// buildRewind builds the rewind binary once per test run and returns its
// path. It is removed when the tests end.
func buildRewind(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "rewind-bin-"); built.err != nil {
			return
		}
		name := "rewind"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		built.bin = filepath.Join(built.dir, name)
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
