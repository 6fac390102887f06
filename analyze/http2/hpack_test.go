package http2

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

type story struct {
	Cases []struct {
		Seqno   int                 `json:"seqno"`
		Wire    string              `json:"wire"`
		Headers []map[string]string `json:"headers"`
	} `json:"cases"`
}

func loadStories(t *testing.T) map[string]*story {
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "hpack", "nghttp2")
	files, _ := filepath.Glob(filepath.Join(dir, "story_*.json"))
	if len(files) == 0 {
		skipf := t.Skipf
		if os.Getenv("CI") == "true" {
			skipf = t.Fatalf // CI has ../shared beside the checkout: a missing corpus is a broken set-up
		}
		skipf("HPACK corpus absent: no %s/story_*.json (see ../shared/corpus/README.md)", dir)
	}
	out := map[string]*story{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s story
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = &s
	}
	return out
}

// storyWire puts the story's header blocks from case from on into HEADERS
// frames, one stream each, as one client byte stream.
func storyWire(t *testing.T, s *story, from int) []byte {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	for i, c := range s.Cases[from:] {
		b, err := hex.DecodeString(c.Wire)
		if err != nil {
			t.Fatal(err)
		}
		// Blocks over 16 KiB go out in CONTINUATION frames.
		first := true
		for first || len(b) > 0 {
			n := min(len(b), DefaultMaxFrameSize)
			frag := b[:n]
			b = b[n:]
			if first {
				err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: frag, EndStream: true, EndHeaders: len(b) == 0})
				first = false
			} else {
				err = fr.WriteContinuation(uint32(2*i+1), len(b) == 0, frag)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}

type decoded struct {
	fields  []hpack.HeaderField
	unknown int
	lost    bool
}

// decodeStory runs the client byte stream through a Conn and returns each
// stream's request header block.
func decodeStory(t *testing.T, wire []byte, midStream bool) []decoded {
	var out []decoded
	c := NewConn(Options{ClientWire: 0, MidStream: midStream}, func(s *Stream) {
		out = append(out, decoded{append([]hpack.HeaderField(nil), s.Request.Header...), s.Request.UnknownFields, s.Request.HeadersLost})
	})
	if !midStream {
		c.Feed(0, []byte(ClientPreface), bytetime.Times{First: 1, Last: 1})
	}
	c.Feed(0, wire, bytetime.Times{First: 2, Last: 2})
	c.Close(bytetime.Times{First: 3, Last: 3})
	return out
}

func want(h []map[string]string) []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, m := range h {
		for k, v := range m {
			out = append(out, hpack.HeaderField{Name: k, Value: v})
		}
	}
	return out
}

func TestHPACKStories(t *testing.T) {
	stories := loadStories(t)
	var blocks, fields, joinDecoded, joinUnknown, joinLost, joinFields int
	for name, s := range stories {
		got := decodeStory(t, storyWire(t, s, 0), false)
		if len(got) != len(s.Cases) {
			t.Fatalf("%s: %d blocks decoded, want %d", name, len(got), len(s.Cases))
		}
		for i, c := range s.Cases {
			w := want(c.Headers)
			if fieldsString(got[i].fields) != fieldsString(w) || got[i].unknown != 0 || got[i].lost {
				t.Fatalf("%s case %d:\n got %s\nwant %s", name, c.Seqno, fieldsString(got[i].fields), fieldsString(w))
			}
			blocks++
			fields += len(w)
		}
		// Join half-way: the dynamic table is unknown. Fields must be right
		// or left out and counted, never wrong.
		from := len(s.Cases) / 2
		got = decodeStory(t, storyWire(t, s, from), true)
		if len(got) != len(s.Cases)-from {
			t.Fatalf("%s joined at %d: %d blocks, want %d", name, from, len(got), len(s.Cases)-from)
		}
		for i, d := range got {
			w := want(s.Cases[from+i].Headers)
			joinFields += len(w)
			joinDecoded += len(d.fields)
			joinUnknown += d.unknown
			if d.lost {
				joinLost++
			}
			// The decoded fields are the expected ones with the unknown
			// ones removed: a subsequence, in order.
			j := 0
			for _, f := range d.fields {
				for j < len(w) && w[j] != f {
					j++
				}
				if j == len(w) {
					t.Fatalf("%s joined, case %d: field %s=%q is not in the block: %s", name, from+i, f.Name, f.Value, fieldsString(w))
				}
				j++
			}
			if !d.lost && len(d.fields)+d.unknown != len(w) {
				t.Errorf("%s joined, case %d: %d decoded + %d unknown != %d fields", name, from+i, len(d.fields), d.unknown, len(w))
			}
		}
	}
	t.Logf("%d stories, %d header blocks, %d fields: all decoded identically", len(stories), blocks, fields)
	t.Logf("joined half-way: %d fields; %d decoded, %d marked unknown, %d blocks lost", joinFields, joinDecoded, joinUnknown, joinLost)
}

// A mid-connection join: references to entries inserted before the join are
// unknown and the stream desynced; static and literal fields still decode;
// entries inserted after the join decode.
func TestMidStreamHPACK(t *testing.T) {
	c := newConv(t).preface()
	for id := uint32(1); id <= 3; id += 2 {
		c.headers(0, id, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /a", "x-token: secret")
		c.flush(0)
		c.headers(1, id, false, ":status: 200", "server: srv")
		c.data(1, id, true, "ok", 0)
		c.flush(1)
	}
	join := len(c.writes)
	c.headers(0, 5, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /b", "x-new: 1")
	c.flush(0)
	c.headers(1, 5, false, ":status: 404", "server: srv")
	c.data(1, 5, true, "", 0)
	c.flush(1)
	c.headers(0, 7, true, ":method: GET", ":scheme: https", ":authority: example.com", ":path: /b", "x-new: 1")
	c.flush(0)
	c.headers(1, 7, true, ":status: 200")
	c.flush(1)
	got, st := run(Options{ClientWire: 0, MidStream: true}, c.writes[join:], nil)
	check(t, got, []string{
		"5 [:method=GET :scheme=https :path=/b x-new=1] body=0 [:status=404] body=0 trailer=[] unknown=1/1 [desynced]",
		"7 [:method=GET :scheme=https :path=/b x-new=1] body=0 [:status=200] body=0 trailer=[] unknown=1/0 [desynced]",
	})
	if st.UnknownFields != 3 {
		t.Errorf("stats %+v", st)
	}
	// The same join with the client direction to infer.
	got, _ = run(Options{ClientWire: -1, MidStream: true}, c.writes[join:], nil)
	if len(got) != 2 || !strings.HasPrefix(got[0], "5 [:method=GET") {
		t.Errorf("inferred:\n%s", strings.Join(got, "\n"))
	}
}
