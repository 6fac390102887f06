// Command rewind records what a Linux host's processes say over TCP and
// replays it offline into SLI reports, HAR and pcapng.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes, part of the command-line contract.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitSLO   = 3
)

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagNameInMessage finds a flag name in the flag parser's messages
// ("flag provided but not defined: -bogus", "invalid value "500" for flag
// -apdex-t: …"), which spell every flag with one dash.
var flagNameInMessage = regexp.MustCompile(`(: |for flag |for )-([A-Za-z0-9][A-Za-z0-9-]+)`)

// flagMessage is the flag parser's error as users type the flag: long
// names with two dashes (--apdex-t), as --help shows them.
func flagMessage(err error) string {
	msg := strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1)
	return flagNameInMessage.ReplaceAllString(msg, "${1}--${2}")
}

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitCodeError carries a specific exit code with its message (the message
// may be empty when the command already said everything).
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

func newApp() *cli.App {
	app := &cli.App{
		Name:    "rewind",
		Usage:   "record what processes say over TCP with eBPF, replay it offline",
		Version: version,
		Description: "rewind record writes raw probe events (syscalls, TLS plaintext, packets) into one\n" +
			"compressed capture file; rewind analyze replays it deterministically into HTTP\n" +
			"exchanges, SLI reports, HAR and pcapng; rewind info describes a capture.",
		Commands: []*cli.Command{
			newRecordCommand(),
			newAnalyzeCommand(),
			newInfoCommand(),
			newDiffCommand(),
			newDemoCommand(),
			newCompletionCommand(),
			newManCommand(),
			newDemoWorkloadCommand(),
		},
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{flagMessage(err)}
		},
		// No command, `rewind help [COMMAND]`, or an unknown one.
		Action: func(c *cli.Context) error {
			switch first := c.Args().First(); {
			case first == "":
				return usageError{"missing command: record, analyze, info, diff or demo"}
			case first == "help" && c.NArg() == 1:
				return cli.ShowAppHelp(c)
			case first == "help":
				if c.App.Command(c.Args().Get(1)) == nil {
					return usagef("no command %q", c.Args().Get(1))
				}
				return cli.ShowCommandHelp(c, c.Args().Get(1))
			default:
				return usagef("unknown command %q", first)
			}
		},
	}
	addHelpExtras(app)
	for _, cmd := range app.Commands {
		// A mistake in a command's flags is one line on stderr and exit 2,
		// not the command's help on stdout (where it would land in a
		// redirected report).
		cmd.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{flagMessage(err)}
		}
		cmd.Flags = append(cmd.Flags, &cli.BoolFlag{Name: "version", Usage: "print rewind's version and exit"})
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if c.Bool("version") {
				cli.ShowVersion(c)
				return exitCodeError{code: exitOK}
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
	return app
}

func main() {
	// A closed standard output is an error of the report's writes (EPIPE),
	// not a SIGPIPE that would kill the process before the other outputs
	// are finished.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Value // the first signal
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		got.Store(s)
		cancel() // `record` stops and writes its file; `analyze` stops reading
		s = <-sigs
		// A second signal: something is stuck (a pipe nobody reads). Stop
		// now, leaving no temporary outputs behind.
		removeTemps()
		fmt.Fprintln(os.Stderr, "rewind: stopped")
		os.Exit(signalExitCode(s))
	}()
	code := run(ctx, os.Args)
	if s, ok := got.Load().(os.Signal); ok && code != exitOK {
		code = signalExitCode(s)
	}
	os.Exit(code)
}

// signalExitCode is the shell's code for a process ended by s: 128 + the
// signal number (130 for SIGINT, 143 for SIGTERM).
func signalExitCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string) int {
	app := newApp()
	app.ExitErrHandler = func(*cli.Context, error) {} // exit codes are ours
	err := app.RunContext(ctx, flagsFirst(app, args))
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ce exitCodeError
	switch {
	case errors.As(err, &ce):
		if ce.msg != "" {
			fmt.Fprintf(os.Stderr, "rewind: %s\n", ce.msg)
		}
		return ce.code
	case errors.As(err, &ue):
		help := "rewind --help"
		if len(args) > 1 && app.Command(args[1]) != nil {
			help = "rewind " + args[1] + " --help"
		}
		fmt.Fprintf(os.Stderr, "rewind: %s\nRun '%s' for usage.\n", ue.msg, help)
		return exitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "rewind: interrupted; the outputs were left as they were")
		return exitError
	default:
		fmt.Fprintf(os.Stderr, "rewind: %s\n", err)
		return exitError
	}
}

// flagsFirst moves a subcommand's positional arguments after its flags, so
// that `rewind analyze FILE --report json` works as well as the flags-first
// order urfave/cli expects.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) > 1 && args[len(args)-1] == "--generate-bash-completion" {
		// Completion reads its marker as the last argument; a "--" before
		// it would turn completion off and run the command instead.
		out := make([]string, 0, len(args))
		for i, a := range args {
			if a != "--" || i == 0 {
				out = append(out, a)
			}
		}
		return out
	}
	if len(args) < 3 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
