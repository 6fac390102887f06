//go:build !linux

package record

import (
	"context"
	"io"
)

// errUnsupported is what every recording returns off Linux.
var errUnsupported = &UnavailableError{Reason: "recording needs Linux with eBPF; rewind analyze, info and diff work on this system"}

func record(context.Context, Options, func() (io.Writer, error)) (*Result, error) {
	return nil, errUnsupported
}

// Available returns why this build cannot record: off Linux, always.
func Available() error { return errUnsupported }

// CheckPrivileges returns why this build cannot record: off Linux, always.
func CheckPrivileges() error { return errUnsupported }
