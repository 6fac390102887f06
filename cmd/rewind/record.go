package main

import (
	"github.com/urfave/cli/v2"
)

func newRecordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "record processes' TCP traffic with eBPF into a capture file (root)",
		ArgsUsage: " ",
		Action: func(c *cli.Context) error {
			return exitCodeError{code: exitError, msg: "record is not built yet (issue: `rewind record`: syscall tracepoints into a capture file)"}
		},
	}
}
