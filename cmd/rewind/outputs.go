package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// The files a command writes. Every output is checked before any input is
// read (its directory exists; it is not the input, nor the same file as
// another output or as standard output), written to a temporary file in
// its directory and renamed into place only when the run succeeds, so a
// failed or interrupted run never replaces a good file or leaves half of
// one. Outputs that are not regular files (pipes, FIFOs, /dev/null) are
// written in place. A write error on one output (a reader that went away)
// drops that output's later bytes but not the others: they are finished,
// and the error is reported when the run ends.

// output is one destination: a file, or standard output.
type output struct {
	flag string // the flag that named it, for messages: "--exchanges"
	path string // as given; "" for standard output
	f    *os.File
	tmp  string // temporary file renamed to path on success; "" when written in place
	bw   *bufio.Writer
	n    int64 // bytes given to it
	sent int64 // bytes the file or pipe took
	err  error // the first write error; later writes are dropped
}

// fileWriter writes an output's buffer out and counts what was taken.
type fileWriter struct{ o *output }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.o.f.Write(p)
	w.o.sent += int64(n)
	return n, err
}

// Write buffers p. After a write error it drops p and reports success, so
// that one broken output does not stop the others (see [outputs.commit]).
func (o *output) Write(p []byte) (int, error) {
	o.n += int64(len(p))
	if o.err != nil {
		return len(p), nil
	}
	if _, err := o.bw.Write(p); err != nil {
		o.err = err
	}
	return len(p), nil
}

// Flush writes out what the output buffers (a sink writing exchanges as
// they complete, when analyze --follow waits for more, calls it).
func (o *output) Flush() error {
	if o.err == nil {
		if err := o.bw.Flush(); err != nil {
			o.err = err
		}
	}
	return nil // an output's error is reported by commit
}

// name is how messages call the output.
func (o *output) name() string {
	if o.path == "" {
		return "standard output"
	}
	return o.flag + " " + o.path
}

// outputs is a command's set of outputs.
type outputs struct {
	list []*output
}

// outputSpec is an output asked for on the command line.
type outputSpec struct {
	flag, path string // path "" or "-": standard output
}

