package parquet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture/capturetest"
	"github.com/rewind-tools/rewind/format/parquet"
	"github.com/rewind-tools/rewind/format/pcapng"
)

// duckdb runs sql through DuckDB (@duckdb/node-api, installed into
// scripts/duckdb by scripts/test-setup.sh) and returns the rows.
func duckdb(t *testing.T, sql string) []map[string]any {
	t.Helper()
	dir, _ := filepath.Abs("../../scripts/duckdb")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		bpftest.Unavailable(t, "DuckDB for node is not installed (scripts/test-setup.sh runs npm install in scripts/duckdb)")
	}
	out, err := exec.Command("node", filepath.Join(dir, "query.mjs"), sql).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("duckdb %q: %v\n%s", sql, err, msg)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, out)
	}
	return rows
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return math.NaN()
}

// analyzeToParquet replays in into a Parquet file and an SLI report.
func analyzeToParquet(t *testing.T, in, out string) *sli.Report {
	t.Helper()
	src, err := analyze.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pw, err := parquet.New(out, parquet.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The route column is what the router says of each path; the report's
	// {var} folding past --max-children needs the whole capture, so it is
	// off here (SCHEMA.md says so).
	agg := sli.New(sli.Options{GroupBy: sli.GroupByName, IgnoreHost: true, MaxChildren: -1})
	if _, err := analyze.Replay(context.Background(), src.Source, src.Info, analyze.Options{MaxBodyCapture: -1}, pw, agg); err != nil {
		t.Fatal(err)
	}
	return agg.Report()
}

// checkAgainstReport asks DuckDB what the report says: exchanges by role
// and status class exactly, and by role, method and route exactly; p50 and
// p99 of total latency per route within the sketch's 1 % (exact below 100
// samples: DuckDB's quantile_disc is the same nearest rank).
func checkAgainstReport(t *testing.T, file string, r *sli.Report) {
	t.Helper()
	from := fmt.Sprintf("read_parquet('%s')", file)
	want := map[string]float64{}
	type lat struct{ n, p50, p99 float64 }
	wantLat := map[string]lat{}
	for _, s := range r.Services {
		for _, c := range []struct {
			class string
			n     int
		}{{"2", s.Status2xx}, {"3", s.Status3xx}, {"4", s.Status4xx}, {"5", s.Status5xx}} {
			want[s.Role+" "+c.class+"xx"] += float64(c.n)
		}
		for _, e := range s.Endpoints {
			k := s.Role + " " + e.Key.Method + " " + e.Key.Path
			want[k] += float64(e.Count)
			if e.Total.Count > 0 {
				wantLat[k] = lat{float64(e.Total.Count), float64(e.Total.P50), float64(e.Total.P99)}
			}
		}
	}
	got := map[string]float64{}
	for _, row := range duckdb(t, "select role, (status // 100)::varchar || 'xx' as class, count(*) as n from "+from+" where status is not null group by all") {
		got[fmt.Sprint(row["role"])+" "+fmt.Sprint(row["class"])] = num(row["n"])
	}
	for _, row := range duckdb(t, "select role, method, route, count(*) as n, count(total_ns) as m, quantile_disc(total_ns, 0.5) as p50, quantile_disc(total_ns, 0.99) as p99 from "+from+" group by all") {
		k := fmt.Sprint(row["role"]) + " " + fmt.Sprint(row["method"]) + " " + fmt.Sprint(row["route"])
		got[k] = num(row["n"])
		if w, ok := wantLat[k]; ok {
			for _, q := range []struct {
				name      string
				got, want float64
			}{{"p50", num(row["p50"]), w.p50}, {"p99", num(row["p99"]), w.p99}} {
				tol := 0.0
				if w.n > float64(sli.ExactLimit) {
					tol = sli.RelativeAccuracy * q.want
				}
				if math.Abs(q.got-q.want) > tol+0.5 {
					t.Errorf("%s %s: DuckDB %v, rewind %v (%v samples)", k, q.name, q.got, q.want, w.n)
				}
			}
		}
	}
	for k, v := range want {
		if v != 0 && got[k] != v {
			t.Errorf("%s: DuckDB counts %v, rewind %v", k, got[k], v)
		}
	}
}

// TestDuckDBReadsTestdata writes Parquet for every capture in testdata/
// and checks DuckDB's answers against rewind's report (#21 item 3).
func TestDuckDBReadsTestdata(t *testing.T) {
	dir := t.TempDir()
	inputs, _ := filepath.Glob("../../testdata/*.rwd")
	inputs = append(inputs, "../../analyze/pcapin/testdata/conversation.pcap", "../../analyze/pcapin/testdata/conversation.pcapng")
	if len(inputs) < 3 {
		t.Fatalf("testdata has %d captures", len(inputs))
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out := filepath.Join(dir, filepath.Base(in)+".parquet")
			r := analyzeToParquet(t, in, out)
			rows := duckdb(t, fmt.Sprintf("select count(*) as n, count(distinct conn) as conns from read_parquet('%s')", out))
			if num(rows[0]["n"]) != float64(r.Capture.Exchanges) {
				t.Errorf("%v rows, %d exchanges", rows[0]["n"], r.Capture.Exchanges)
			}
			checkAgainstReport(t, out, r)
			if strings.HasSuffix(in, "sample.rwd") {
				rows := duckdb(t, fmt.Sprintf("select count(*) as n from read_parquet('%s') where resp_content_type <> ''", out))
				if num(rows[0]["n"]) == 0 {
					t.Error("no row has its response's Content-Type")
				}
			}
		})
	}
}

