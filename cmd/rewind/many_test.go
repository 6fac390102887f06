package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/rewind-tools/rewind/capture"
)

// openCapture opens the capture at path for reading its events; the test's
// end closes it.
func openCapture(t *testing.T, path string) *capture.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := capture.NewReader(f)
	if err != nil {
		f.Close()
		t.Fatalf("reading %s: %v", path, err)
	}
	t.Cleanup(func() {
		rd.Close()
		f.Close()
	})
	return rd
}

// rehost copies the capture src to dst as if recorded on host with a clock
// mapping of its own: wall-clock time later by wallShift ns, monotonic
// time counted from elsewhere (monoBase, which the events keep: only the
// mapping tells wall time). The same real traffic, from another node.
func rehost(t *testing.T, src, dst, host string, monoBase uint64, wallShift int64) {
	t.Helper()
	rd := openCapture(t, src)
	h := rd.Header()
	h.Host = host
	h.Clock.MonoNS += monoBase
	h.Clock.WallUnixNS += int64(monoBase) + wallShift
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := capture.NewWriter(out, h, capture.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rd.InSnapshot() {
			err = w.WriteSnapshot(ev)
		} else {
			err = w.Write(ev)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// manyRun runs the built rewind with GOMAXPROCS procs.
func manyRun(t *testing.T, bin, procs string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), errOut.String()
	}
	t.Fatalf("running rewind %v: %v", args, err)
	return 0, ""
}

type manyReport struct {
	Capture struct {
		Exchanges int `json:"exchanges"`
	} `json:"capture"`
	Inputs []struct {
		Path string `json:"path"`
		Host string `json:"host"`
	} `json:"inputs"`
	Services []struct {
		Name  string   `json:"name"`
		Role  string   `json:"role"`
		Comm  string   `json:"comm"`
		Host  string   `json:"host"`
		Fleet bool     `json:"fleet"`
		Hosts []string `json:"hosts"`
		Count int      `json:"count"`
		Lat   struct {
			Total *struct {
				P50 int64 `json:"p50_ns"`
				P99 int64 `json:"p99_ns"`
			} `json:"total"`
		} `json:"latency"`
	} `json:"services"`
}

// TestAnalyzeMany analyzes the same real traffic "recorded" on three
// nodes (testdata/sample.rwd under three hosts and clocks) as one fleet:
// each service per host equals the single analysis, the fleet row sums
// them with percentiles from the merged sketches, every per-exchange
// output holds all three inputs, and the outputs are the same bytes
// whatever the order of the arguments and the number of processors (#21).
func TestAnalyzeMany(t *testing.T) {
	bin := buildRewind(t)
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet")
	if err := os.MkdirAll(filepath.Join(fleet, "zone-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("..", "..", "testdata", "sample.rwd")
	names := []string{filepath.Join(fleet, "node-a.rwd"), filepath.Join(fleet, "zone-2", "node-b.rwd"), filepath.Join(fleet, "node-c.rwd")}
	rehost(t, src, names[0], "node-a", 0, 0)
	rehost(t, src, names[1], "node-b", 5e12, 2e9)
	rehost(t, src, names[2], "node-c", 1e15, -3e9)
	if err := os.WriteFile(filepath.Join(fleet, "NOTES.txt"), []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}

	single := filepath.Join(dir, "single.json")
	if code, stderr := manyRun(t, bin, "2", "analyze", "-q", src, "--report", "json", "-o", single); code != 0 {
		t.Fatalf("single analysis: exit %d: %s", code, stderr)
	}
	var one manyReport
	readJSON(t, single, &one)

	out := func(run, name string) string { return filepath.Join(dir, run+"-"+name) }
	args := func(run string, inputs ...string) []string {
		return append([]string{"analyze", "--report", "json", "-o", out(run, "report.json"),
			"--exchanges", out(run, "ex.jsonl"), "--pcapng", out(run, "x.pcapng"), "--parquet", out(run, "x.parquet")}, inputs...)
	}
	code, stderr := manyRun(t, bin, "2", args("dir", fleet)...)
	if code != 0 {
		t.Fatalf("analyze %s: exit %d: %s", fleet, code, stderr)
	}
	if !strings.Contains(stderr, "NOTES.txt not analyzed: not named as a capture") {
		t.Errorf("the file of the directory left out is not told: %q", stderr)
	}
	// The same inputs named one by one, backwards, on one processor.
	if code, stderr := manyRun(t, bin, "1", args("rev", names[2], names[1], names[0])...); code != 0 {
		t.Fatalf("analyze reversed: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"report.json", "ex.jsonl", "x.pcapng", "x.parquet"} {
		a, b := readAll(t, out("dir", f)), readAll(t, out("rev", f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs with the arguments reversed and GOMAXPROCS=1 (%d and %d bytes)", f, len(a), len(b))
		}
	}

	var r manyReport
	readJSON(t, out("dir", "report.json"), &r)
	if r.Capture.Exchanges != 3*one.Capture.Exchanges || len(r.Inputs) != 3 || r.Inputs[0].Host != "node-a" || r.Inputs[1].Host != "node-c" || r.Inputs[2].Host != "node-b" {
		t.Fatalf("fleet report: %d exchanges (want 3×%d), inputs %+v", r.Capture.Exchanges, one.Capture.Exchanges, r.Inputs)
	}
	fleetPct := map[string][2]int64{}
	for _, s := range one.Services {
		hosts := map[string]int{}
		found := false
		for _, f := range r.Services {
			if f.Role != s.Role || f.Comm != s.Comm {
				continue
			}
			if !f.Fleet {
				hosts[f.Host] = f.Count
				if f.Lat.Total.P99 != s.Lat.Total.P99 {
					t.Errorf("%s: p99 %d, alone %d", f.Name, f.Lat.Total.P99, s.Lat.Total.P99)
				}
				continue
			}
			found = true
			if f.Count != 3*s.Count || strings.Join(f.Hosts, ",") != "node-a,node-b,node-c" {
				t.Errorf("fleet row %s: %d exchanges on %v, want 3×%d on 3 hosts", f.Name, f.Count, f.Hosts, s.Count)
			}
			// The fleet row's percentiles are those of every exchange
			// of the three inputs (checked below from the JSON lines).
			fleetPct[s.Role+" "+s.Comm] = [2]int64{f.Lat.Total.P50, f.Lat.Total.P99}
		}
		if !found || len(hosts) != 3 || hosts["node-a"] != s.Count || hosts["node-b"] != s.Count || hosts["node-c"] != s.Count {
			t.Errorf("%s %s: fleet row %v, per host %v (want %d each)", s.Role, s.Name, found, hosts, s.Count)
		}
	}

	// Every exchange of every input, each line naming its input.
	lines := strings.Split(strings.TrimSpace(string(readAll(t, out("dir", "ex.jsonl")))), "\n")
	if len(lines) != 3*one.Capture.Exchanges {
		t.Fatalf("%d JSON lines, want %d", len(lines), 3*one.Capture.Exchanges)
	}
	perHost := map[string]int{}
	totals := map[string][]int64{}
	for _, l := range lines {
		var ex struct {
			Capture     string `json:"capture"`
			CaptureHost string `json:"capture_host"`
			Role, Comm  string
			Timings     struct {
				Total *int64 `json:"total"`
			} `json:"timings"`
		}
		if err := json.Unmarshal([]byte(l), &ex); err != nil || ex.Capture == "" {
			t.Fatalf("line without its input: %s", l)
		}
		perHost[ex.CaptureHost]++
		if ex.Timings.Total != nil {
			totals[ex.Role+" "+ex.Comm] = append(totals[ex.Role+" "+ex.Comm], *ex.Timings.Total)
		}
	}
	if len(fleetPct) != len(one.Services) {
		t.Errorf("%d fleet rows for %d services", len(fleetPct), len(one.Services))
	}
	// Sketched percentiles are within 1 % of a sample at the quantile's
	// rank (DDSketch ranks q·(n−1), exact ones ⌈q·n⌉−1: either is right).
	for svc, got := range fleetPct {
		v := totals[svc]
		slices.Sort(v)
		for i, q := range []float64{0.5, 0.99} {
			a, b := v[int(q*float64(len(v)-1))], v[max(int(math.Ceil(q*float64(len(v))))-1, 0)]
			near := func(x int64) bool { return math.Abs(float64(got[i]-x)) <= 0.01*float64(x)+1 }
			if !near(a) && !near(b) {
				t.Errorf("fleet row %s: p%v %d; the JSON lines' samples at its rank are %d and %d", svc, q*100, got[i], a, b)
			}
		}
	}
	if len(perHost) != 3 || perHost["node-b"] != one.Capture.Exchanges {
		t.Errorf("JSON lines per host %v", perHost)
	}

	// diff of a set against a single capture of one of its hosts: the
	// fleet rows, three times the counts, same endpoints.
	code, stdout, stderr := runCLI(t, "diff", "--report", "json", fleet, names[0], "--fail-on", "new,vanished")
	var d struct {
		Endpoints []struct {
			Service string `json:"service"`
			A, B    *struct {
				Count int `json:"count"`
			}
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); code != 0 || err != nil || len(d.Endpoints) == 0 {
		t.Fatalf("diff %s %s: exit %d (%v), stderr %q", fleet, names[0], code, err, stderr)
	}
	for _, e := range d.Endpoints {
		if e.A == nil || e.B == nil || e.A.Count != 3*e.B.Count {
			t.Errorf("diff of the set and one host: %s %+v → %+v, want 3× the count", e.Service, e.A, e.B)
		}
	}

	// Parquet: one file with every row.
	f, err := os.Open(out("dir", "x.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != int64(3*one.Capture.Exchanges) {
		t.Errorf("parquet: %d rows, want %d", pf.NumRows(), 3*one.Capture.Exchanges)
	}

	// A Hive-partitioned tree: a part per input under its host.
	tree := filepath.Join(dir, "tree") + string(os.PathSeparator)
	if code, stderr := manyRun(t, bin, "2", "analyze", "-q", "-o", os.DevNull, "--parquet", tree, fleet); code != 0 {
		t.Fatalf("analyze --parquet DIR: exit %d: %s", code, stderr)
	}
	for _, h := range []string{"node-a", "node-b", "node-c"} {
		if m, _ := filepath.Glob(filepath.Join(tree, "host="+h, "date=*", "part-*.parquet")); len(m) != 1 {
			t.Errorf("host %s: %d parts in the tree", h, len(m))
		}
	}

	// The pcapng, one section per input, reads whole in Wireshark's tools.
	if tshark, err := exec.LookPath("tshark"); err == nil {
		count := func(p string) int {
			b, err := exec.Command(tshark, "-r", p, "-T", "fields", "-e", "frame.number").Output()
			if err != nil {
				t.Fatalf("tshark -r %s: %v", p, err)
			}
			return strings.Count(string(b), "\n")
		}
		alone := filepath.Join(dir, "alone.pcapng")
		if code, stderr := manyRun(t, bin, "2", "analyze", "-q", "-o", os.DevNull, "--pcapng", alone, src); code != 0 {
			t.Fatalf("single pcapng: exit %d: %s", code, stderr)
		}
		if n, want := count(out("dir", "x.pcapng")), 3*count(alone); n != want {
			t.Errorf("tshark reads %d packets of the fleet's pcapng, want %d", n, want)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("tshark is not installed: scripts/test-setup.sh installs it")
	}
}

// TestAnalyzeManyRefuses: what several inputs cannot do is refused with a
// reason, before any output is made.
func TestAnalyzeManyRefuses(t *testing.T) {
	dir := t.TempDir()
	caps := filepath.Join(dir, "caps")
	if err := os.Mkdir(caps, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(caps, "a.rwd"), filepath.Join(caps, "b.rwd")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, readAll(t, filepath.Join("..", "..", "testdata", "sample.rwd")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	notCapture := filepath.Join(dir, "x.pcap")
	if err := os.WriteFile(notCapture, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"analyze", a, b, "--har", filepath.Join(dir, "x.har")}, 2, "--har writes one input's exchanges"},
		{[]string{"analyze", a, b, "--follow"}, 2, "--follow follows one capture"},
		{[]string{"analyze", a, "-"}, 2, "standard input (-) can only be the one input"},
		{[]string{"analyze", filepath.Join(dir, "*.nope")}, 2, "no file matches"},
		{[]string{"analyze", empty}, 2, "holds no capture"},
		{[]string{"analyze", a, notCapture}, 1, "x.pcap: not a rewind capture, pcap or pcapng file"},
		{[]string{"analyze", a, b, "--parquet", "-"}, 2, "--parquet needs a FILE or a DIRECTORY/"},
		{[]string{"analyze", a, b, "--exchanges", b}, 2, "is the input"},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, stdout, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.har")); err == nil {
		t.Error("a refused run left an output behind")
	}
	// A file named twice counts once.
	code, stdout, stderr := runCLI(t, "analyze", "--report", "json", a, b, caps, a)
	var r manyReport
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || len(r.Inputs) != 2 {
		t.Errorf("a, b, their directory and a again: exit %d, %d inputs (%v); stderr %q", code, len(r.Inputs), err, stderr)
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	if err := json.Unmarshal(readAll(t, p), v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}
