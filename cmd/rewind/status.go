package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// statusLine rewrites one line of progress in place on a terminal. Where the
// terminal takes ANSI escapes (every Unix terminal; Windows consoles once
// virtual terminal processing is on) it erases with ESC[K; elsewhere it pads
// over the previous text with spaces, so a legacy Windows console shows no
// escape garbage.
type statusLine struct {
	f    *os.File
	ansi bool
	last int
}

// newStatusLine returns a status line on f, or nil when f is not a terminal
// (progress is then not shown at all: redirected stderr stays clean).
func newStatusLine(f *os.File) *statusLine {
	if !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &statusLine{f: f, ansi: enableANSI(f)}
}

// Show replaces the line with text.
func (s *statusLine) Show(text string) {
	if s.ansi {
		fmt.Fprint(s.f, "\r\x1b[K"+text)
	} else {
		pad := ""
		if n := s.last - len(text); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprint(s.f, "\r"+text+pad)
	}
	s.last = len(text)
}

// Clear erases the line, leaving the cursor at its start.
func (s *statusLine) Clear() {
	if s.last == 0 {
		return
	}
	s.Show("")
	if !s.ansi {
		fmt.Fprint(s.f, "\r")
	}
}
