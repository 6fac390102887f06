// Package sli aggregates exchanges into service level indicators: per
// service (a process in one role) and per endpoint, counts, rates,
// availability, status classes and latency percentiles of the server,
// transfer, network and total timings.
//
// An [Aggregator] is an [analyze.Sink]; its memory grows with the number of
// services and endpoints, never with the number of exchanges: each service
// keeps at most [Options.MaxEndpoints] endpoints and folds the rest into
// one "other" endpoint, and latency distributions hold at most [ExactLimit]
// values before switching to a bounded DDSketch.
package sli

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/container"
)

// DefaultMaxEndpoints is the default cap on distinct endpoints per service.
const DefaultMaxEndpoints = 1000

// EndpointKey identifies an endpoint within a service.
type EndpointKey struct {
	Method string
	Host   string
	// Path is the request path, or a route template ("/users/{id}") when
	// the [EndpointFunc] in use knows routes.
	Path string
}

// String returns "GET example.com/path".
func (k EndpointKey) String() string {
	m := k.Method
	if m == "" {
		m = "-"
	}
	return m + " " + k.Host + k.Path
}

// OtherKey is the key of the endpoint that collects a service's endpoints
// beyond its cap.
var OtherKey = EndpointKey{Method: "*", Host: "", Path: "(other)"}

// EndpointFunc maps an exchange to its endpoint. It is called once per
// exchange and should not allocate in the common case. It must not keep ex
// (its strings it may): see [analyze.KeepsNoExchangeSink].
type EndpointFunc func(ex *analyze.Exchange) EndpointKey

// MethodHostPath is the default [EndpointFunc]: the request's method, its
// host in lower case, and its path without the query.
func MethodHostPath(ex *analyze.Exchange) EndpointKey {
	return EndpointKey{
		Method: ex.Request.Method,
		Host:   strings.ToLower(ex.Request.Host),
		Path:   ex.Request.Path,
	}
}

// Defaults of [Options].
const (
	DefaultMaxChildren = 50
	DefaultApdexT      = 500_000_000 // ns
	// AutoBuckets caps an automatic series' length (BucketNS 0): the
	// width is the first of 1, 2, 10, 20, 100, 200 ms, 1 s, … that gives
	// the capture at most this many buckets.
	AutoBuckets = 150
	// MaxBuckets caps a time series' length: a longer capture gets wider
	// buckets (the width doubles until it fits).
	MaxBuckets = 600
)

// VarSegment is the placeholder of a path segment that took more than
// [Options.MaxChildren] distinct values under one prefix.
const VarSegment = "{var}"

// Options configure an [Aggregator]. The zero value is usable.
type Options struct {
	// Endpoint keys exchanges into endpoints; nil means a [Router] over
	// Routes (route templates where no route matches).
	Endpoint EndpointFunc
	// Routes are user-given route patterns tried before the automatic
	// template; ignored when Endpoint is set.
	Routes []Route
	// MaxEndpoints caps distinct endpoints per service; 0 means
	// [DefaultMaxEndpoints].
	MaxEndpoints int
	// MaxChildren: once the segments following one path prefix of a
	// service took more than MaxChildren distinct values, that segment
	// becomes [VarSegment] for every path under the prefix (endpoints
	// already seen are folded in at the end, so the result does not depend
	// on when the limit was reached). 0 means [DefaultMaxChildren], a
	// negative value disables it.
	MaxChildren int
	// ApdexT is the Apdex threshold on total latency in ns; 0 means
	// [DefaultApdexT].
	ApdexT int64
	// BucketNS is the time series' bucket width in ns; 0 means automatic:
	// the first of 1, 2, 10, 20, 100 ms, … that gives the capture at most
	// [AutoBuckets] buckets.
	BucketNS int64
	// Objectives are evaluated into [Report.Objectives].
	Objectives []Objective
	// GroupBy says how exchanges are gathered into services; the zero
	// value is [GroupByService].
	GroupBy GroupBy
	// IgnoreHost leaves the Host out of endpoint keys: endpoints are the
	// method and route of each service, whatever server address or name
	// the client used. `rewind diff` matches endpoints this way by
	// default, so a server back on another port is the same service.
	IgnoreHost bool
	// Fleet makes the aggregator one input of an analysis of several
	// (see [FleetReport]): its services are keyed by the input's host
	// ([analyze.CaptureInfo.HostName]) and its time series are bucketed in
	// wall-clock time on a grid of whole multiples of the bucket width
	// since the Unix epoch, so that the series of inputs from different
	// hosts and clocks merge exactly.
	Fleet bool
}

