package http1

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDir is the llhttp corpus, relative to this package directory.
const corpusDir = "../../../shared/corpus/llhttp"

// llCase is one case of the llhttp markdown corpus.
type llCase struct {
	file, name string
	typ        string // "request", "response", "request-lenient-…", …
	meta       map[string]any
	input      []byte
	msgs       []llMsg
	err        string // first error reason, "" when accepted
	upgrade    bool   // llhttp paused on an upgrade
}

// llMsg is what llhttp reported for one message.
type llMsg struct {
	method, url, version, status string
	headers, trailers            []string
	body                         []byte
	headersDone, complete        bool
	errored                      bool
}

// deliberateDiffs lists accepted llhttp cases where this parser knowingly
// differs, with the reason. Keys are "file: case name".
var deliberateDiffs = map[string]string{
	"request/invalid.md: HTTP protocol and ANNOUNCE method": "any token is a method (RFC 9110 §9.1); llhttp knows a fixed list per protocol",
	"request/invalid.md: Invalid method":                    "MKCOLA is a valid token, so a valid extension method for an observer",
	"request/method.md: SOURCE request with ICE":            "ICE/1.0 is not HTTP: flagged as an invalid HTTP version",
	"request/method.md: OPTIONS request with RTSP":          "RTSP/1.0 is not HTTP: flagged as an invalid HTTP version",
	"request/method.md: ANNOUNCE request with RTSP":         "RTSP/1.0 is not HTTP: flagged as an invalid HTTP version",
	"request/method.md: PRI request HTTP2":                  "the PRI * preface is reported as an Upgrade message (then tunnel); llhttp pauses before its headers complete",
	"response/sample.md: RTSP response":                     "RTSP is not HTTP: flagged as an invalid HTTP version",
	"response/sample.md: ICE response":                      "ICE is not HTTP: flagged as an invalid HTTP version",
}

func TestLLHTTPCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.md"))
	if len(files) == 0 {
		skipf := t.Skipf
		if os.Getenv("CI") == "true" {
			skipf = t.Fatalf // CI has ../shared beside the checkout: a missing corpus is a broken set-up
		}
		skipf("llhttp corpus not found at %s (it lives in ../shared/corpus of the project root)", corpusDir)
	}
	type tally struct{ cases, agreed, differ, deliberate, rejected, rejectedOK, lenient int }
	tallies := map[string]*tally{"request": {}, "response": {}}
	for _, f := range files {
		cases, err := readLLCases(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			kind, base := Request, "request"
			if strings.HasPrefix(c.typ, "response") {
				kind, base = Response, "response"
			}
			tl := tallies[base]
			tl.cases++
			// Every case, lenient or not, split anywhere: no panic, no hang.
			for _, k := range []int{1, 2, 3, 7} {
				collect(kind, DefaultOptions(), splitEvery(c.input, k), true)
			}
			got := runLL(kind, c)
			key := filepath.Base(filepath.Dir(c.file)) + "/" + filepath.Base(c.file) + ": " + c.name
			strict := c.typ == base || c.typ == base+"-finish"
			if !strict || c.meta["skipBody"] == true {
				tl.lenient++
				continue
			}
			if c.err != "" {
				tl.rejected++
				if problem := checkRejected(c, got); problem != "" {
					if r, ok := deliberateDiffs[key]; ok {
						tl.deliberate++
						t.Logf("deliberate difference: %s: %s (%s)", key, r, problem)
						continue
					}
					t.Errorf("%s: llhttp rejects (%s) but %s\n  got: %v", key, c.err, problem, got)
				} else {
					tl.rejectedOK++
				}
				continue
			}
			problem := checkAccepted(c, got)
			if problem == "" {
				tl.agreed++
				if r, ok := deliberateDiffs[key]; ok {
					t.Errorf("%s: listed as deliberate difference (%s) but agrees now", key, r)
				}
				continue
			}
			if r, ok := deliberateDiffs[key]; ok {
				tl.deliberate++
				t.Logf("deliberate difference: %s: %s (%s)", key, r, problem)
				continue
			}
			tl.differ++
			t.Errorf("%s: %s\n  input: %q\n  llhttp: %+v\n  got: %v", key, problem, c.input, c.msgs, got)
		}
	}
	for _, k := range []string{"request", "response"} {
		tl := tallies[k]
		t.Logf("%s: %d cases; strict accepted: %d agree, %d deliberately differ, %d differ; strict rejected: %d/%d flagged or dropped; lenient/skipBody not compared: %d",
			k, tl.cases, tl.agreed, tl.deliberate, tl.differ, tl.rejectedOK, tl.rejected, tl.lenient)
	}
}

