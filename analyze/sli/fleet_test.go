package sli

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// fleetInput is one synthetic input of a fleet: a host's capture whose
// monotonic clock is its own.
type fleetInput struct {
	path, host string
	clock      capture.ClockMapping
	walls      []int64 // exchange start times, wall-clock ns
	exs        []*analyze.Exchange
}

// fleetInputs makes inputs of three hosts (the first with two captures),
// each nginx serving /a and /b on its own address, with random starts over
// two minutes and random latencies; every clock maps differently.
func fleetInputs(rng *rand.Rand) []*fleetInput {
	const base = int64(1_760_000_000_123_456_789)
	ins := []*fleetInput{
		{path: "a/1.rwd", host: "node-a", clock: capture.ClockMapping{MonoNS: 5e12, WallUnixNS: base}},
		{path: "a/2.rwd", host: "node-a", clock: capture.ClockMapping{MonoNS: 7e12, WallUnixNS: base + 61e9}},
		{path: "b.rwd", host: "node-b", clock: capture.ClockMapping{MonoNS: 1e9, WallUnixNS: base + 3e9}},
		{path: "c.rwd", host: "node-c", clock: capture.ClockMapping{MonoNS: 9e15, WallUnixNS: base - 2e9}},
	}
	for i, in := range ins {
		conn := &analyze.Conn{ID: "c1", PID: uint32(100 + i), Comm: "nginx", Role: capture.RoleServer, TLS: "none",
			Local: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), Remote: netip.MustParseAddrPort("10.0.1.1:40000")}
		n := 300 + rng.IntN(700)
		from := in.clock.WallUnixNS + 1e9
		for range n {
			wall := from + rng.Int64N(55e9)
			mono := uint64(wall - in.clock.WallUnixNS + int64(in.clock.MonoNS))
			path := "/a"
			if rng.IntN(3) == 0 {
				path = "/b"
			}
			status := 200
			if rng.IntN(50) == 0 {
				status = 503
			}
			lat := int64(rng.ExpFloat64()*20e6) + 100e3
			if i == 3 {
				lat *= 4 // the outlier host
			}
			in.walls = append(in.walls, wall)
			in.exs = append(in.exs, exchange(conn, "GET", path, status, mono, lat))
		}
	}
	return ins
}

