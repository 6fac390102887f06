package parquet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
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
	return analyzeToParquetAs(t, in, out, "")
}

// analyzeToParquetAs is analyzeToParquet with the capture header's host
// replaced by host (when not empty), so that one capture can stand in for
// several hosts of a fleet. A pcap keeps its file name as its host.
func analyzeToParquetAs(t *testing.T, in, out, host string) *sli.Report {
	t.Helper()
	src, err := analyze.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if host != "" {
		src.Info.Header.Host = host
	}
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

// fleetDoc is the fleet guide whose DuckDB queries TestFleetDocQueries runs.
const fleetDoc = "../../docs/fleet.md"

// fleetPlaceholder is the tree docs/fleet.md's DuckDB queries read; the
// test points it at a tree it writes.
const fleetPlaceholder = "'fleet/**/*.parquet'"

// docQuery is one DuckDB query of docs/fleet.md: a fenced block whose info
// string is "sql duckdb NAME".
type docQuery struct {
	name, sql string
}

var (
	duckdbBlock = regexp.MustCompile("(?m)^```sql duckdb ([a-z0-9-]+)[ \t]*\n((?s:.*?))^```[ \t]*$")
	anyFence    = regexp.MustCompile("(?m)^```([^\n]*)\n((?s:.*?))^```[ \t]*$")
)

// fleetDocQueries extracts the marked DuckDB queries of docs/fleet.md. A
// block that reads Parquet with read_parquet but is not marked fails the
// test: every DuckDB query of the guide is run.
func fleetDocQueries(t *testing.T) []docQuery {
	t.Helper()
	b, err := os.ReadFile(fleetDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var qs []docQuery
	seen := map[string]bool{}
	for _, m := range duckdbBlock.FindAllStringSubmatch(doc, -1) {
		if seen[m[1]] {
			t.Errorf("%s: two DuckDB blocks named %q", fleetDoc, m[1])
		}
		seen[m[1]] = true
		if !strings.Contains(m[2], fleetPlaceholder) {
			t.Errorf("%s: DuckDB block %q does not read %s", fleetDoc, m[1], fleetPlaceholder)
		}
		qs = append(qs, docQuery{m[1], m[2]})
	}
	for _, m := range anyFence.FindAllStringSubmatch(doc, -1) {
		if strings.Contains(m[2], "read_parquet(") && !strings.HasPrefix(m[1], "sql duckdb ") {
			t.Errorf("%s: a block (```%s) reads Parquet with DuckDB but is not marked ```sql duckdb NAME, so no test runs it", fleetDoc, m[1])
		}
	}
	if n := strings.Count(doc, "\n```sql duckdb"); n != len(qs) {
		t.Errorf("%s: %d blocks start with ```sql duckdb, %d have a name and a closing fence", fleetDoc, n, len(qs))
	}
	return qs
}

// slowNode writes a capture of a server whose GET /api/users/{id} takes
// 40–400 ms (sample.rwd's takes under 1 ms) and whose POST /api/orders
// answers 503 one time in five: the outlier of the test fleet.
func slowNode(t *testing.T, path string) {
	t.Helper()
	b := capturetest.New()
	srv := b.Process(200, "rewind")
	for c := range 6 {
		cn := srv.Accept(0, "10.0.0.3:8080", fmt.Sprintf("10.0.0.9:%d", 30000+c))
		for i := range 10 {
			n := c*10 + i
			cn.Read(fmt.Sprintf("GET /api/users/%d HTTP/1.1\r\nHost: shop\r\n\r\n", 100+n))
			b.Advance(time.Duration(40+6*n) * time.Millisecond)
			cn.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			cn.Read("POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\n\r\n{}")
			b.Advance(time.Duration(2+n%5) * time.Millisecond)
			if i%5 == 0 {
				cn.Write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			} else {
				cn.Write("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
			}
		}
		cn.Close()
	}
	b.WriteFile(t, path)
}

// routeTotals is what the reports of several hosts say of one server-side
// method and route.
type routeTotals struct {
	hosts, count, responses, status5xx int
	p99                                int64 // when one service of one host serves it
	services                           int
}

// TestFleetDocQueries runs every DuckDB query of docs/fleet.md against a
// Hive tree of Parquet written from several captures standing in for the
// hosts of a fleet (the testdata captures under host names of their own, a
// pcap named by its file, and a synthetic slow host), so the guide's SQL
// cannot rot: each query must run and return rows, and the numbers the
// guide's queries compute are checked against rewind's own reports
// (exchanges per host, server exchanges, responses and 5xx per route,
// availability, a single host's p99, and which host is the outlier).
func TestFleetDocQueries(t *testing.T) {
	queries := fleetDocQueries(t)
	if len(queries) < 4 {
		t.Fatalf("%s has %d marked DuckDB queries, want at least 4 (inventory, p99 per route, outlier hosts, error budget)", fleetDoc, len(queries))
	}
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow.rwd")
	slowNode(t, slow)
	fleet := []struct{ host, in string }{
		{"web-1", "../../testdata/sample.rwd"},
		{"web-2", "../../testdata/sample.rwd"},
		{"web-3", slow},
		{"edge-1", "../../testdata/curl-nginx.rwd"},
		{"edge-2", "../../testdata/pipelining-nginx.rwd"},
		{"", "../../analyze/pcapin/testdata/conversation.pcap"}, // host "conversation"
	}
	tree := filepath.Join(dir, "fleet") + string(os.PathSeparator)
	reports := map[string]*sli.Report{}
	exchanges := map[string]int{}
	for _, h := range fleet {
		r := analyzeToParquetAs(t, h.in, tree, h.host)
		host := h.host
		if host == "" {
			host = strings.TrimSuffix(filepath.Base(h.in), filepath.Ext(h.in))
		}
		reports[host] = r
		exchanges[host] = r.Capture.Exchanges
	}
	routes := map[string]*routeTotals{}
	for _, r := range reports {
		onHost := map[string]bool{}
		for _, s := range r.Services {
			if s.Role != "server" {
				continue
			}
			for _, e := range s.Endpoints {
				k := e.Key.Method + " " + e.Key.Path
				rt := routes[k]
				if rt == nil {
					rt = &routeTotals{}
					routes[k] = rt
				}
				if !onHost[k] {
					onHost[k] = true
					rt.hosts++
				}
				rt.services++
				rt.count += e.Count
				rt.responses += e.Responses
				rt.status5xx += e.Status5xx
				rt.p99 = e.Total.P99
			}
		}
	}
	const users = "GET /api/users/{id}"
	if routes[users] == nil || routes[users].hosts != 3 {
		t.Fatalf("the test fleet should serve %s on 3 hosts: %+v", users, routes[users])
	}
	glob := "'" + filepath.ToSlash(filepath.Join(tree, "**", "*.parquet")) + "'"

	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			rows := duckdb(t, strings.ReplaceAll(q.sql, fleetPlaceholder, glob))
			t.Logf("%d rows: %v", len(rows), rows)
			if len(rows) == 0 {
				t.Fatalf("no rows:\n%s", q.sql)
			}
			col := func(row map[string]any, name string) any {
				t.Helper()
				v, ok := row[name]
				if !ok {
					t.Fatalf("no column %q in %v", name, row)
				}
				return v
			}
			key := func(row map[string]any) string {
				return fmt.Sprint(col(row, "method")) + " " + fmt.Sprint(col(row, "route"))
			}
			switch q.name {
			case "inventory":
				got := map[string]float64{}
				for _, row := range rows {
					got[fmt.Sprint(col(row, "host"))] += num(col(row, "exchanges"))
				}
				for host, n := range exchanges {
					if got[host] != float64(n) {
						t.Errorf("%s: %v exchanges in the tree, %d in its report", host, got[host], n)
					}
				}
				if len(got) != len(exchanges) {
					t.Errorf("hosts %v, want %d", got, len(exchanges))
				}
			case "p99-per-route":
				seen := 0
				for _, row := range rows {
					k := key(row)
					rt := routes[k]
					if rt == nil {
						t.Errorf("%s: no server endpoint of a report", k)
						continue
					}
					seen++
					if n := num(col(row, "requests")); n != float64(rt.count) {
						t.Errorf("%s: %v requests, the reports count %d", k, n, rt.count)
					}
					if n := num(col(row, "hosts")); n != float64(rt.hosts) {
						t.Errorf("%s: %v hosts, the reports %d", k, n, rt.hosts)
					}
					if p := num(col(row, "p99_ms")) * 1e6; rt.services == 1 && rt.p99 > 0 && math.Abs(p-float64(rt.p99)) > 1 {
						t.Errorf("%s: p99 %v ns, its report %d ns", k, p, rt.p99)
					}
				}
				if seen != len(routes) {
					t.Errorf("%d routes, the reports have %d", seen, len(routes))
				}
			case "outlier-hosts":
				if len(rows) != 1 || col(rows[0], "host") != "web-3" || key(rows[0]) != users {
					t.Fatalf("outliers %v, want web-3's %s alone", rows, users)
				}
				var want int64
				for _, s := range reports["web-3"].Services {
					for _, e := range s.Endpoints {
						if s.Role == "server" && e.Key.Method+" "+e.Key.Path == users {
							want = e.Total.P99
						}
					}
				}
				if p := num(col(rows[0], "host_p99_ms")) * 1e6; want == 0 || math.Abs(p-float64(want)) > 1 {
					t.Errorf("web-3's p99 %v ns, its report %d ns", p, want)
				}
				if r := num(col(rows[0], "ratio")); !(r >= 2) {
					t.Errorf("ratio %v", r)
				}
			case "error-budget":
				for _, row := range rows {
					k := key(row)
					rt := routes[k]
					if rt == nil {
						t.Errorf("%s: no server endpoint of a report", k)
						continue
					}
					if n := num(col(row, "requests")); n != float64(rt.count) {
						t.Errorf("%s: %v requests, the reports count %d", k, n, rt.count)
					}
					if n := num(col(row, "errors_5xx")); n != float64(rt.status5xx) {
						t.Errorf("%s: %v 5xx, the reports count %d", k, n, rt.status5xx)
					}
					if rt.responses > 0 {
						want := float64(rt.responses-rt.status5xx) / float64(rt.responses)
						if a := num(col(row, "availability")); math.Abs(a-want) > 1e-9 {
							t.Errorf("%s: availability %v, the reports %v", k, a, want)
						}
					}
					if k == users && num(col(row, "slow")) == 0 {
						t.Errorf("%s: web-3's requests over the threshold are not counted slow", k)
					}
				}
			}
		})
	}
}