// GroupBy is how exchanges are gathered into services.
type GroupBy int

// Groupings.
const (
	// GroupByService makes one service of the processes of one role and
	// command name that talk to one server address (nginx's workers on
	// :8080; 70 runs of curl against one server): its [Service].PID is 0
	// and PIDs lists the processes.
	GroupByService GroupBy = iota
	// GroupByPID makes one service per process and role (the pid is the
	// service), whatever the server addresses.
	GroupByPID
	// GroupByName makes one service of the processes of one role and
	// command name whatever the server address: `rewind diff` compares
	// services this way unless told to match hosts, since pids and ports
	// change between captures.
	GroupByName
)

// ParseGroupBy reads --group-by: "service", "pid" or "name".
func ParseGroupBy(s string) (GroupBy, error) {
	switch s {
	case "service", "":
		return GroupByService, nil
	case "pid":
		return GroupByPID, nil
	case "name":
		return GroupByName, nil
	}
	return 0, fmt.Errorf("group services by service (command name and server address), pid or name, not %q", s)
}

// Aggregator is an [analyze.Sink] that builds a [Report]. Call Report after
// End.
type Aggregator struct {
	// hostNS is the recorder's network namespace in the current input
	// (Begin): services in other namespaces are told apart by theirs.
	hostNS   uint64
	endpoint EndpointFunc
	// router makes the keys when Options.Endpoint is nil, called directly
	// (Router.endpointInto) rather than through a function value.
	router       *Router
	ignoreHost   bool        // drop the Host from every key
	key          EndpointKey // the current exchange's, from router
	groupBy      GroupBy
	maxEndpoints int
	maxChildren  int
	apdexT       int64
	objectives   []Objective

	// Time series: bucket i covers [origin + i·width, origin + (i+1)·width).
	origin         uint64
	latest         uint64 // the latest start seen
	width, reqWide int64
	auto           bool // width follows the span (BucketNS 0)

	// Fleet mode ([Options.Fleet]): the input's host, and what its
	// monotonic times add to become wall-clock (Unix) ns.
	fleet bool
	host  string
	shift int64

	info     *analyze.CaptureInfo
	services map[serviceKey]*service
	// The last exchange's service: consecutive exchanges mostly share one,
	// which spares a map lookup.
	lastSvc *service
	// The last endpoint found under its own key in its service, for the
	// same reason.
	lastEP    *acc
	lastEPSvc *service
	lastEPKey EndpointKey

	// buf and intern build collapsed paths without allocating.
	buf    []byte
	intern map[string]string

	exchanges   int
	flags       [16]int
	first, last uint64 // exchange time bounds, for captures without a summary

	report *Report
}

// New returns an Aggregator.
func New(opts Options) *Aggregator {
	a := &Aggregator{
		endpoint:     opts.Endpoint,
		groupBy:      opts.GroupBy,
		maxEndpoints: opts.MaxEndpoints,
		maxChildren:  opts.MaxChildren,
		apdexT:       opts.ApdexT,
		width:        opts.BucketNS,
		objectives:   opts.Objectives,
		fleet:        opts.Fleet,
		services:     make(map[serviceKey]*service),
		intern:       make(map[string]string),
	}
	if a.endpoint == nil {
		a.router = NewRouter(opts.Routes)
	}
	a.ignoreHost = opts.IgnoreHost
	if a.maxEndpoints <= 0 {
		a.maxEndpoints = DefaultMaxEndpoints
	}
	if a.maxChildren == 0 {
		a.maxChildren = DefaultMaxChildren
	}
	if a.apdexT <= 0 {
		a.apdexT = DefaultApdexT
	}
	if a.width <= 0 {
		a.width, a.auto = autoWidths[0], true
	}
	a.reqWide = a.width
	if a.auto {
		a.reqWide = 0
	}
	return a
}

type serviceKey struct {
	host  string // the input's host, in fleet mode only
	fleet bool   // a fleet row (see [FleetReport])
	role  capture.Role
	pid   uint32
	comm  string
	ctr   string         // container id: processes of two containers are two services
	netns uint64         // network namespace, when not the recorder's (0)
	addr  netip.AddrPort // the server address, only when pid is 0
}

