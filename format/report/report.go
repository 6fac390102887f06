// Package report renders an [sli.Report] for people and machines: a text
// table for terminals, JSON with a versioned schema (see SCHEMA.md),
// Markdown for tickets and a self-contained HTML page with charts; and an
// [sli.Diff] of two captures as text or JSON.
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
	Text     Format = "text"
	JSON     Format = "json"
	Markdown Format = "markdown"
	HTML     Format = "html"
)

// Formats lists the formats [Write] supports, for usage messages.
var Formats = []Format{Text, JSON, Markdown, HTML}

// ParseFormat checks a --report value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	if s == "md" {
		return Markdown, nil
	}
	return "", fmt.Errorf("unknown report format %q (use text, json, markdown or html)", s)
}

// Write renders r to w in format f with default options.
func Write(w io.Writer, f Format, r *sli.Report) error {
	return WriteWith(w, f, r, RenderOptions{})
}

// WriteWith renders r to w in format f.
func WriteWith(w io.Writer, f Format, r *sli.Report, opts RenderOptions) error {
	switch f {
	case Text:
		return writeText(w, r, opts)
	case JSON:
		return WriteJSON(w, r)
	case Markdown:
		return WriteMarkdown(w, r)
	case HTML:
		return WriteHTML(w, r)
	}
	return fmt.Errorf("writing report: unknown format %q", f)
}

// Writer is an [analyze.Sink] that aggregates exchanges and, at End,
// writes the report to its io.Writer. It does not close the io.Writer.
type Writer struct {
	*sli.Aggregator
	// Render tunes the rendering; set it before End.
	Render RenderOptions
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
	return WriteWith(w.w, w.format, w.Report(), w.Render)
}