// runLL parses a case's input in one chunk and returns the final emission of
// every message (Complete, or HeadersComplete for one still open).
func runLL(kind Kind, c llCase) []snap {
	out, _ := collect(kind, DefaultOptions(), [][]byte{c.input}, false)
	var msgs []snap
	for i, s := range out {
		if s.State == HeadersComplete && i+1 < len(out) && out[i+1].State == Complete {
			continue
		}
		msgs = append(msgs, s)
	}
	return msgs
}

func llVersion(s snap) string { return fmt.Sprintf("%d.%d", s.Major, s.Minor) }

// checkAccepted compares the messages of a case llhttp accepts.
func checkAccepted(c llCase, got []snap) string {
	var want []llMsg
	for _, m := range c.msgs {
		if m.headersDone {
			want = append(want, m)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d messages, llhttp %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Error {
			return fmt.Sprintf("message %d flagged %q", i, g.Err)
		}
		if w.method != "" && g.Method != w.method {
			return fmt.Sprintf("message %d method %q, llhttp %q", i, g.Method, w.method)
		}
		if w.url != g.Target {
			return fmt.Sprintf("message %d target %q, llhttp %q", i, g.Target, w.url)
		}
		if w.version != llVersion(g) {
			return fmt.Sprintf("message %d version %s, llhttp %s", i, llVersion(g), w.version)
		}
		if w.status != "" && strconv.Itoa(g.Status) != w.status {
			return fmt.Sprintf("message %d status %d, llhttp %s", i, g.Status, w.status)
		}
		for k := range g.Headers {
			g.Headers[k] = normText(g.Headers[k])
		}
		g.Target = normText(g.Target)
		if !slices.Equal(g.Headers, w.headers) {
			return fmt.Sprintf("message %d headers %q, llhttp %q", i, g.Headers, w.headers)
		}
		if w.complete && !slices.Equal(g.Trailers, w.trailers) {
			return fmt.Sprintf("message %d trailers %q, llhttp %q", i, g.Trailers, w.trailers)
		}
		if w.complete && g.State != Complete {
			return fmt.Sprintf("message %d not complete", i)
		}
		if w.complete && g.Body != string(w.body) {
			return fmt.Sprintf("message %d body %q, llhttp %q", i, g.Body, w.body)
		}
		if !w.complete && g.State == Complete && !g.Upgrade && !c.upgrade {
			return fmt.Sprintf("message %d complete, llhttp: not", i)
		}
	}
	return ""
}

// checkRejected checks a case llhttp rejects: messages before the one in
// error agree, and the one in error is flagged, incomplete or absent.
func checkRejected(c llCase, got []snap) string {
	bad := -1
	n := 0
	for _, m := range c.msgs {
		if m.errored {
			bad = n
			break
		}
		if m.headersDone {
			n++
		}
	}
	if bad < 0 {
		return ""
	}
	if len(got) <= bad {
		return ""
	}
	g := got[bad]
	if g.Error || g.Incomplete || g.State != Complete {
		return ""
	}
	return fmt.Sprintf("message %d is clean", bad)
}

var (
	metaRe = regexp.MustCompile(`<!--\s*meta=(\{.*\})\s*-->`)
	spanRe = regexp.MustCompile(`^off=\d+ len=(\d+) span\[(\w+)\]=(.*)$`)
)

// readLLCases reads the cases of one corpus file.
func readLLCases(file string) ([]llCase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		cases []llCase
		cur   *llCase
		name  string
		block string
		lines []string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if block != "" {
			if l == "```" {
				if block == "http" && cur != nil {
					cur.input = decodeHTTPBlock(lines)
				} else if block == "log" && cur != nil {
					parseLLLog(cur, lines)
					cases = append(cases, *cur)
					cur = nil
				}
				block, lines = "", nil
				continue
			}
			lines = append(lines, l)
			continue
		}
		switch {
		case strings.HasPrefix(l, "#"):
			name = strings.TrimSpace(strings.TrimLeft(l, "#"))
		case metaRe.MatchString(l):
			var meta map[string]any
			if err := json.Unmarshal([]byte(metaRe.FindStringSubmatch(l)[1]), &meta); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, name, err)
			}
			typ, _ := meta["type"].(string)
			cur = &llCase{file: file, name: name, typ: typ, meta: meta}
		case l == "```http" || l == "```log":
			block = strings.TrimPrefix(l, "```")
		}
	}
	return cases, sc.Err()
}