type service struct {
	key       serviceKey
	ctr       container.Info
	hosts     []string // a fleet row's hosts, sorted
	pids      []uint32 // sorted
	lastPID   uint32
	endpoints map[EndpointKey]*acc
	other     *acc
	// children holds, per path prefix ("/a/"), the distinct segments that
	// followed it, up to the limit; varPrefix the prefixes beyond it.
	children  map[string]map[string]struct{}
	varPrefix map[string]bool
}

// acc accumulates the Stats of one endpoint.
type acc struct {
	count, responses, ok  int
	status                [6]int // 1xx … 5xx, other
	incomplete, reset     int
	broken                int // reset or incomplete
	grpcErrors, errors    int
	satisfied, tolerating int
	apdexN                int
	reqBytes, respBytes   int64
	server, transfer, net dist
	total                 dist
	series                []bucket
}

// bucket is one time bucket of an endpoint's series.
type bucket struct {
	count, errors int32
	total         dist
}

// The optional sink interfaces the replay finds by type assertion.
var (
	_ analyze.HeaderLookupSink    = (*Aggregator)(nil)
	_ analyze.KeepsNoExchangeSink = (*Aggregator)(nil)
)

// HeaderLookupOnly reports that the aggregator reads no header fields: see
// [analyze.HeaderLookupSink].
func (a *Aggregator) HeaderLookupOnly() bool { return true }

// KeepsNoExchange reports that the aggregator keeps no exchange (only
// strings of some): see [analyze.KeepsNoExchangeSink].
func (a *Aggregator) KeepsNoExchange() bool { return true }

// Begin implements [analyze.Sink].
func (a *Aggregator) Begin(info *analyze.CaptureInfo) error {
	a.info = info
	a.hostNS = 0
	if info != nil {
		a.hostNS = info.Header.NetNS
	}
	if a.fleet && info != nil {
		a.host, a.shift = info.HostName(), info.WallOffset()
	}
	return nil
}

// Exchange implements [analyze.Sink].
func (a *Aggregator) Exchange(ex *analyze.Exchange) error {
	a.exchanges++
	for f, i := ex.Flags, 0; f != 0; f, i = f>>1, i+1 {
		if f&1 != 0 {
			a.flags[i]++
		}
	}
	idx := -1
	if s, e := ex.Start(), ex.End(); s != 0 {
		if a.first == 0 || s < a.first {
			a.first = s
		}
		if e > a.last {
			a.last = e
		}
		idx = a.bucketIndex(s)
	}

	svc := a.service(ex.Conn)
	k := &a.key
	if a.router != nil {
		a.router.endpointInto(ex, k)
	} else {
		*k = a.endpoint(ex)
	}
	if a.ignoreHost {
		k.Host = ""
	}
	var ep *acc
	if a.lastEP != nil && a.lastEPSvc == svc && a.lastEPKey == *k {
		ep = a.lastEP
	} else if ep = svc.endpoints[*k]; ep != nil {
		a.lastEP, a.lastEPSvc, a.lastEPKey = ep, svc, *k
	} else {
		ep = a.newEndpoint(svc, *k)
	}
	ep.add(ex, a.apdexT, idx)
	return nil
}

// bucketIndex returns the series bucket of start time s, widening the
// buckets when s lies beyond [MaxBuckets]. The first exchange sets the
// series' origin: its start, or in fleet mode the start of the wall-clock
// grid's bucket it falls in (s is then converted to wall-clock ns).
func (a *Aggregator) bucketIndex(s uint64) int {
	if a.fleet {
		s = uint64(int64(s) + a.shift)
	}
	if a.origin == 0 {
		a.origin = a.align(s, a.width)
	}
	if s < a.origin && a.fleet {
		// An exchange that started before the first one delivered: the
		// series grows back to it (outside fleet mode, such exchanges,
		// a reorder window early at most, count in the first bucket).
		o := a.align(s, a.width)
		a.shiftSeries(1, int((a.origin-o)/uint64(a.width)))
		a.origin = o
	}
	a.latest = max(a.latest, s)
	if s <= a.origin {
		return 0
	}
	limit := int64(MaxBuckets)
	if a.auto {
		limit = AutoBuckets
	}
	for int64(a.latest-a.origin)/a.width >= limit {
		a.widen(a.widenBy())
	}
	return int(int64(s-a.origin) / a.width)
}

