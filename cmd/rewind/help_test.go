package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// shellWords splits an example command line as a shell would, for the
// quoting the examples use (single quotes), and keeps the words of the
// first rewind command in it.
func shellWords(line string) []string {
	line = strings.NewReplacer("<(", "", ")", " ").Replace(line) // process substitution
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	for i, w := range words {
		if w == "rewind" {
			words = words[i:]
			break
		}
	}
	for i, w := range words {
		if w == "|" || w == "#" || w == ">" {
			return words[:i]
		}
	}
	return words
}

// TestHelpEndsWithExamples checks every command's --help (#20 item 4):
// placeholders name their type, the help ends with examples whose flags
// the command has, and analyze's states the SLO grammar and exit codes.
func TestHelpEndsWithExamples(t *testing.T) {
	app := newApp()
	for _, cmd := range app.VisibleCommands() {
		t.Run(cmd.Name, func(t *testing.T) {
			code, out, errOut := runCLI(t, cmd.Name, "--help")
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, bad := range []string{" value ", "`"} {
				if strings.Contains(out, bad) {
					t.Errorf("help has %q:\n%s", bad, out)
				}
			}
			ex := examples(cmd.Name)
			if len(ex) < 2 || !strings.HasSuffix(strings.TrimSpace(out), ex[len(ex)-1]) {
				t.Fatalf("help does not end with two or more examples:\n%s", out)
			}
			known := map[string]bool{}
			for _, f := range cmd.Flags {
				for _, n := range f.Names() {
					known[n] = true
				}
			}
			for _, line := range ex {
				words := shellWords(line)
				if len(words) < 2 || words[0] != "rewind" || words[1] != cmd.Name {
					t.Errorf("example %q does not run rewind %s", line, cmd.Name)
					continue
				}
				for _, w := range words[2:] {
					if name, ok := strings.CutPrefix(w, "-"); ok && w != "-" {
						name = strings.TrimPrefix(name, "-")
						name, _, _ = strings.Cut(name, "=")
						if !known[name] {
							t.Errorf("example %q: rewind %s has no flag %s", line, cmd.Name, w)
						}
					}
				}
			}
		})
	}
	_, out, _ := runCLI(t, "analyze", "--help")
	for _, want := range []string{"OBJECTIVES (--slo", "METRIC", "EXIT CODES:", "3 an objective"} {
		if !strings.Contains(out, want) {
			t.Errorf("analyze --help lacks %q", want)
		}
	}
}

// TestDiffReportFlag: diff names its format --report, as analyze does;
// --format still works and both at once is a usage error.
func TestDiffReportFlag(t *testing.T) {
	in := syntheticCapture(t)
	for _, args := range [][]string{{"--report", "json"}, {"--format", "json"}} {
		code, out, _ := runCLI(t, append([]string{"diff", in, in}, args...)...)
		if code != exitOK || !strings.HasPrefix(out, "{") {
			t.Errorf("diff %v: exit %d, %.40q", args, code, out)
		}
	}
	if code, _, _ := runCLI(t, "diff", in, in, "--report", "json", "--format", "json"); code != exitUsage {
		t.Errorf("--report with --format: exit %d, want %d", code, exitUsage)
	}
}

// buildForShell builds rewind into a directory to put on PATH.
func buildForShell(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	name := "rewind"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func needShell(t *testing.T, sh string) {
	t.Helper()
	if _, err := exec.LookPath(sh); err != nil {
		bpftest.Unavailable(t, sh+" is not installed (scripts/test-setup.sh installs it)")
	}
}

// TestCompletionScripts loads each shell's completion script into that
// shell and asks it to complete a command and a flag.
func TestCompletionScripts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shells under test are Unix shells")
	}
	dir := buildForShell(t)
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	shell := func(t *testing.T, sh, script string) string {
		t.Helper()
		cmd := exec.Command(sh, "-c", script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, out)
		}
		return string(out)
	}
	t.Run("bash", func(t *testing.T) {
		needShell(t, "bash")
		complete := func(words string) string {
			return shell(t, "bash", `source <(rewind completion bash)
COMP_WORDS=(`+words+`); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _rewind_complete; printf '%s\n' "${COMPREPLY[@]}"`)
		}
		if got := complete("rewind ana"); got != "analyze\n" {
			t.Errorf("rewind ana<TAB>: %q", got)
		}
		if got := complete("rewind analyze --slo-n"); got != "--slo-no-data\n" {
			t.Errorf("rewind analyze --slo-n<TAB>: %q", got)
		}
		if got := complete("rewind diff --fail"); got != "--fail-on\n" {
			t.Errorf("rewind diff --fail<TAB>: %q", got)
		}
		// A bare -- must list flags, never run the command (it would end
		// the flags and start, say, a demo recording).
		if got := complete("rewind info --"); !strings.Contains(got, "--json") {
			t.Errorf("rewind info --<TAB>: %q", got)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		needShell(t, "zsh")
		shell(t, "zsh", `rewind completion zsh > "$TMPDIR/_rewind"; zsh -n "$TMPDIR/_rewind"`)
		// The function the script defines, run on a command line as
		// completion would (compadd and _files stubbed to print).
		got := shell(t, "zsh", `source <(rewind completion zsh) 2>/dev/null
compadd() { shift; print -l -- ${(P)1} }; _files() { }
words=(rewind analyze --slo-n); CURRENT=3; _rewind`)
		if got != "--slo-no-data\n" {
			t.Errorf("zsh completion of rewind analyze --slo-n: %q", got)
		}
	})
	t.Run("fish", func(t *testing.T) {
		needShell(t, "fish")
		got := shell(t, "fish", `rewind completion fish | source; complete -C 'rewind ana'; complete -C 'rewind analyze --slo-n'`)
		if !strings.Contains(got, "analyze") || !strings.Contains(got, "--slo-no-data") {
			t.Errorf("fish completion: %q", got)
		}
	})
	if code, _, errOut := runCLI(t, "completion", "tcsh"); code != exitUsage || !strings.Contains(errOut, "bash, zsh or fish") {
		t.Errorf("completion tcsh: exit %d, %q", code, errOut)
	}
}

// TestManPage renders `rewind man` with man(1), which must report no
// warnings, and finds every command, every flag and the examples in it.
func TestManPage(t *testing.T) {
	code, page, _ := runCLI(t, "man")
	if code != exitOK {
		t.Fatalf("rewind man: exit %d", code)
	}
	if _, err := exec.LookPath("man"); err != nil {
		bpftest.Unavailable(t, "man is not installed")
	}
	f := filepath.Join(t.TempDir(), "rewind.1")
	os.WriteFile(f, []byte(page), 0o600)
	cmd := exec.Command("man", "--warnings", "-l", f)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man: %v\n%s", err, stderr.String())
	}
	text := strings.ReplaceAll(string(out), "‐\n", "") // hyphenation
	for _, c := range newApp().VisibleCommands() {
		if !strings.Contains(text, "rewind "+c.Name) {
			t.Errorf("man page lacks command %s", c.Name)
		}
		for _, fl := range c.VisibleFlags() {
			if !strings.Contains(text, "--"+fl.Names()[0]) {
				t.Errorf("man page lacks %s --%s", c.Name, fl.Names()[0])
			}
		}
		for _, ex := range examples(c.Name) {
			if !strings.Contains(text, ex) {
				t.Errorf("man page lacks the example %q", ex)
			}
		}
	}
}
