//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Capabilities that loading and attaching the programs needs.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// PrivilegeError says that the process lacks the capabilities to record.
type PrivilegeError struct {
	Missing []string // e.g. "CAP_BPF", "CAP_PERFMON"
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("recording needs root or the capabilities CAP_BPF and CAP_PERFMON; missing %s "+
		"(run with sudo, or grant them: setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep rewind)",
		strings.Join(e.Missing, " and "))
}

// CheckPrivileges returns a [*PrivilegeError] unless the process has
// CAP_SYS_ADMIN or both CAP_BPF and CAP_PERFMON in its effective set.
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading process capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(capSysAdmin) {
		return nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	if len(missing) == 0 {
		return nil
	}
	return &PrivilegeError{Missing: missing}
}

// TracefsPath is where EnsureTracefs mounts tracefs when no tracefs is
// mounted.
const TracefsPath = "/sys/kernel/tracing"

// EnsureTracefs makes sure tracefs is mounted (the syscall tracepoints'
// ids are read from it), mounting it at [TracefsPath] when it is not.
func EnsureTracefs() error {
	for _, dir := range []string{TracefsPath, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return checkSyscallEvents(dir)
		}
	}
	if err := unix.Mount("nodev", TracefsPath, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs at %s (mount -t tracefs nodev %s): %w", TracefsPath, TracefsPath, err)
	}
	return checkSyscallEvents(TracefsPath)
}

func checkSyscallEvents(dir string) error {
	if _, err := os.Stat(dir + "/events/syscalls/sys_enter_read"); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("this kernel has no syscall tracepoints (%s/events/syscalls is missing): "+
			"rewind needs a kernel built with CONFIG_FTRACE_SYSCALLS", dir)
	}
	return nil
}