// align returns the start of the bucket of width w that holds t: t itself
// outside fleet mode, whose series start at their first exchange.
func (a *Aggregator) align(t uint64, w int64) uint64 {
	if !a.fleet {
		return t
	}
	return t - t%uint64(w)
}

// widen makes the buckets factor times wider, merging every series'
// buckets into the new ones (in fleet mode the origin moves back to the
// wider grid, which shifts the old buckets by whole buckets).
func (a *Aggregator) widen(factor int) {
	w := a.width * int64(factor)
	origin := a.align(a.origin, w)
	shift := int((a.origin - origin) / uint64(a.width))
	a.width, a.origin = w, origin
	a.shiftSeries(factor, shift)
}

// shiftSeries rebuckets every series (see [acc.rebucket]).
func (a *Aggregator) shiftSeries(factor, shift int) {
	for _, svc := range a.services {
		for _, e := range svc.endpoints {
			e.rebucket(factor, shift)
		}
		if svc.other != nil {
			svc.other.rebucket(factor, shift)
		}
	}
}

// autoWidths are the bucket widths an automatic series steps through, each
// a whole multiple of the one before (a series is widened by merging
// buckets): 1, 2, 10, 20, 100, 200 ms, 1, 2, 10, 20 s, 1, 2, 10, 20 min, 1 h;
// beyond, it doubles.
var autoWidths = []int64{1e6, 2e6, 10e6, 20e6, 100e6, 200e6, 1e9, 2e9, 10e9, 20e9, 60e9, 120e9, 600e9, 1200e9, 3600e9}

// widenBy returns the factor by which the buckets widen next.
func (a *Aggregator) widenBy() int {
	if a.auto {
		for i, w := range autoWidths[:len(autoWidths)-1] {
			if w == a.width {
				return int(autoWidths[i+1] / w)
			}
		}
	}
	return 2
}

// newEndpoint finds or makes the accumulator of a key that is not (yet) in
// svc.endpoints: the key's collapsed form's, or a new one under the cap, or
// the service's other.
func (a *Aggregator) newEndpoint(svc *service, k EndpointKey) *acc {
	if len(svc.varPrefix) > 0 {
		if p, changed := a.collapse(svc, k.Path); changed {
			k.Path = p
			if ep := svc.endpoints[k]; ep != nil {
				return ep
			}
		}
	}
	if len(svc.endpoints) >= a.maxEndpoints {
		if svc.other == nil {
			svc.other = new(acc)
		}
		return svc.other
	}
	ep := new(acc)
	svc.endpoints[k] = ep
	if a.maxChildren > 0 {
		a.countChildren(svc, k.Path)
	}
	return ep
}

// countChildren records the segments of a new endpoint's path under their
// prefixes, marking prefixes with too many distinct children.
func (a *Aggregator) countChildren(svc *service, path string) {
	if svc.children == nil {
		svc.children = make(map[string]map[string]struct{})
		svc.varPrefix = make(map[string]bool)
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		prefix := path[:i+1]
		if svc.varPrefix[prefix] {
			continue
		}
		seg, _, _ := strings.Cut(path[i+1:], "/")
		if seg == "" || seg[0] == '{' {
			continue
		}
		set := svc.children[prefix]
		if set == nil {
			set = make(map[string]struct{})
			svc.children[prefix] = set
		}
		set[seg] = struct{}{}
		if len(set) > a.maxChildren {
			svc.varPrefix[prefix] = true
			delete(svc.children, prefix)
		}
	}
}

// collapse replaces the segments following svc's variable prefixes with
// [VarSegment].
func (a *Aggregator) collapse(svc *service, path string) (string, bool) {
	b := a.buf[:0]
	changed := false
	for i := 0; i < len(path); {
		j := strings.IndexByte(path[i:], '/')
		if j < 0 {
			b = append(b, path[i:]...)
			break
		}
		b = append(b, path[i:i+j+1]...)
		i += j + 1
		seg, _, _ := strings.Cut(path[i:], "/")
		if seg != "" && seg[0] != '{' && svc.varPrefix[string(b)] {
			b = append(b, VarSegment...)
			i += len(seg)
			changed = true
		}
	}
	a.buf = b
	if !changed {
		return path, false
	}
	if s, ok := a.intern[string(b)]; ok {
		return s, true
	}
	s := string(b)
	if len(a.intern) < maxInterned {
		a.intern[s] = s
	}
	return s, true
}

