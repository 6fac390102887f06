package har

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture/container"
	"github.com/rewind-tools/rewind/format/internal/fixture"
	"github.com/rewind-tools/rewind/internal/golden"
)

func write(t testing.TB, opts Options, exs []*analyze.Exchange) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := New(&buf, opts)
	fixture.Drive(t, w, exs)
	return buf.Bytes()
}

var testOpts = Options{Version: "test"}

func TestGolden(t *testing.T) {
	got := write(t, testOpts, fixture.Exchanges())
	golden.Check(t, "testdata/fixture.har", got)
	if again := write(t, testOpts, fixture.Exchanges()); !bytes.Equal(got, again) {
		t.Error("two runs over the same input differ")
	}
}

// schema compiles the HAR 1.2 JSON schema from the har-schema package's
// files in testdata, with format assertions (date-time, uri, ipv4/ipv6) on.
func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	const base = "https://har-schema.test/"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := filepath.Glob("testdata/har-schema/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files: %v", err)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource(base+filepath.Base(f), doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile(base + "har.json")
	if err != nil {
		t.Fatalf("compiling HAR schema: %v", err)
	}
	return s
}

func TestSchema(t *testing.T) {
	s := schema(t)
	cases := map[string][]byte{
		"fixture":   write(t, testOpts, fixture.Exchanges()),
		"no bodies": write(t, Options{MaxBodyBytes: -1}, fixture.Exchanges()),
		"small cap": write(t, Options{MaxBodyBytes: 5}, fixture.Exchanges()),
		"empty":     write(t, testOpts, nil),
	}
	// The archives analyze wrote for the captures recorded from real
	// programs (testdata/golden/*/har.json, rewritten by the cmd/rewind
	// golden test).
	recorded, _ := filepath.Glob("../../testdata/golden/*/har.json")
	if len(recorded) == 0 {
		t.Error("no recorded-capture HAR files under testdata/golden")
	}
	for _, f := range recorded {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[f] = doc
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
			if err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if err := s.Validate(inst); err != nil {
				t.Fatalf("HAR does not validate: %v", err)
			}
			checkSpec(t, doc)
		})
	}
	// The validator must catch a broken archive.
	bad := bytes.Replace(cases["fixture"], []byte(`"startedDateTime":"2024-05-01T14:00:00.000+02:00"`), []byte(`"startedDateTime":"yesterday"`), 1)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(bad))
	if s.Validate(inst) == nil {
		t.Error("schema accepted a bad startedDateTime")
	}
}

