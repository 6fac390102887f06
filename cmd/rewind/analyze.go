package main

import (
	"github.com/urfave/cli/v2"
)

func newAnalyzeCommand() *cli.Command {
	return &cli.Command{
		Name:      "analyze",
		Usage:     "replay a capture (or pcap/pcapng) into SLI reports, exchanges, HAR and pcapng",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			return exitCodeError{code: exitError, msg: "analyze is not built yet (issue: `rewind analyze`: replay, HTTP/1.x pairing, SLI report, exchanges, HAR)"}
		},
	}
}