func (a *Aggregator) service(c *analyze.Conn) *service {
	var k serviceKey
	var pid uint32
	var ctr container.Info
	if c != nil {
		ctr = c.Container
		k = serviceKey{role: c.Role, pid: c.PID, comm: c.Comm, ctr: c.Container.ID}
		if c.NetNS != a.hostNS {
			// Two servers on one address in two namespaces are two
			// services.
			k.netns = c.NetNS
		}
		pid = c.PID
		server := c.Local
		if c.Role == capture.RoleClient {
			server = c.Remote
		}
		switch {
		case c.PID == 0 || c.Comm == "":
			// No process to name the service (pcap input): its server.
			k.addr = server
		case a.groupBy == GroupByService:
			k.pid, k.addr = 0, server
		case a.groupBy == GroupByName:
			k.pid = 0
		}
	}
	svc := a.lastSvc
	k.host = a.host
	if svc == nil || svc.key != k {
		svc = a.services[k]
		if svc == nil {
			svc = &service{key: k, ctr: ctr, endpoints: make(map[EndpointKey]*acc)}
			a.services[k] = svc
		}
		a.lastSvc = svc
	}
	if pid != 0 && pid != svc.lastPID {
		svc.addPID(pid)
	}
	return svc
}

// addPID notes a process of the service (kept sorted, without repeats).
func (svc *service) addPID(pid uint32) {
	svc.lastPID = pid
	if i, found := slices.BinarySearch(svc.pids, pid); !found {
		svc.pids = slices.Insert(svc.pids, i, pid)
	}
}

func (e *acc) add(ex *analyze.Exchange, apdexT int64, idx int) {
	e.count++
	st := ex.Response.Status
	isErr := st >= 500 && st <= 599
	if st != 0 {
		e.responses++
		if !isErr {
			e.ok++
		}
		if st >= 100 && st <= 599 {
			e.status[st/100-1]++
		} else {
			e.status[5]++
		}
	}
	if st == 0 || ex.Flags&(analyze.FlagIncomplete|analyze.FlagNoResponse) != 0 {
		e.incomplete++
	}
	if ex.Flags&analyze.FlagReset != 0 {
		e.reset++
		isErr = true
	}
	if g := ex.GRPC; g != nil && g.Status > 0 {
		e.grpcErrors++
		isErr = true
	}
	if isErr {
		e.errors++
	}
	if st == 0 || ex.Flags&(analyze.FlagIncomplete|analyze.FlagNoResponse|analyze.FlagReset) != 0 {
		e.broken++
	}
	if n := ex.Request.BodyBytes; n > 0 {
		e.reqBytes += n
	}
	if n := ex.Response.BodyBytes; n > 0 {
		e.respBytes += n
	}
	total := ex.Timings.Total
	switch {
	case isErr:
		e.apdexN++
	case total < 0:
	case total <= apdexT:
		e.apdexN++
		e.satisfied++
	case total <= 4*apdexT:
		e.apdexN++
		e.tolerating++
	default:
		e.apdexN++
	}
	e.server.add(ex.Timings.Server)
	e.transfer.add(ex.Timings.Transfer)
	e.net.add(ex.Timings.Network)
	e.total.add(total)
	if idx >= 0 {
		for len(e.series) <= idx {
			e.series = append(e.series, bucket{})
		}
		b := &e.series[idx]
		b.count++
		if isErr {
			b.errors++
		}
		b.total.add(total)
	}
}

// rebucket merges every factor consecutive buckets into one, the first
// shift (old) buckets of the new series being empty.
func (e *acc) rebucket(factor, shift int) {
	if len(e.series) == 0 {
		return
	}
	n := (len(e.series) + shift + factor - 1) / factor
	out := make([]bucket, n)
	for i := range e.series {
		if j := (i + shift) / factor; i == 0 || (i+shift)%factor == 0 {
			// The first of the group: the old series is dropped, so its
			// bucket is taken as it is rather than merged into an empty
			// one (a new sketch for every bucket, otherwise).
			out[j] = e.series[i]
			continue
		}
		out[(i+shift)/factor].merge(&e.series[i])
	}
	e.series = out
}

func (b *bucket) merge(o *bucket) {
	b.count += o.count
	b.errors += o.errors
	b.total.merge(&o.total)
}