// decodeHTTPBlock turns the lines of an http block into raw bytes: lines end
// in CRLF except the last, a trailing backslash joins lines, and C escapes
// are decoded.
func decodeHTTPBlock(lines []string) []byte {
	var raw strings.Builder
	for i, l := range lines {
		if strings.HasSuffix(l, `\`) && !strings.HasSuffix(l, `\\`) {
			raw.WriteString(l[:len(l)-1])
			continue
		}
		raw.WriteString(l)
		if i < len(lines)-1 {
			raw.WriteString(`\r\n`)
		}
	}
	return unescapeC(raw.String())
}

// unescapeC decodes the escapes of the corpus: \r \n \t \f \v, \xHH and
// octal \ooo; any other backslash is literal (as in llhttp's test harness).
func unescapeC(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		switch e := s[i+1]; {
		case e == 'r':
			out = append(out, '\r')
		case e == 'n':
			out = append(out, '\n')
		case e == 't':
			out = append(out, '\t')
		case e == 'f':
			out = append(out, '\f')
		case e == 'v':
			out = append(out, '\v')
		case e == 'x' && i+3 < len(s) && isHex(s[i+2]) && isHex(s[i+3]):
			v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
			out = append(out, byte(v))
			i += 2
		case '0' <= e && e <= '7':
			j := i + 1
			v := 0
			for j < len(s) && j < i+4 && '0' <= s[j] && s[j] <= '7' {
				v = v*8 + int(s[j]-'0')
				j++
			}
			out = append(out, byte(v))
			i = j - 2
		default:
			out = append(out, c)
			continue
		}
		i++
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseLLLog reads llhttp's events into messages.
func parseLLLog(c *llCase, lines []string) {
	var m *llMsg
	var name []byte
	var values [][]byte
	flush := func() {
		if m != nil && name != nil {
			// llhttp gives a folded value as several spans, and keeps
			// trailing whitespace; join and trim as RFC 9112 says.
			var parts []string
			for _, v := range values {
				if p := strings.Trim(string(v), " \t"); p != "" {
					parts = append(parts, p)
				}
			}
			f := string(name) + ": " + strings.Join(parts, " ")
			if m.headersDone {
				m.trailers = append(m.trailers, f)
			} else {
				m.headers = append(m.headers, f)
			}
		}
		name, values = nil, nil
	}
	lastField := false
	for _, l := range lines {
		rest := l[strings.IndexByte(l, ' ')+1:]
		switch {
		case rest == "message begin":
			flush()
			c.msgs = append(c.msgs, llMsg{})
			m = &c.msgs[len(c.msgs)-1]
			lastField = false
		case strings.HasPrefix(rest, "headers complete"):
			flush()
			m.headersDone = true
			if i := strings.Index(rest, " v="); i >= 0 {
				v := strings.Fields(rest[i+3:])[0]
				m.version = strings.Replace(v, "/", ".", 1)
			}
		case rest == "message complete":
			flush()
			m.complete = true
		case strings.HasPrefix(rest, "error "):
			reason := rest[strings.Index(rest, "reason=")+7:]
			reason = strings.Trim(reason, `"`)
			if strings.HasPrefix(reason, "Pause on") {
				c.upgrade = true
				continue
			}
			if c.err == "" {
				c.err = reason
				if m != nil && m.complete {
					// The error is in the bytes after a complete message.
					c.msgs = append(c.msgs, llMsg{})
					m = &c.msgs[len(c.msgs)-1]
				}
				if m != nil {
					m.errored = true
				}
			}
		default:
			sm := spanRe.FindStringSubmatch(l)
			if sm == nil || m == nil {
				continue
			}
			n, _ := strconv.Atoi(sm[1])
			v := spanValue(sm[3], n)
			switch sm[2] {
			case "method":
				m.method += string(v)
			case "url":
				m.url += string(v)
			case "status":
				// The code is in the status= of headers complete.
			case "version":
				m.version += string(v)
			case "header_field":
				if !lastField {
					flush()
				}
				name = append(name, v...)
				lastField = true
			case "header_value":
				if name == nil {
					name = []byte{}
				}
				values = append(values, v)
				lastField = false
			case "body":
				m.body = append(m.body, v...)
			}
		}
		if strings.HasPrefix(rest, "headers complete status=") {
			m.status = strings.TrimPrefix(strings.Fields(rest)[2], "status=")
		}
	}
}

// spanValue decodes a span value of n bytes: "quoted" (escaped, or raw, or
// Latin-1 shown as UTF-8), or the names cr, lf, crlf.
func spanValue(s string, n int) []byte {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		q := s[1 : len(s)-1]
		// llhttp prints span bytes as Latin-1 characters.
		_ = n
		return unescapeC(q)
	}
	switch s {
	case "cr":
		return []byte("\r")
	case "lf":
		return []byte("\n")
	case "crlf":
		return []byte("\r\n")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return unescapeC(s[1 : len(s)-1])
	}
	return []byte(s)
}

// splitEvery cuts b into pieces of n bytes.
func splitEvery(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// normText shows bytes that are not UTF-8 as Latin-1, as llhttp's log does.
func normText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}
