package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// exitCodesHelp is the exit-code contract, in the help of the commands
// that gate CI.
const exitCodesHelp = `EXIT CODES:
   0 success; 1 error; 2 usage mistake; 3 an objective (--slo) or a flagged
   change (--fail-on) failed the gate, or had no data to judge; 130/143
   interrupted by SIGINT/SIGTERM (a second Ctrl-C stops at once).
`

// sloHelp is the grammar of --slo (see sli.Objective).
const sloHelp = `OBJECTIVES (--slo, comma-separated):
   objective = [SCOPE:]METRIC OP VALUE
   SCOPE     = [METHOD ][HOST]PATH, PATH a route pattern (/users/{id}, /static/*);
               without one, every server-side exchange (client-side if no server side)
   METRIC    = availability | error_rate | apdex | [TIMING_]pN
               (p50, p99, p999 = p99.9; TIMING total (default), server, transfer, network)
   OP        = < | <= | > | >=
   VALUE     = a number, a percentage (99.9%) or a duration (300ms, 1s, 250us)
   An objective with nothing in its scope has no data: it fails unless --slo-no-data pass.
`

// commandExtras is what each command's --help ends with, after its
// options: what does not fit a flag's line, then real examples. The man
// page carries the same text.
var commandExtras = map[string]string{
	"record": `CONTAINERS:
   --container NAME is the name the container's runtime gave it, read from the node: docker's
   /var/lib/docker/containers/*/config.v2.json, containers/storage's containers.json (podman,
   CRI-O) and, for a pod's containers, the pod spec's name from the kubelet's /var/log/containers.
   A container's name selects that container; anything else is taken as a prefix of an id.
   Either must fit exactly one running container: when several fit, record refuses and lists
   them. The container is selected by its cgroup when the recording starts, so it must be running
   then; one started (or restarted) later is not recorded, by name or by id. To take those in,
   give --cgroup a cgroup above them (the recording takes in the processes of cgroups created
   below it).

EXAMPLES:
   sudo rewind record -o prod.rwd --comm nginx --duration 60s
   sudo rewind record -o api.rwd --port 8443 --max-size 1GiB
   sudo rewind record -o job.rwd --pid 4242 --snaplen 64KiB
   sudo rewind record -o web.rwd --container web --container 3f4e1a2b9c0d
`,
	"analyze": sloHelp + "\n" + exitCodesHelp + `
EXAMPLES:
   rewind analyze --follow prod.rwd --role server     # while rewind record writes it
   rewind analyze prod.rwd --report html -o sli.html --exchanges x.jsonl --har x.har
   rewind analyze prod.rwd --slo 'availability>=99.9%,GET /api/users/{id}:p99<300ms'
   tcpdump -i lo -U -w - port 8080 | rewind analyze - --report json
   rewind analyze nodes/ 'extra/*.pcap' --report json -o fleet.json --parquet fleet/
`,
	"info": `EXAMPLES:
   rewind info prod.rwd
   rewind info --json trace.pcapng
   curl -s https://example.test/capture.pcap | rewind info -
`,
	"diff": exitCodesHelp + `
EXAMPLES:
   rewind diff before.rwd after.rwd
   rewind diff before.rwd after.rwd --fail-on p99,availability --max-p99-increase 10%
   rewind diff a.pcap b.pcap --report json -o diff.json
   rewind diff before/ after/ --fail-on p99
`,
	"demo": `EXAMPLES:
   rewind demo
   sudo rewind demo --requests 1000 -o demo.rwd
`,
	"completion": `EXAMPLES:
   source <(rewind completion bash)          # in ~/.bashrc
   rewind completion zsh > "${fpath[1]}/_rewind"
   rewind completion fish > ~/.config/fish/completions/rewind.fish
`,
}

// addHelpExtras appends each command's extras to its help.
func addHelpExtras(app *cli.App) {
	for _, cmd := range app.Commands {
		if extra := commandExtras[cmd.Name]; extra != "" {
			cmd.CustomHelpTemplate = cli.CommandHelpTemplate + "\n" + extra
		}
	}
}

// examples returns the example command lines of a command's help.
func examples(name string) []string {
	text := commandExtras[name]
	_, after, ok := strings.Cut(text, "EXAMPLES:\n")
	if !ok {
		return nil
	}
	var lines []string
	for l := range strings.SplitSeq(strings.TrimRight(after, "\n"), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	return lines
}

func newCompletionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: "Prints a script that completes rewind's commands and flags (and file names\n" +
			"for their arguments) in SHELL. Load it from the shell's start-up file.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes one shell: bash, zsh or fish")
			}
			var script string
			switch sh := c.Args().First(); sh {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("writing the fish completion: %w", err)
				}
				script = s
			default:
				return usagef("no completion for shell %q: bash, zsh or fish", sh)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// The bash and zsh scripts ask rewind itself what may follow the words