func (in *fleetInput) aggregate(t testing.TB, opts Options) *Aggregator {
	t.Helper()
	opts.Fleet = true
	a := New(opts)
	info := &analyze.CaptureInfo{Path: in.path, Format: "rewind"}
	info.Header.Host = in.host
	info.Header.Clock = in.clock
	if err := a.Begin(info); err != nil {
		t.Fatal(err)
	}
	var first, last uint64
	for _, ex := range in.exs {
		if err := a.Exchange(ex); err != nil {
			t.Fatal(err)
		}
		if first == 0 || ex.Start() < first {
			first = ex.Start()
		}
		last = max(last, ex.End())
	}
	if err := a.End(&analyze.Summary{Exchanges: len(in.exs), First: first, Last: last}); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFleetReport(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ins := fleetInputs(rng)
	for _, opts := range []Options{{}, {GroupBy: GroupByName}, {BucketNS: int64(time.Second)}} {
		parts := make([]*Aggregator, len(ins))
		for i, in := range ins {
			parts[i] = in.aggregate(t, opts)
		}
		r, err := FleetReport(parts)
		if err != nil {
			t.Fatal(err)
		}
		// Whatever the order of the parts: the same report.
		rev := []*Aggregator{parts[3], parts[1], parts[0], parts[2]}
		if r2, err := FleetReport(rev); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("report depends on the order of the inputs (err %v)", err)
		}

		// One aggregator over every exchange on one clock is what the
		// fleet row must equal: counts exactly, percentiles from the
		// merged sketches (the same buckets, so the same values).
		ref := New(Options{GroupBy: GroupByName, BucketNS: opts.BucketNS})
		if err := ref.Begin(&analyze.CaptureInfo{Path: "all", Format: "rewind"}); err != nil {
			t.Fatal(err)
		}
		total := 0
		perHost := map[string]int{}
		for _, in := range ins {
			for j, ex := range in.exs {
				c := *ex
				shift := uint64(in.walls[j]) - ex.Start()
				c.Request.Start += shift
				c.Request.End += shift
				c.Response.Start += shift
				c.Response.End += shift
				if err := ref.Exchange(&c); err != nil {
					t.Fatal(err)
				}
			}
			total += len(in.exs)
			perHost[in.host] += len(in.exs)
		}
		if err := ref.End(nil); err != nil {
			t.Fatal(err)
		}
		want := ref.Report().Services[0]

		var fleet *Service
		hosts := map[string]int{}
		for i := range r.Services {
			s := &r.Services[i]
			switch {
			case s.Fleet:
				if fleet != nil {
					t.Fatalf("two fleet rows: %s and %s", fleet.Name(), s.Name())
				}
				fleet = s
			default:
				hosts[s.Host] += s.Count
			}
		}
		if fleet == nil {
			t.Fatalf("no fleet row in %d services", len(r.Services))
		}
		if !reflect.DeepEqual(hosts, perHost) {
			t.Errorf("host rows count %v, want %v", hosts, perHost)
		}
		if !reflect.DeepEqual(fleet.Hosts, []string{"node-a", "node-b", "node-c"}) {
			t.Errorf("fleet row hosts %v", fleet.Hosts)
		}
		if opts.GroupBy == GroupByService && fleet.Addr != ":80" {
			t.Errorf("fleet row address %q, want :80", fleet.Addr)
		}
		if fleet.Name() != "nginx (fleet: 3 hosts)" {
			t.Errorf("fleet row name %q", fleet.Name())
		}
		if fleet.Count != total || fleet.Count != want.Count || fleet.Status5xx != want.Status5xx || fleet.Errors != want.Errors {
			t.Errorf("fleet row: %d exchanges, %d 5xx; one aggregator: %d, %d", fleet.Count, fleet.Status5xx, want.Count, want.Status5xx)
		}
		if fleet.Total.Exact || fleet.Total.P50 != want.Total.P50 || fleet.Total.P99 != want.Total.P99 || fleet.Total.Max != want.Total.Max {
			t.Errorf("fleet total latency %+v, one aggregator %+v", fleet.Total, want.Total)
		}
		for j, e := range fleet.Endpoints {
			w := want.Endpoints[j]
			if e.Key != w.Key || e.Count != w.Count || e.Total.P99 != w.Total.P99 {
				t.Errorf("fleet endpoint %v: %d, p99 %d; one aggregator %v: %d, p99 %d", e.Key, e.Count, e.Total.P99, w.Key, w.Count, w.Total.P99)
			}
		}

		// The series: every exchange in the bucket of the grid of whole
		// bucket widths since the epoch that holds its wall-clock start.
		W := r.BucketNS
		if opts.BucketNS != 0 && W != opts.BucketNS {
			t.Errorf("bucket %d, asked for %d", W, opts.BucketNS)
		}
		origin := r.Capture.Start.UnixNano() + fleet.Series[0].OffsetNS
		if origin%W != 0 {
			t.Errorf("series origin %d is not on the %d ns grid", origin, W)
		}
		counts := make([]int, len(fleet.Series))
		for _, in := range ins {
			for _, wall := range in.walls {
				counts[(wall-origin)/W]++
			}
		}
		for i, p := range fleet.Series {
			if p.Count != counts[i] {
				t.Fatalf("bucket %d: %d exchanges, want %d", i, p.Count, counts[i])
			}
		}
		if len(r.Inputs) != 4 || r.Inputs[0].Path != "a/1.rwd" || r.Capture.Exchanges != total {
			t.Errorf("inputs %d, first %q, exchanges %d", len(r.Inputs), r.Inputs[0].Path, r.Capture.Exchanges)
		}
	}
}

func TestFleetReportRefusesParts(t *testing.T) {
	if _, err := FleetReport(nil); err == nil {
		t.Error("no parts: no error")
	}
	if _, err := FleetReport([]*Aggregator{New(Options{})}); err == nil {
		t.Error("a part not in fleet mode: no error")
	}
	in := fleetInputs(rand.New(rand.NewPCG(3, 4)))[0]
	a, b := in.aggregate(t, Options{}), in.aggregate(t, Options{})
	if _, err := FleetReport([]*Aggregator{a, b}); err == nil {
		t.Error("one input twice: no error")
	}
}
