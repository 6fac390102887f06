package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version and commit are set by `make build` and `make dist` through
// -ldflags '-X main.version=… -X main.commit=…'. When they are not (go
// install, go build), buildVersion and buildCommit read what the Go
// toolchain stamped into the binary instead. (-X only sets variables without
// an initializer that calls a function, hence the init below.)
var (
	version string
	commit  string
)

// buildVersion returns the module version the toolchain recorded (v1.2.3 for
// `go install …/cmd/rewind@v1.2.3`, a pseudo-version for a build in a Git
// checkout), or "dev" when there is none.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// buildCommit returns the commit set at link time, else the VCS revision the
// toolchain stamped (with "-dirty" for uncommitted changes), else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// versionLine is what `rewind --version` prints.
func versionLine() string {
	return fmt.Sprintf("rewind %s (commit %s, %s, %s/%s)", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func init() {
	if version == "" {
		version = buildVersion()
	}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintln(c.App.Writer, versionLine()) }
}
