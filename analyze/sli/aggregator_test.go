package sli

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

var (
	nginx = &analyze.Conn{ID: "c1", PID: 100, Comm: "nginx", Role: capture.RoleServer, TLS: "none",
		Local: netip.MustParseAddrPort("10.0.0.1:80"), Remote: netip.MustParseAddrPort("10.0.0.2:40000")}
	curl = &analyze.Conn{ID: "c2", PID: 200, Comm: "curl", Role: capture.RoleClient, TLS: "none",
		Local: netip.MustParseAddrPort("10.0.0.2:40000"), Remote: netip.MustParseAddrPort("10.0.0.1:80")}
	pcapConn = &analyze.Conn{ID: "c3", Role: capture.RoleClient,
		Local: netip.MustParseAddrPort("10.0.0.3:50000"), Remote: netip.MustParseAddrPort("10.0.0.9:8080")}
)

func exchange(c *analyze.Conn, method, path string, status int, start uint64, server int64) *analyze.Exchange {
	ex := &analyze.Exchange{Conn: c, Proto: "HTTP/1.1"}
	ex.Request.Method, ex.Request.Host, ex.Request.Path = method, "Example.com", path
	ex.Request.Start, ex.Request.End = start, start+1000
	ex.Request.BodyBytes = 10
	ex.Response.Status = status
	ex.Timings = analyze.Timings{Server: server, Transfer: 500, Network: analyze.Unknown, Total: server + 1500}
	if status == 0 {
		ex.Flags = analyze.FlagNoResponse | analyze.FlagIncomplete
		ex.Timings = analyze.Timings{Server: analyze.Unknown, Transfer: analyze.Unknown, Network: analyze.Unknown, Total: analyze.Unknown}
		ex.Response.BodyBytes = -1
		return ex
	}
	ex.Response.Start, ex.Response.End = start+1000+uint64(server), start+1500+uint64(server)
	ex.Response.BodyBytes = 100
	return ex
}

func run(t testing.TB, a *Aggregator, exs []*analyze.Exchange) *Report {
	t.Helper()
	info := &analyze.CaptureInfo{Path: "x.rwd", Format: "rewind"}
	info.Header.Host = "h"
	info.Header.Clock = capture.ClockMapping{MonoNS: 0, WallUnixNS: 1_700_000_000_000_000_000}
	if err := a.Begin(info); err != nil {
		t.Fatal(err)
	}
	for _, ex := range exs {
		if err := a.Exchange(ex); err != nil {
			t.Fatal(err)
		}
	}
	sum := &analyze.Summary{Exchanges: len(exs), First: 1_000_000_000, Last: 11_000_000_000, Lost: 3, Warnings: []string{"lost 3 events"}}
	if err := a.End(sum); err != nil {
		t.Fatal(err)
	}
	return a.Report()
}

func TestAggregate(t *testing.T) {
	exs := []*analyze.Exchange{
		exchange(nginx, "GET", "/a", 200, 1e9, 1_000_000),
		exchange(nginx, "GET", "/a", 200, 2e9, 3_000_000),
		exchange(nginx, "GET", "/a", 503, 3e9, 2_000_000),
		exchange(nginx, "POST", "/b", 404, 4e9, 4_000_000),
		exchange(nginx, "GET", "/a", 0, 5e9, 0),
		// The same requests seen from curl: a separate service.
		exchange(curl, "GET", "/a", 200, 1e9, 1_100_000),
		exchange(curl, "GET", "/a", 200, 2e9, 3_100_000),
		exchange(pcapConn, "GET", "/p", 302, 6e9, 5_000_000),
	}
	r := run(t, New(Options{}), exs)

	if got := r.Capture.SpanNS; got != 10_000_000_000 {
		t.Errorf("span %d", got)
	}
	if !reflect.DeepEqual(r.Capture.Flags, []FlagCount{{"incomplete", 1}, {"no_response", 1}}) {
		t.Errorf("flags %v", r.Capture.Flags)
	}
	if len(r.Services) != 3 {
		t.Fatalf("services %d, want 3", len(r.Services))
	}
	// Servers first, then clients by comm ("" for the pcap one).
	srv, pc, cli := r.Services[0], r.Services[1], r.Services[2]
	if srv.Name() != "nginx[100]" || srv.Role != "server" || cli.Name() != "curl[200]" || cli.Role != "client" {
		t.Fatalf("services order %s/%s %s/%s", srv.Name(), srv.Role, cli.Name(), cli.Role)
	}
	if pc.Addr != "10.0.0.9:8080" || pc.Name() != "10.0.0.9:8080" {
		t.Errorf("pcap service addr %q", pc.Addr)
	}
	if srv.Count != 5 || srv.Responses != 4 || srv.Status2xx != 2 || srv.Status4xx != 1 || srv.Status5xx != 1 || srv.Incomplete != 1 {
		t.Errorf("server stats %+v", srv.Stats)
	}
	if srv.Availability != 0.75 {
		t.Errorf("availability %v", srv.Availability)
	}
	if srv.Rate != 0.5 {
		t.Errorf("rate %v", srv.Rate)
	}
	if srv.ReqBodyBytes != 50 || srv.RespBodyBytes != 400 {
		t.Errorf("bytes %d %d", srv.ReqBodyBytes, srv.RespBodyBytes)
	}
	want := Latency{Count: 4, P50: 2_000_000, P90: 4_000_000, P95: 4_000_000, P99: 4_000_000, P999: 4_000_000, Max: 4_000_000, Exact: true}
	if srv.Server != want {
		t.Errorf("server latency %+v, want %+v", srv.Server, want)
	}
	if srv.Network.Count != 0 {
		t.Errorf("network latency %+v", srv.Network)
	}
	if len(srv.Endpoints) != 2 || srv.Endpoints[0].Key != (EndpointKey{"GET", "example.com", "/a"}) || srv.Endpoints[0].Count != 4 {
		t.Errorf("endpoints %+v", srv.Endpoints)
	}
	if cli.Count != 2 {
		t.Errorf("client count %d", cli.Count)
	}
}