func (e *acc) merge(o *acc) {
	e.count += o.count
	e.responses += o.responses
	e.ok += o.ok
	for i := range e.status {
		e.status[i] += o.status[i]
	}
	e.incomplete += o.incomplete
	e.reset += o.reset
	e.broken += o.broken
	e.grpcErrors += o.grpcErrors
	e.errors += o.errors
	e.satisfied += o.satisfied
	e.tolerating += o.tolerating
	e.apdexN += o.apdexN
	e.reqBytes += o.reqBytes
	e.respBytes += o.respBytes
	e.server.merge(&o.server)
	e.transfer.merge(&o.transfer)
	e.net.merge(&o.net)
	e.total.merge(&o.total)
	for len(e.series) < len(o.series) {
		e.series = append(e.series, bucket{})
	}
	for i := range o.series {
		e.series[i].merge(&o.series[i])
	}
}

// stats summarises e; offsetNS is the first bucket's start from the
// capture's start, width the buckets' width.
func (e *acc) stats(spanNS, offsetNS, width int64) Stats {
	s := Stats{
		Count:             e.count,
		Responses:         e.responses,
		Availability:      -1,
		Status1xx:         e.status[0],
		Status2xx:         e.status[1],
		Status3xx:         e.status[2],
		Status4xx:         e.status[3],
		Status5xx:         e.status[4],
		StatusOther:       e.status[5],
		Incomplete:        e.incomplete,
		Reset:             e.reset,
		ResetOrIncomplete: e.broken,
		GRPCErrors:        e.grpcErrors,
		Errors:            e.errors,
		Apdex:             -1,
		ApdexSamples:      e.apdexN,
		ReqBodyBytes:      e.reqBytes,
		RespBodyBytes:     e.respBytes,
		Server:            e.server.latency(),
		Transfer:          e.transfer.latency(),
		Network:           e.net.latency(),
		Total:             e.total.latency(),
		Histogram:         e.total.histogram(),
	}
	if spanNS > 0 {
		s.Rate = float64(e.count) / (float64(spanNS) / 1e9)
	}
	if e.responses > 0 {
		s.Availability = float64(e.ok) / float64(e.responses)
	}
	if e.count > 0 {
		s.ErrorRate = float64(e.errors) / float64(e.count)
	}
	if e.apdexN > 0 {
		s.Apdex = (float64(e.satisfied) + float64(e.tolerating)/2) / float64(e.apdexN)
	}
	s.Series = points(e.series, offsetNS, width)
	return s
}

// points turns a series' buckets into report points; nil for none.
func points(series []bucket, offsetNS, width int64) []Point {
	if len(series) == 0 {
		return nil
	}
	out := make([]Point, len(series))
	for i := range series {
		b := &series[i]
		out[i] = Point{
			OffsetNS: offsetNS + int64(i)*width,
			Count:    int(b.count), Errors: int(b.errors),
			P99: b.total.quantile(0.99),
		}
	}
	return out
}

// overview merges the series of every server-side endpoint (of every
// endpoint when there is no server side), in a fixed order.
func (a *Aggregator) overview(offsetNS int64) []Point {
	svcs := a.sortedServices()
	server := slices.ContainsFunc(svcs, func(s *service) bool { return s.key.role == capture.RoleServer })
	var all []bucket
	add := func(e *acc) {
		if e == nil {
			return
		}
		for len(all) < len(e.series) {
			all = append(all, bucket{})
		}
		for i := range e.series {
			all[i].merge(&e.series[i])
		}
	}
	for _, svc := range svcs {
		if server && svc.key.role != capture.RoleServer {
			continue
		}
		for _, k := range sortedKeys(svc) {
			add(svc.endpoints[k])
		}
		add(svc.other)
	}
	return points(all, offsetNS, a.width)
}