// TestDuckDBReadsNetNS checks that DuckDB reads the netns column: the inode
// of each exchange's network namespace, NULL when the capture says none.
func TestDuckDBReadsNetNS(t *testing.T) {
	b := capturetest.New()
	b.Header.NetNS = 4026531833
	for i, p := range []*capturetest.Proc{b.Process(100, "a").InNetNS(4026532173), b.Process(200, "b")} {
		c := p.Accept(4, "127.0.0.1:8080", "127.0.0.1:40000")
		c.Read("GET /" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: h\r\n\r\n")
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		c.Close()
	}
	out := captureToParquet(t, b)
	rows := duckdb(t, "SELECT path, coalesce(netns, 0) AS netns FROM '"+out+"' ORDER BY path")
	// Process b's record names no namespace: it is taken as the recorder's.
	if len(rows) != 2 || num(rows[0]["netns"]) != 4026532173 || num(rows[1]["netns"]) != 4026531833 {
		t.Errorf("rows %v", rows)
	}
}

// TestDuckDBReadsPod checks the pod name, namespace, hostname and container
// name columns: set for a process whose record names its pod, NULL for a
// host process.
func TestDuckDBReadsPod(t *testing.T) {
	b := capturetest.New()
	pod := b.Process(100, "a").With(func(p *capture.Process) {
		p.Cgroup = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6b1e2c1a_0b6f_4a43_9a4c_1d2e3f405162.slice/cri-containerd-" + strings.Repeat("ab", 32) + ".scope"
		p.PodName, p.PodNamespace, p.Hostname, p.ContainerName = "web-0", "shop", "web-0", "app"
	})
	for i, p := range []*capturetest.Proc{pod, b.Process(200, "b")} {
		c := p.Accept(4, "127.0.0.1:8080", "127.0.0.1:4000"+strconv.Itoa(i))
		c.Read("GET /" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: h\r\n\r\n")
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		c.Close()
	}
	out := captureToParquet(t, b)
	rows := duckdb(t, "SELECT path, coalesce(pod_name, '-') AS pod, coalesce(pod_namespace, '-') AS ns, coalesce(hostname, '-') AS h, coalesce(container_name, '-') AS name FROM '"+out+"' ORDER BY path")
	if len(rows) != 2 || rows[0]["pod"] != "web-0" || rows[0]["ns"] != "shop" || rows[0]["h"] != "web-0" || rows[0]["name"] != "app" ||
		rows[1]["pod"] != "-" || rows[1]["ns"] != "-" || rows[1]["h"] != "-" || rows[1]["name"] != "-" {
		t.Errorf("rows %v", rows)
	}
}

// captureToParquet writes the capture b describes and analyzes it into a
// Parquet file, whose path it returns.
func captureToParquet(t *testing.T, b *capturetest.Builder) string {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.rwd"), filepath.Join(dir, "out.parquet")
	if err := os.WriteFile(in, b.Bytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	analyzeToParquet(t, in, out)
	return out
}