// checkSpec checks what the HAR 1.2 text requires beyond the schema (its
// "min" keywords are not JSON Schema and so not enforced by it).
func checkSpec(t *testing.T, doc []byte) {
	t.Helper()
	var h struct {
		Log struct {
			Pages   []any `json:"pages"`
			Entries []struct {
				Started string             `json:"startedDateTime"`
				Time    float64            `json:"time"`
				Timings map[string]float64 `json:"timings"`
				Cache   map[string]any     `json:"cache"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(doc, &h); err != nil {
		t.Fatal(err)
	}
	if h.Log.Pages == nil || len(h.Log.Pages) != 0 {
		t.Error("pages is not []")
	}
	for i, e := range h.Log.Entries {
		if _, err := time.Parse(time.RFC3339, e.Started); err != nil {
			t.Errorf("entry %d: startedDateTime %q: %v", i, e.Started, err)
		}
		if e.Cache == nil {
			t.Errorf("entry %d: no cache", i)
		}
		sum := 0.0
		for _, k := range []string{"send", "wait", "receive"} {
			v, ok := e.Timings[k]
			if !ok || v < 0 {
				t.Errorf("entry %d: timings.%s = %v", i, k, v)
			}
			sum += v
		}
		for _, k := range []string{"blocked", "dns", "connect", "ssl"} {
			if e.Timings[k] != -1 {
				t.Errorf("entry %d: timings.%s = %v, want -1", i, k, e.Timings[k])
			}
		}
		if d := e.Time - sum; d > 0.002 || d < -0.002 {
			t.Errorf("entry %d: time %v is not the sum of timings %v", i, e.Time, sum)
		}
	}
}

type entry struct {
	Request struct {
		URL         string `json:"url"`
		HTTPVersion string `json:"httpVersion"`
		Cookies     []struct {
			Name, Value string
		} `json:"cookies"`
		QueryString []struct{ Name, Value string } `json:"queryString"`
		PostData    *struct {
			MimeType string `json:"mimeType"`
			Text     string `json:"text"`
			Encoding string `json:"_encoding"`
		} `json:"postData"`
	} `json:"request"`
	Response struct {
		Status  int `json:"status"`
		Cookies []struct {
			Name     string `json:"name"`
			Expires  string `json:"expires"`
			HTTPOnly bool   `json:"httpOnly"`
		} `json:"cookies"`
		Content struct {
			Size      int64  `json:"size"`
			Text      string `json:"text"`
			Encoding  string `json:"encoding"`
			Truncated bool   `json:"_truncated"`
		} `json:"content"`
		BodySize    int64 `json:"bodySize"`
		HeadersSize int64 `json:"headersSize"`
	} `json:"response"`
	ServerIP   string   `json:"serverIPAddress"`
	Connection string   `json:"connection"`
	PID        int      `json:"_pid"`
	Comm       string   `json:"_comm"`
	Conn       string   `json:"_connection"`
	Role       string   `json:"_role"`
	TLS        string   `json:"_tls"`
	Flags      []string `json:"_flags"`
}

func entries(t *testing.T, doc []byte) []entry {
	t.Helper()
	var h struct {
		Log struct{ Entries []entry } `json:"log"`
	}
	if err := json.Unmarshal(doc, &h); err != nil {
		t.Fatal(err)
	}
	return h.Log.Entries
}

func TestEntries(t *testing.T) {
	es := entries(t, write(t, testOpts, fixture.Exchanges()))
	if len(es) != 9 {
		t.Fatalf("%d entries", len(es))
	}
	html := es[0]
	if !strings.Contains(html.Response.Content.Text, "Héllo, wörld") || html.Response.Content.Encoding != "" {
		t.Errorf("gzip body not decoded to text: %+v", html.Response.Content)
	}
	if html.Response.Content.Size != 112 || html.Response.BodySize != int64(len(fixture.Gzipped)) {
		t.Errorf("sizes: content %d body %d", html.Response.Content.Size, html.Response.BodySize)
	}
	if c := html.Response.Cookies; len(c) != 1 || c[0].Name != "sid" || c[0].Expires != "2024-05-01T13:00:00.000Z" || !c[0].HTTPOnly {
		t.Errorf("set-cookie: %+v", c)
	}
	if html.ServerIP != "10.0.0.5" || html.Connection != "51234" || html.PID != 812 || html.Comm != "nginx" || html.Conn != "c1" || html.Role != "server" || html.TLS != "none" {
		t.Errorf("addresses and custom fields: %+v", html)
	}
	if html.Request.URL != "http://shop.example/index.html" {
		t.Errorf("url %s", html.Request.URL)
	}

	post := es[1]
	if post.Request.URL != "https://shop.example/api/users?dry_run=1&tag=a%20b" || post.ServerIP != "2001:db8::5" {
		t.Errorf("url %s, server %s", post.Request.URL, post.ServerIP)
	}
	if q := post.Request.QueryString; len(q) != 2 || q[1].Name != "tag" || q[1].Value != "a b" {
		t.Errorf("query %+v", q)
	}
	if p := post.Request.PostData; p == nil || p.MimeType != "application/json" || p.Text != `{"name":"Ada","email":"ada@example.com"}` {
		t.Errorf("postData %+v", p)
	}
	if c := post.Request.Cookies; len(c) != 2 || c[1].Name != "theme" || c[1].Value != "dark" {
		t.Errorf("cookies %+v", c)
	}

	if got := es[2].Response.Content.Text; got != "Pas trouvé\n" {
		t.Errorf("latin-1 text %q", got)
	}
	if r := es[4].Response; r.Status != 0 || r.BodySize != -1 || r.HeadersSize != -1 {
		t.Errorf("no response: %+v", r)
	}
	if h2 := es[5]; h2.Request.HTTPVersion != "HTTP/2" || h2.Role != "client" || h2.ServerIP != "93.184.216.34" || h2.Connection != "51300" {
		t.Errorf("h2: %+v", h2)
	}
	png := es[6].Response.Content
	raw, err := base64.StdEncoding.DecodeString(png.Text)
	if png.Encoding != "base64" || err != nil || !bytes.Equal(raw, fixture.PNG) || !png.Truncated || png.Size != 48213 {
		t.Errorf("binary body: %+v", png)
	}
	if p := es[7].Request.PostData; p == nil || p.Encoding != "base64" {
		t.Errorf("gRPC request body: %+v", p)
	}
	if es[8].Request.URL != "http://192.168.1.2:80/style.css" {
		t.Errorf("pcap url %s", es[8].Request.URL)
	}
}

func TestBodyCap(t *testing.T) {
	es := entries(t, write(t, Options{MaxBodyBytes: 5}, fixture.Exchanges()))
	c := es[0].Response.Content
	if c.Text != "<!doc" || !c.Truncated {
		t.Errorf("capped gzip body: %+v", c)
	}
	// A cut inside "é" (two bytes in UTF-8) drops the partial rune.
	ex := fixture.Small()
	ex.Response.Body = []byte("abcdé")
	ex.Response.BodyBytes = 6
	es = entries(t, write(t, Options{MaxBodyBytes: 5}, []*analyze.Exchange{ex}))
	if c := es[0].Response.Content; c.Text != "abcd" || !c.Truncated {
		t.Errorf("cut rune: %+v", c)
	}
}

func BenchmarkWriter(b *testing.B) {
	w := New(io.Discard, testOpts)
	_ = w.Begin(fixture.Info())
	ex := fixture.Small()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Exchange(ex)
	}
}

func BenchmarkWriterGzip(b *testing.B) {
	w := New(io.Discard, testOpts)
	_ = w.Begin(fixture.Info())
	ex := fixture.Exchanges()[0]
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Exchange(ex)
	}
}

// TestContainer checks that an entry says which container and pod spoke,
// as JSON lines do, and that host processes' entries say nothing of it.
func TestContainer(t *testing.T) {
	exs := fixture.Exchanges()
	ex := *exs[0]
	c := *ex.Conn
	c.Container = container.Info{Runtime: "containerd", ID: strings.Repeat("3f", 32), PodUID: "6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162", QoS: "burstable",
		Pod: "web-7d9f8b-x2x4q", Namespace: "shop", Hostname: "web-7d9f8b-x2x4q", Name: "app"}
	c.NetNS = 4026532173
	ex.Conn = &c
	out := write(t, testOpts, []*analyze.Exchange{&ex, exs[1]})
	var log struct {
		Log struct {
			Entries []map[string]json.RawMessage `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatal(err)
	}
	es := log.Log.Entries
	if len(es) != 2 {
		t.Fatalf("%d entries", len(es))
	}
	want := `{"runtime":"containerd","id":"` + strings.Repeat("3f", 32) + `","pod_uid":"6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162","qos":"burstable",` +
		`"pod":"web-7d9f8b-x2x4q","namespace":"shop","hostname":"web-7d9f8b-x2x4q","name":"app"}`
	if got := string(es[0]["_container"]); got != want {
		t.Errorf("_container = %s, want %s", got, want)
	}
	if got, ok := es[1]["_container"]; ok {
		t.Errorf("a host process's entry has _container %s", got)
	}
	if got := string(es[0]["_netns"]); got != "4026532173" {
		t.Errorf("_netns = %s", got)
	}
	if got, ok := es[1]["_netns"]; ok {
		t.Errorf("an entry whose capture names no namespace has _netns %s", got)
	}
}