// TestDuckDBReadsLargeTree writes a 100,000-exchange pcapng (made by
// rewind's own pcapng writer from a synthetic capture) into a partitioned
// tree, reads it back with DuckDB with Hive partitioning, and checks the
// answers and that row groups were written as it went.
func TestDuckDBReadsLargeTree(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	dir := t.TempDir()
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	const conns, per = 100, 1000
	routes := []string{"/api/users/%d", "/static/app-%d.js", "/health"}
	for c := range conns {
		cn := srv.Accept(int32(10+c), "10.0.0.1:80", fmt.Sprintf("10.0.0.2:%d", 20000+c))
		for i := range per {
			p := routes[i%3]
			if strings.Contains(p, "%d") {
				p = fmt.Sprintf(p, i)
			}
			cn.Read("GET " + p + " HTTP/1.1\r\nHost: shop\r\n\r\n")
			b.Advance(time.Duration(50+(i*7919+c)%4000) * time.Microsecond)
			status := "200 OK"
			if (i+c)%97 == 0 {
				status = "503 Service Unavailable"
			}
			cn.Write("HTTP/1.1 " + status + "\r\nContent-Length: 2\r\n\r\nok")
		}
		cn.Close()
	}
	rwd := filepath.Join(dir, "big.rwd")
	b.WriteFile(t, rwd)
	png := filepath.Join(dir, "big.pcapng")
	src, err := analyze.Open(rwd)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(png)
	pw := pcapng.New(f, pcapng.Options{Version: "test"})
	if _, err := analyze.Replay(context.Background(), src.Source, src.Info, analyze.Options{MaxBodyCapture: -1}, pw); err != nil {
		t.Fatal(err)
	}
	f.Close()
	src.Close()

	tree := filepath.Join(dir, "tree") + string(os.PathSeparator)
	r := analyzeToParquet(t, png, tree)
	if r.Capture.Exchanges != conns*per {
		t.Fatalf("%d exchanges from the pcapng, want %d", r.Capture.Exchanges, conns*per)
	}
	glob := filepath.Join(tree, "**", "*.parquet")
	rows := duckdb(t, fmt.Sprintf("select host, date, count(*) as n from read_parquet('%s', hive_partitioning=true) group by all", glob))
	if len(rows) != 1 || num(rows[0]["n"]) != conns*per || rows[0]["host"] != "big" {
		t.Errorf("partitions %v", rows)
	}
	meta := duckdb(t, fmt.Sprintf("select count(distinct row_group_id) as groups from parquet_metadata('%s')", glob))
	if num(meta[0]["groups"]) < 2 {
		t.Errorf("%v row groups: rows were not written as they came", meta[0]["groups"])
	}
	checkAgainstReport(t, glob, r)
}

// TestDeterministic: the same capture gives byte-identical Parquet, and an
// empty one a valid file with the schema and no rows.
func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	analyzeToParquet(t, "../../testdata/sample.rwd", a)
	analyzeToParquet(t, "../../testdata/sample.rwd", b)
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || string(x) != string(y) {
		t.Errorf("two writes differ (%d and %d bytes)", len(x), len(y))
	}
	empty := capturetest.New()
	empty.Process(1, "idle")
	in := filepath.Join(dir, "empty.rwd")
	empty.WriteFile(t, in)
	out := filepath.Join(dir, "empty.parquet")
	analyzeToParquet(t, in, out)
	if rows := duckdb(t, fmt.Sprintf("select count(*) as n from read_parquet('%s')", out)); num(rows[0]["n"]) != 0 {
		t.Errorf("empty capture: %v rows", rows[0]["n"])
	}
	if _, err := parquet.New(filepath.Join(dir, "nope", "x.parquet"), parquet.Options{}); err == nil {
		t.Error("a file in a missing directory was accepted")
	}
}
