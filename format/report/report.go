// Package report renders an [sli.Report] for people and machines: a text
// table for terminals and JSON with a versioned schema (see SCHEMA.md).
// Markdown and HTML are to come; they plug into [Write] the same way.
//
// [Writer] is an [analyze.Sink] that aggregates exchanges with an
// [sli.Aggregator] and writes the report when the replay ends.
package report

import (
	"fmt"
	"io"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
)

// Format names a rendering of the report.
type Format string

// Formats.
const (
	Text Format = "text"
	JSON Format = "json"
)

// Formats lists the formats [Write] supports, for usage messages.
var Formats = []Format{Text, JSON}

// ParseFormat checks a --report value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	switch s {
	case "markdown", "html":
		return "", fmt.Errorf("report format %q is not supported yet (use text or json)", s)
	}
	return "", fmt.Errorf("unknown report format %q (use text or json)", s)
}

// Write renders r to w in format f.
func Write(w io.Writer, f Format, r *sli.Report) error {
	switch f {
	case Text:
		return WriteText(w, r)
	case JSON:
		return WriteJSON(w, r)
	}
	return fmt.Errorf("writing report: unknown format %q", f)
}

// Writer is an [analyze.Sink] that aggregates exchanges and, at End,
// writes the report to its io.Writer. It does not close the io.Writer.
type Writer struct {
	*sli.Aggregator
	w      io.Writer
	format Format
}

// NewWriter returns a Writer rendering in format f with the aggregation
// options opts.
func NewWriter(w io.Writer, f Format, opts sli.Options) *Writer {
	return &Writer{Aggregator: sli.New(opts), w: w, format: f}
}

// End implements [analyze.Sink]: it completes the aggregation and writes the
// report.
func (w *Writer) End(sum *analyze.Summary) error {
	if err := w.Aggregator.End(sum); err != nil {
		return err
	}
	return Write(w.w, w.format, w.Report())
}