// typed so far (urfave/cli's --generate-bash-completion), and fall back to
// file names.
const bashCompletion = `# bash completion for rewind: source <(rewind completion bash)
_rewind_complete() {
  local cur=${COMP_WORDS[COMP_CWORD]} words
  # A bare -- would end rewind's flags and run the command: ask with -.
  [[ $cur == -- ]] && cur=-
  if [[ $cur == -* ]]; then
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _rewind_complete rewind
`

const zshCompletion = `#compdef rewind
# zsh completion for rewind: rewind completion zsh > "${fpath[1]}/_rewind"
_rewind() {
  local -a words_out
  local cur=${words[CURRENT]}
  [[ $cur == -- ]] && cur=-  # a bare -- would run the command
  if [[ $cur == -* ]]; then
    words_out=(${(f)"$(${words[1,CURRENT-1]} $cur --generate-bash-completion 2>/dev/null)"})
  else
    words_out=(${(f)"$(${words[1,CURRENT-1]} --generate-bash-completion 2>/dev/null)"})
  fi
  words_out=(${words_out%%:*})
  if (( ${#words_out} )); then
    compadd -a words_out
  fi
  _files
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _rewind "$@"
else
  compdef _rewind rewind
fi
`

// newManCommand prints the man page (hidden: `make man` uses it).
func newManCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print rewind's man page (roff)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			page, err := manPage(c.App)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}

// manPage renders the man page (roff, section 1) from the command
// definitions: each visible command's usage, description, options and
// extras (grammar, exit codes, examples), the text --help shows.
// (urfave/cli's own ToMan drops command descriptions and reads "<" in
// usage text as HTML.)
func manPage(app *cli.App) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH REWIND 1 \"\" \"rewind %s\" \"User Commands\"\n", roff(app.Version))
	fmt.Fprintf(&b, ".SH NAME\nrewind \\- %s\n", roff(app.Usage))
	b.WriteString(".SH SYNOPSIS\n.B rewind\n.I command\n[\\fIoptions\\fR] [\\fIarguments\\fR]\n")
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roffText(app.Description))
	b.WriteString(".SH COMMANDS\n")
	for _, cmd := range app.VisibleCommands() {
		fmt.Fprintf(&b, ".SS \"rewind %s %s\"\n%s\n", roff(cmd.Name), roff(cmd.ArgsUsage), roffText(cmd.Usage))
		if cmd.Description != "" {
			fmt.Fprintf(&b, ".PP\n%s\n", roffText(cmd.Description))
		}
		for _, f := range cmd.VisibleFlags() {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			placeholder, usage := splitPlaceholder(df.GetUsage())
			if placeholder == "" && df.TakesValue() {
				placeholder = "VALUE"
			}
			var names []string
			for _, n := range f.Names() {
				dash := "\\-\\-"
				if len(n) == 1 {
					dash = "\\-"
				}
				name := "\\fB" + dash + roff(n) + "\\fR"
				if placeholder != "" {
					name += " \\fI" + roff(placeholder) + "\\fR"
				}
				names = append(names, name)
			}
			if d := df.GetDefaultText(); d != "" {
				usage += " (default: " + d + ")"
			} else if v := df.GetValue(); df.TakesValue() && v != "" && v != "0" && v != "[]" {
				usage += " (default: " + v + ")"
			}
			fmt.Fprintf(&b, ".TP\n%s\n%s\n", strings.Join(names, ", "), roffText(usage))
		}
		if extra := commandExtras[cmd.Name]; extra != "" {
			for _, sec := range strings.Split(strings.TrimSpace(extra), "\n\n") {
				title, body, _ := strings.Cut(sec, "\n")
				fmt.Fprintf(&b, ".PP\n.B %s\n.nf\n%s\n.fi\n", roff(strings.TrimSuffix(title, ":")), roffLines(body))
			}
		}
	}
	b.WriteString(".SH EXIT STATUS\n" + roffText(strings.TrimPrefix(exitCodesHelp, "EXIT CODES:\n")) + "\n")
	b.WriteString(".SH SEE ALSO\n.BR tcpdump (1),\n.BR tshark (1)\n")
	return b.String(), nil
}

// splitPlaceholder returns a flag usage's `PLACEHOLDER` and the usage
// without the backquotes, as --help shows them.
func splitPlaceholder(usage string) (string, string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name := usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+2+j:]
}

// roff escapes text for a roff line: backslashes and hyphens.
func roff(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\e")
	return strings.ReplaceAll(s, "-", "\\-")
}

// roffText escapes a paragraph, joining its lines.
func roffText(s string) string {
	return roffLine(strings.Join(strings.Fields(s), " "))
}

// roffLines escapes preformatted lines.
func roffLines(s string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		out = append(out, roffLine(l))
	}
	return strings.Join(out, "\n")
}

// roffLine escapes one line; a leading '.' or '\” would be a request.
func roffLine(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = "\\&" + s
	}
	return s
}