func TestEndpointCap(t *testing.T) {
	var exs []*analyze.Exchange
	for i := range 10 {
		exs = append(exs, exchange(nginx, "GET", fmt.Sprintf("/u/%d", i), 200, uint64(i+1)*1e8, 1000))
	}
	r := run(t, New(Options{MaxEndpoints: 3, Endpoint: MethodHostPath}), exs)
	eps := r.Services[0].Endpoints
	if len(eps) != 4 || !eps[3].Other || eps[3].Count != 7 || eps[3].Key != OtherKey {
		t.Fatalf("endpoints %+v", eps)
	}
	if r.Services[0].Count != 10 {
		t.Errorf("service count %d", r.Services[0].Count)
	}
}

func TestCustomEndpoint(t *testing.T) {
	route := func(ex *analyze.Exchange) EndpointKey {
		return EndpointKey{Method: ex.Request.Method, Path: "/u/{id}"}
	}
	var exs []*analyze.Exchange
	for i := range 5 {
		exs = append(exs, exchange(nginx, "GET", fmt.Sprintf("/u/%d", i), 200, uint64(i+1)*1e8, 1000))
	}
	r := run(t, New(Options{Endpoint: route}), exs)
	if eps := r.Services[0].Endpoints; len(eps) != 1 || eps[0].Count != 5 {
		t.Fatalf("endpoints %+v", eps)
	}
}

// TestSketchAccuracy checks sketched percentiles against exact ones, and
// that the service total (merged from endpoints) agrees.
func TestSketchAccuracy(t *testing.T) {
	var exs []*analyze.Exchange
	var vals []int64
	x := uint64(12345)
	for i := range 5000 {
		x = x*6364136223846793005 + 1442695040888963407 // fixed LCG: reproducible
		v := int64(100_000 + x>>40%50_000_000)
		vals = append(vals, v)
		exs = append(exs, exchange(nginx, "GET", fmt.Sprintf("/e%d", i%3), 200, uint64(i+1)*1e6, v))
	}
	r := run(t, New(Options{}), exs)
	slices.Sort(vals)
	l := r.Services[0].Server
	if l.Exact || l.Count != 5000 || l.Max != vals[len(vals)-1] {
		t.Fatalf("latency %+v", l)
	}
	for _, c := range []struct {
		q   float64
		got int64
	}{{0.5, l.P50}, {0.9, l.P90}, {0.99, l.P99}} {
		exact := float64(vals[int(c.q*float64(len(vals)-1))]) // DDSketch's rank
		if rel := math.Abs(float64(c.got)-exact) / exact; rel > RelativeAccuracy {
			t.Errorf("p%v = %d, exact %v: relative error %.4f", c.q*100, c.got, exact, rel)
		}
	}
}