// End implements [analyze.Sink]: it builds the report.
func (a *Aggregator) End(sum *analyze.Summary) error {
	r := &Report{
		RelativeAccuracy:  RelativeAccuracy,
		ExactLimit:        ExactLimit,
		MaxEndpoints:      a.maxEndpoints,
		MaxChildren:       max(a.maxChildren, 0),
		ApdexT:            a.apdexT,
		BucketNS:          a.width,
		RequestedBucketNS: a.reqWide,
		BucketWidened:     !a.auto && a.width != a.reqWide,
	}
	c := &r.Capture
	c.Exchanges = a.exchanges
	first, last := a.first, a.last
	if sum != nil {
		c.Conns, c.HTTPConns, c.OtherConns = sum.Conns, sum.HTTPConns, sum.OtherConns
		c.Lost, c.Salvaged = sum.Lost, sum.Salvaged
		c.Warnings = slices.Clone(sum.Warnings)
		if sum.Last > sum.First {
			first, last = sum.First, sum.Last
		}
	}
	if last > first {
		c.SpanNS = int64(last - first)
	}
	if a.info != nil {
		c.Path, c.Format, c.Host = a.info.Path, a.info.Format, a.info.Header.Host
		if first != 0 {
			c.Start, c.End = a.info.Wall(first), a.info.Wall(last)
		}
	}
	for i, n := range a.flags {
		if n > 0 {
			for _, name := range analyze.Flags(1 << i).Names() {
				c.Flags = append(c.Flags, FlagCount{Name: name, Count: n})
			}
		}
	}

	var offset int64
	if a.origin != 0 && first != 0 {
		offset = int64(a.origin) - a.shift - int64(first)
	}
	for _, svc := range a.services {
		a.fold(svc)
		r.Services = append(r.Services, svc.build(c.SpanNS, offset, a.width))
	}
	slices.SortFunc(r.Services, compareServices)
	r.Overview = a.overview(offset)
	for _, o := range a.objectives {
		r.Objectives = append(r.Objectives, a.evaluate(o))
	}
	a.report = r
	return nil
}

// fold merges the endpoints seen before their prefix became variable into
// their collapsed endpoint.
func (a *Aggregator) fold(svc *service) {
	if len(svc.varPrefix) == 0 {
		return
	}
	keys := sortedKeys(svc)
	for _, k := range keys {
		p, changed := a.collapse(svc, k.Path)
		if !changed {
			continue
		}
		e := svc.endpoints[k]
		delete(svc.endpoints, k)
		ck := k
		ck.Path = p
		if t := svc.endpoints[ck]; t != nil {
			t.merge(e)
		} else {
			svc.endpoints[ck] = e
		}
	}
}

func sortedKeys(svc *service) []EndpointKey {
	keys := make([]EndpointKey, 0, len(svc.endpoints))
	for k := range svc.endpoints {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

func (svc *service) build(spanNS, offset, width int64) Service {
	out := Service{
		Role:      svc.key.role.String(),
		PID:       svc.key.pid,
		PIDs:      slices.Clone(svc.pids),
		Comm:      svc.key.comm,
		Container: svc.ctr,
		NetNS:     svc.key.netns,
	}
	if svc.key.addr.IsValid() {
		out.Addr = svc.key.addr.String()
	}
	var total acc
	// Merge in sorted order: sketch merging is order-independent, but the
	// exact values' order is then fixed too.
	for _, k := range sortedKeys(svc) {
		e := svc.endpoints[k]
		total.merge(e)
		out.Endpoints = append(out.Endpoints, Endpoint{Key: k, Stats: e.stats(spanNS, offset, width)})
	}
	slices.SortStableFunc(out.Endpoints, func(a, b Endpoint) int { return cmp.Compare(b.Count, a.Count) })
	if svc.other != nil {
		total.merge(svc.other)
		out.Endpoints = append(out.Endpoints, Endpoint{Key: OtherKey, Other: true, Stats: svc.other.stats(spanNS, offset, width)})
	}
	out.Stats = total.stats(spanNS, offset, width)
	return out
}

func compareKeys(a, b EndpointKey) int {
	return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Method, b.Method))
}

var roleOrder = map[string]int{"server": 0, "client": 1, "unknown": 2}

// compareServices orders services by role, command name, then (in a fleet
// report) the fleet row before each host's, then pid and address.
func compareServices(a, b Service) int {
	return cmp.Or(
		cmp.Compare(roleOrder[a.Role], roleOrder[b.Role]),
		cmp.Compare(a.Comm, b.Comm),
		-boolCmp(a.Fleet, b.Fleet),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.PID, b.PID),
		cmp.Compare(a.Addr, b.Addr),
		cmp.Compare(a.Container.ID, b.Container.ID),
		cmp.Compare(a.NetNS, b.NetNS),
	)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Report returns the report built by End, or nil before End.
func (a *Aggregator) Report() *Report { return a.report }
