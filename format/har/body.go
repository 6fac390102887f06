package har

import (
	"cmp"
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/content"
	"github.com/rewind-tools/rewind/format/internal/jsonenc"
)

// body is a message body prepared for the archive.
type body struct {
	data      []byte // decoded, charset-converted, capped
	base64    bool
	size      int64 // content.size: the decoded length when known
	decoded   bool  // a content coding was removed
	truncated bool  // bytes are missing from data
	note      string
}

func (w *Writer) prepare(m *analyze.Message) body {
	var bd body
	limit := w.opts.MaxBodyBytes
	bd.size = max(m.BodyBytes, 0) // content.size has no "unknown"; bodySize says -1
	bd.truncated = m.BodyTruncated || int64(len(m.Body)) < m.BodyBytes
	raw := m.Body
	if limit < 0 || len(raw) == 0 {
		return bd
	}

	data := raw
	if ce := m.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(strings.TrimSpace(ce), "identity") {
		dec, err := content.Decode(ce, raw, limit)
		switch {
		case err == nil:
			data, bd.decoded = dec, true
			if !bd.truncated {
				bd.size = int64(len(dec))
			}
		case errors.Is(err, content.ErrLimit):
			data, bd.decoded, bd.truncated = dec, true, true
		case len(dec) > 0 && !errors.Is(err, content.ErrUnsupported):
			// A cut-off body still decodes its beginning.
			data, bd.decoded, bd.truncated = dec, true, true
			bd.note = "content decoded in part: " + err.Error()
		default:
			// Keep the encoded bytes, which are binary.
			bd.note = "content-encoding not decoded: " + err.Error()
			bd.base64 = true
		}
	}
	if len(data) > limit {
		data, bd.truncated = data[:limit], true
	}
	if bd.truncated && bd.decoded {
		bd.size = int64(len(data)) // the decoded size is unknown; this much is known
	}

	if !bd.base64 {
		if text, ok := asText(m.Header.Get("Content-Type"), data, bd.truncated); ok {
			data = text
		} else {
			bd.base64 = true
		}
	}
	bd.data = data
	if bd.truncated && bd.note == "" {
		bd.note = "body truncated"
	}
	return bd
}

// asText returns data as UTF-8 text when the media type says it is text
// (or, without a type, when it looks like UTF-8 text), converting from its
// charset; ok is false for binary data.
func asText(contentType string, data []byte, truncated bool) (text []byte, ok bool) {
	if truncated {
		// A cut may split a UTF-8 sequence: drop the partial rune.
		i := len(data) - 1
		for i > 0 && i > len(data)-utf8.UTFMax && !utf8.RuneStart(data[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(data[i:]) {
			data = data[:i]
		}
	}
	if contentType == "" {
		return data, utf8.Valid(data) && !hasControl(data)
	}
	mt, cs := mediaType(contentType)
	if !isTextType(mt) {
		return nil, false
	}
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return data, utf8.Valid(data)
	}
	enc, err := htmlindex.Get(cs)
	if err != nil {
		return data, utf8.Valid(data)
	}
	out, err := enc.NewDecoder().Bytes(data)
	if err != nil {
		return nil, false
	}
	return out, true
}

// mediaType returns a Content-Type's media type and charset parameter in
// lower case. It is lenient where mime.ParseMediaType is strict, and does not
// allocate for the usual lower-case values.
func mediaType(contentType string) (mt, charset string) {
	mt, params, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			charset = strings.ToLower(strings.Trim(strings.TrimSpace(v), `"`))
		}
	}
	return mt, charset
}

func isTextType(mt string) bool {
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	typ, sub, _ := strings.Cut(mt, "/")
	if typ != "application" && typ != "image" {
		return false
	}
	if strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml") || strings.HasSuffix(sub, "+yaml") {
		return true
	}
	switch sub {
	case "json", "xml", "javascript", "ecmascript", "x-javascript", "x-www-form-urlencoded",
		"graphql", "yaml", "x-yaml", "x-ndjson", "ndjson", "jsonl", "csv", "sql", "x-sh":
		return typ == "application"
	}
	return false
}

func hasControl(p []byte) bool {
	for _, c := range p {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7f {
			return true
		}
	}
	return false
}

// appendContent writes a response's content fields (inside its braces).
func (w *Writer) appendContent(b []byte, resp *analyze.Response) []byte {
	bd := w.prepare(&resp.Message)
	b = append(b, `"size":`...)
	b = jsonenc.Int(b, bd.size)
	if bd.decoded && !bd.truncated && resp.BodyBytes >= 0 && bd.size > resp.BodyBytes {
		b = append(b, `,"compression":`...)
		b = jsonenc.Int(b, bd.size-resp.BodyBytes)
	}
	b = append(b, `,"mimeType":`...)
	b = jsonenc.String(b, cmp.Or(resp.Header.Get("Content-Type"), "x-unknown"))
	return appendBodyText(b, &bd, `"encoding":"base64"`)
}

// appendBody writes a request's postData text (after its mimeType). HAR has
// no encoding field for postData; binary data is base64 with a custom
// "_encoding" saying so.
func (w *Writer) appendBody(b []byte, m *analyze.Message) []byte {
	bd := w.prepare(m)
	return appendBodyText(b, &bd, `"_encoding":"base64"`)
}

func appendBodyText(b []byte, bd *body, encodingField string) []byte {
	if bd.data != nil {
		b = append(b, `,"text":`...)
		if bd.base64 {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, bd.data)
			b = append(b, `",`...)
			b = append(b, encodingField...)
		} else {
			b = jsonenc.Bytes(b, bd.data)
		}
	}
	if bd.truncated {
		b = append(b, `,"_truncated":true`...)
	}
	if bd.note != "" {
		b = append(b, `,"comment":`...)
		b = jsonenc.String(b, bd.note)
	}
	return b
}