// openOutputs checks specs against each other, the inputs and standard
// output, then opens them all. Nothing is created when a check fails.
func openOutputs(inputs []string, specs []outputSpec) (*outputs, error) {
	ins := statInputs(inputs)
	type seen struct {
		spec outputSpec
		abs  string
		fi   fs.FileInfo // nil when the file does not exist yet
	}
	var files []seen
	var stdout fs.FileInfo // set when an output is standard output
	switch n := countStdout(specs); {
	case n > 1:
		return nil, usagef("only one output may be standard output (\"-\"); the report goes there unless -o FILE names another place")
	case n == 1:
		stdout, _ = os.Stdout.Stat()
		for _, s := range specs {
			if s.path == "" || s.path == "-" {
				if err := stdoutNotInput(ins, stdoutUse(s.flag)); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, s := range specs {
		if s.path == "" || s.path == "-" {
			continue
		}
		abs, err := filepath.Abs(s.path)
		if err != nil {
			return nil, usagef("%s %s: %v", s.flag, s.path, err)
		}
		cur := seen{spec: s, abs: abs}
		if fi, err := os.Stat(s.path); err == nil {
			if fi.IsDir() {
				return nil, usagef("%s %s: is a directory", s.flag, s.path)
			}
			cur.fi = fi
			if err := inputClash(ins, s.flag, s.path, fi); err != nil {
				return nil, err
			}
		} else if errors.Is(err, fs.ErrNotExist) {
			dir := filepath.Dir(s.path)
			if di, err := os.Stat(dir); err != nil || !di.IsDir() {
				return nil, usagef("%s %s: directory %s does not exist", s.flag, s.path, dir)
			}
		} else {
			return nil, fmt.Errorf("%s %s: %w", s.flag, s.path, err)
		}
		for _, o := range files {
			// A device (/dev/null) may take several outputs, whatever
			// name each is given.
			same := o.abs == cur.abs || o.fi != nil && cur.fi != nil && os.SameFile(o.fi, cur.fi)
			if cur.fi != nil && isDevice(cur.fi) {
				same = false
			}
			if same {
				return nil, usagef("%s and %s name the same file %s: give each output its own", o.spec.flag, s.flag, s.path)
			}
		}
		if cur.fi != nil && stdout != nil && !isDevice(cur.fi) && os.SameFile(stdout, cur.fi) {
			return nil, usagef("%s %s is also standard output, where the report goes: write the report with -o FILE", s.flag, s.path)
		}
		files = append(files, cur)
	}
	outs := &outputs{}
	for _, s := range specs {
		o := &output{flag: s.flag}
		var err error
		if s.path == "" || s.path == "-" {
			o.f = os.Stdout
		} else {
			o.path = s.path
			err = o.open()
		}
		if err != nil {
			outs.abort()
			return nil, err
		}
		o.bw = bufio.NewWriterSize(fileWriter{o}, 256<<10)
		outs.list = append(outs.list, o)
	}
	return outs, nil
}

func countStdout(specs []outputSpec) int {
	n := 0
	for _, s := range specs {
		if s.path == "" || s.path == "-" {
			n++
		}
	}
	return n
}

// inputFile is an input as outputs are compared with it.
type inputFile struct {
	name string // as given; "-" for standard input
	fi   fs.FileInfo
}

// statInputs returns the inputs that exist. Standard input ("-") is one
// only when it is a regular file (`< s.rwd`): a pipe, a terminal or a
// device may be shared with an output.
func statInputs(inputs []string) []inputFile {
	var ins []inputFile
	for _, in := range inputs {
		if in == "-" {
			if fi := regularStat(os.Stdin); fi != nil {
				ins = append(ins, inputFile{in, fi})
			}
			continue
		}
		if fi, err := os.Stat(in); err == nil {
			ins = append(ins, inputFile{in, fi})
		}
	}
	return ins
}

// regularStat returns f's file information when f is a regular file, or
// nil.
func regularStat(f *os.File) fs.FileInfo {
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		return fi
	}
	return nil
}

// stdoutUse says what an output spec sends to standard output, for
// messages.
func stdoutUse(flag string) string {
	if flag == "-o" {
		return outputWhat(flag)
	}
	return flag + " -"
}

// outputWhat names what the output of flag is, for messages.
func outputWhat(flag string) string {
	if flag == "-o" {
		return "the report"
	}
	return flag
}

// stdoutNotInput refuses a run whose standard output is a regular file
// that is also an input (`rewind analyze s.rwd >> s.rwd`): what goes there
// (what, "the report") would be written into the capture being read.
func stdoutNotInput(ins []inputFile, what string) error {
	out := regularStat(os.Stdout)
	if out == nil {
		return nil
	}
	for _, in := range ins {
		if !os.SameFile(out, in.fi) {
			continue
		}
		if in.name == "-" {
			return refusef("standard output is the same file as standard input, the capture being read: refusing to write %s into it; redirect standard output to another file", what)
		}
		return refusef("standard output is the input %s: refusing to write %s into it; redirect standard output to another file", in.name, what)
	}
	return nil
}

// inputClash refuses an existing output file fi (path, named by flag) that
// is one of the inputs, standard input included.
func inputClash(ins []inputFile, flag, path string, fi fs.FileInfo) error {
	for _, in := range ins {
		if !os.SameFile(fi, in.fi) {
			continue
		}
		if in.name == "-" {
			return refusef("%s %s is standard input, the capture being read: refusing to overwrite it; write %s to another file", flag, path, outputWhat(flag))
		}
		return usagef("%s %s is the input %s: refusing to overwrite it", flag, path, in.name)
	}
	return nil
}

// notStdout refuses an output file fi (path, named by flag) that is
// standard output when something goes there (stdout true). Only regular
// files are compared.
func notStdout(flag, path string, fi fs.FileInfo, stdout bool) error {
	if fi == nil || !fi.Mode().IsRegular() {
		return nil
	}
	if out := regularStat(os.Stdout); stdout && out != nil && os.SameFile(out, fi) {
		return refusef("%s %s is also standard output, where the report goes: write the report with -o FILE", flag, path)
	}
	return nil
}

// refusef is a refusal to run that is not a mistake in the command's
// syntax: exit 2 with one line and no pointer to --help.
func refusef(format string, args ...any) error {
	return exitCodeError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// isDevice reports a character or block device (/dev/null): many outputs
// may share one.
func isDevice(fi fs.FileInfo) bool {
	return fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0
}

// open creates the output's temporary file, or opens a non-regular file
// (pipe, FIFO, device) write-only in place: a read-write open would make
// rewind a reader of its own pipe, so it would never see the real reader
// leave.
func (o *output) open() error {
	if fi, err := os.Stat(o.path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(o.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name(), err)
		}
		o.f = f
		return nil
	}
	dir, base := filepath.Split(o.path)
	if dir == "" {
		dir = "."
	}
	// 0600 (CreateTemp's mode): outputs hold decrypted payloads and
	// request details. On Windows the mode only decides the read-only bit.
	f, err := os.CreateTemp(dir, "."+base+".rewind-*")
	if err != nil {
		return fmt.Errorf("%s: %w", o.name(), err)
	}
	o.f, o.tmp = f, f.Name()
	trackTemp(o.tmp, true)
	return nil
}

// writer returns the i-th output's writer.
func (outs *outputs) writer(i int) io.Writer { return outs.list[i] }

// commit flushes and closes every output and renames the temporary files
// into place. When an output could not be written, the others are still
// completed and the returned error names each failure; a reader that left
// early is said in one line.
func (outs *outputs) commit() error {
	var errs []string
	for _, o := range outs.list {
		if o.err == nil {
			if err := o.bw.Flush(); err != nil {
				o.err = err
			}
		}
		if o.f != os.Stdout {
			if err := o.f.Close(); err != nil && o.err == nil {
				o.err = err
			}
		}
		if o.tmp != "" {
			if o.err == nil {
				if err := os.Rename(o.tmp, o.path); err != nil {
					o.err = err
				}
			}
			if o.err != nil {
				os.Remove(o.tmp)
			}
			trackTemp(o.tmp, false)
		}
		switch {
		case o.err == nil:
		case errors.Is(o.err, syscall.EPIPE):
			errs = append(errs, fmt.Sprintf("%s was not fully read: its reader closed the pipe; it took %d of %d bytes", o.name(), o.sent, o.n))
		default:
			errs = append(errs, fmt.Sprintf("writing %s: %v", o.name(), o.err))
		}
	}
	outs.list = nil
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return exitCodeError{code: exitError, msg: errs[0]}
	}
	msg := errs[0]
	for _, e := range errs[1:] {
		msg += "\nrewind: " + e
	}
	return exitCodeError{code: exitError, msg: msg}
}

// abort removes the temporary files of a run that did not succeed; the
// files they were to replace are untouched. It is a no-op after commit.
func (outs *outputs) abort() {
	for _, o := range outs.list {
		if o.f != nil && o.f != os.Stdout {
			o.f.Close()
		}
		if o.tmp != "" {
			os.Remove(o.tmp)
			trackTemp(o.tmp, false)
		}
	}
	outs.list = nil
}

// temps are the temporary outputs of the running command, removed by
// removeTemps when a second signal ends the process at once.
var temps sync.Map

func trackTemp(path string, on bool) {
	if on {
		temps.Store(path, struct{}{})
	} else {
		temps.Delete(path)
	}
}

func removeTemps() {
	temps.Range(func(k, _ any) bool {
		os.Remove(k.(string))
		return true
	})
}