func TestDeterministic(t *testing.T) {
	build := func() []*analyze.Exchange {
		var exs []*analyze.Exchange
		for i := range 3000 {
			c := []*analyze.Conn{nginx, curl, pcapConn}[i%3]
			exs = append(exs, exchange(c, "GET", fmt.Sprintf("/p%d", i%17), 200+i%4*100, uint64(i+1)*1e6, int64(i*7919%100_000)))
		}
		return exs
	}
	a := run(t, New(Options{MaxEndpoints: 10}), build())
	b := run(t, New(Options{MaxEndpoints: 10}), build())
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs over the same input differ")
	}
}

func BenchmarkAggregator(b *testing.B) {
	exs := make([]*analyze.Exchange, 1024)
	for i := range exs {
		exs[i] = exchange(nginx, "GET", fmt.Sprintf("/p%d", i%20), 200+i%50/49*300, uint64(i+1)*1e6, int64(50_000+i*977%2_000_000))
		exs[i].Request.Host = "example.com" // as most clients send it: no lowering needed
	}
	a := New(Options{})
	_ = a.Begin(&analyze.CaptureInfo{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = a.Exchange(exs[i&1023])
		i++
	}
}

// BenchmarkAggregatorTemplated has paths with ids, as most services see:
// the Router templates them without allocating.
func BenchmarkAggregatorTemplated(b *testing.B) {
	exs := make([]*analyze.Exchange, 1024)
	for i := range exs {
		exs[i] = exchange(nginx, "GET", fmt.Sprintf("/api/users/%d/orders", i), 200+i%50/49*300, uint64(i+1)*1e6, int64(50_000+i*977%2_000_000))
		exs[i].Request.Host = "example.com"
	}
	a := New(Options{})
	_ = a.Begin(&analyze.CaptureInfo{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = a.Exchange(exs[i&1023])
		i++
	}
}

// TestGroupBy: by default the processes of one role and name that talk to
// one server address are one service, their pids listed (70 runs of curl
// are one client section, nginx's workers one server); --group-by pid
// gives each process its own; name merges server addresses too (#19 item
// 4, #20 item 7).
func TestGroupBy(t *testing.T) {
	var exs []*analyze.Exchange
	for i := range 70 {
		c := *curl
		c.ID, c.PID = fmt.Sprintf("c%d", i), uint32(1000+i)
		exs = append(exs, exchange(&c, "GET", "/a", 200, uint64(i)*1e6, 1000))
	}
	other := *curl // a run of curl against another server
	other.ID, other.PID, other.Remote = "o1", 2000, netip.MustParseAddrPort("10.0.0.7:9090")
	exs = append(exs, exchange(&other, "GET", "/b", 200, 3e9, 1000))
	w1, w2 := *nginx, *nginx
	w2.ID, w2.PID = "w2", 101
	exs = append(exs, exchange(&w1, "GET", "/a", 200, 1e9, 1000), exchange(&w2, "GET", "/a", 500, 2e9, 1000))

	r := run(t, New(Options{GroupBy: GroupByPID}), exs)
	if len(r.Services) != 73 {
		t.Errorf("per process: %d services, want 73", len(r.Services))
	}
	r = run(t, New(Options{}), exs)
	if len(r.Services) != 3 {
		t.Fatalf("by service: %d services, want 3 (nginx, curl to two servers)", len(r.Services))
	}
	for _, s := range r.Services {
		want := map[string]int{"nginx " + nginx.Local.String(): 2, "curl " + curl.Remote.String(): 70, "curl 10.0.0.7:9090": 1}[s.Comm+" "+s.Addr]
		if s.Count != want || s.PID != 0 || len(s.PIDs) != map[int]int{2: 2, 70: 70, 1: 1}[want] {
			t.Errorf("%s %s: count %d, pid %d, pids %v; want %d exchanges", s.Comm, s.Addr, s.Count, s.PID, s.PIDs, want)
		}
	}
	names := map[string]bool{}
	for _, s := range r.Services {
		names[s.Name()] = true
	}
	if !names["nginx[100,101]"] || !names["curl[1000,1001,1002,1003,+66]"] || !names["curl[2000]"] {
		t.Errorf("names %v", names)
	}
	r = run(t, New(Options{GroupBy: GroupByName}), exs)
	if len(r.Services) != 2 {
		t.Fatalf("by name: %d services, want 2", len(r.Services))
	}
	if p, err := ParseGroupBy("pids"); err == nil {
		t.Errorf("--group-by pids accepted as %v", p)
	}
}
