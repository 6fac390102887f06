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
	"net/netip"
	"slices"
	"strings"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
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
// exchange and should not allocate in the common case.
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

// Options configure an [Aggregator]. The zero value is usable.
type Options struct {
	// Endpoint keys exchanges into endpoints; nil means [MethodHostRoute].
	Endpoint EndpointFunc
	// MaxEndpoints caps distinct endpoints per service; 0 means
	// [DefaultMaxEndpoints].
	MaxEndpoints int
}

// Aggregator is an [analyze.Sink] that builds a [Report]. Call Report after
// End.
type Aggregator struct {
	endpoint     EndpointFunc
	maxEndpoints int

	info     *analyze.CaptureInfo
	services map[serviceKey]*service
	// The last connection's service: consecutive exchanges mostly share a
	// connection, which spares a map lookup.
	lastConn *analyze.Conn
	lastSvc  *service

	exchanges   int
	flags       [16]int
	first, last uint64 // exchange time bounds, for captures without a summary

	report *Report
}

// New returns an Aggregator.
func New(opts Options) *Aggregator {
	a := &Aggregator{
		endpoint:     opts.Endpoint,
		maxEndpoints: opts.MaxEndpoints,
		services:     make(map[serviceKey]*service),
	}
	if a.endpoint == nil {
		a.endpoint = MethodHostRoute
	}
	if a.maxEndpoints <= 0 {
		a.maxEndpoints = DefaultMaxEndpoints
	}
	return a
}

type serviceKey struct {
	role capture.Role
	pid  uint32
	comm string
	addr netip.AddrPort // the server address, only when pid is 0
}

type service struct {
	key       serviceKey
	endpoints map[EndpointKey]*acc
	other     *acc
}

// acc accumulates the Stats of one endpoint.
type acc struct {
	count, responses, ok  int
	status                [6]int // 1xx … 5xx, other
	incomplete            int
	reqBytes, respBytes   int64
	server, transfer, net dist
	total                 dist
}

// Begin implements [analyze.Sink].
func (a *Aggregator) Begin(info *analyze.CaptureInfo) error {
	a.info = info
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
	if s, e := ex.Start(), ex.End(); s != 0 {
		if a.first == 0 || s < a.first {
			a.first = s
		}
		if e > a.last {
			a.last = e
		}
	}

	svc := a.service(ex.Conn)
	k := a.endpoint(ex)
	ep := svc.endpoints[k]
	if ep == nil {
		if len(svc.endpoints) < a.maxEndpoints {
			ep = new(acc)
			svc.endpoints[k] = ep
		} else {
			if svc.other == nil {
				svc.other = new(acc)
			}
			ep = svc.other
		}
	}
	ep.add(ex)
	return nil
}

func (a *Aggregator) service(c *analyze.Conn) *service {
	if c != nil && c == a.lastConn {
		return a.lastSvc
	}
	var k serviceKey
	if c != nil {
		k = serviceKey{role: c.Role, pid: c.PID, comm: c.Comm}
		if c.PID == 0 {
			k.addr = c.Local
			if c.Role == capture.RoleClient {
				k.addr = c.Remote
			}
		}
	}
	svc := a.services[k]
	if svc == nil {
		svc = &service{key: k, endpoints: make(map[EndpointKey]*acc)}
		a.services[k] = svc
	}
	a.lastConn, a.lastSvc = c, svc
	return svc
}

func (e *acc) add(ex *analyze.Exchange) {
	e.count++
	if st := ex.Response.Status; st != 0 {
		e.responses++
		if st < 500 || st > 599 {
			e.ok++
		}
		if st >= 100 && st <= 599 {
			e.status[st/100-1]++
		} else {
			e.status[5]++
		}
	}
	if ex.Response.Status == 0 || ex.Flags&(analyze.FlagIncomplete|analyze.FlagNoResponse) != 0 {
		e.incomplete++
	}
	if n := ex.Request.BodyBytes; n > 0 {
		e.reqBytes += n
	}
	if n := ex.Response.BodyBytes; n > 0 {
		e.respBytes += n
	}
	e.server.add(ex.Timings.Server)
	e.transfer.add(ex.Timings.Transfer)
	e.net.add(ex.Timings.Network)
	e.total.add(ex.Timings.Total)
}

func (e *acc) merge(o *acc) {
	e.count += o.count
	e.responses += o.responses
	e.ok += o.ok
	for i := range e.status {
		e.status[i] += o.status[i]
	}
	e.incomplete += o.incomplete
	e.reqBytes += o.reqBytes
	e.respBytes += o.respBytes
	e.server.merge(&o.server)
	e.transfer.merge(&o.transfer)
	e.net.merge(&o.net)
	e.total.merge(&o.total)
}

func (e *acc) stats(spanNS int64) Stats {
	s := Stats{
		Count:         e.count,
		Responses:     e.responses,
		Availability:  -1,
		Status1xx:     e.status[0],
		Status2xx:     e.status[1],
		Status3xx:     e.status[2],
		Status4xx:     e.status[3],
		Status5xx:     e.status[4],
		StatusOther:   e.status[5],
		Incomplete:    e.incomplete,
		ReqBodyBytes:  e.reqBytes,
		RespBodyBytes: e.respBytes,
		Server:        e.server.latency(),
		Transfer:      e.transfer.latency(),
		Network:       e.net.latency(),
		Total:         e.total.latency(),
	}
	if spanNS > 0 {
		s.Rate = float64(e.count) / (float64(spanNS) / 1e9)
	}
	if e.responses > 0 {
		s.Availability = float64(e.ok) / float64(e.responses)
	}
	return s
}

// End implements [analyze.Sink]: it builds the report.
func (a *Aggregator) End(sum *analyze.Summary) error {
	r := &Report{
		RelativeAccuracy: RelativeAccuracy,
		ExactLimit:       ExactLimit,
		MaxEndpoints:     a.maxEndpoints,
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

	for _, svc := range a.services {
		r.Services = append(r.Services, svc.build(c.SpanNS))
	}
	slices.SortFunc(r.Services, compareServices)
	a.report = r
	return nil
}

func (svc *service) build(spanNS int64) Service {
	out := Service{
		Role: svc.key.role.String(),
		PID:  svc.key.pid,
		Comm: svc.key.comm,
	}
	if svc.key.addr.IsValid() {
		out.Addr = svc.key.addr.String()
	}
	var total acc
	// Merge in sorted order: sketch merging is order-independent, but the
	// exact values' order is then fixed too.
	keys := make([]EndpointKey, 0, len(svc.endpoints))
	for k := range svc.endpoints {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		e := svc.endpoints[k]
		total.merge(e)
		out.Endpoints = append(out.Endpoints, Endpoint{Key: k, Stats: e.stats(spanNS)})
	}
	slices.SortStableFunc(out.Endpoints, func(a, b Endpoint) int { return cmp.Compare(b.Count, a.Count) })
	if svc.other != nil {
		total.merge(svc.other)
		out.Endpoints = append(out.Endpoints, Endpoint{Key: OtherKey, Other: true, Stats: svc.other.stats(spanNS)})
	}
	out.Stats = total.stats(spanNS)
	return out
}

func compareKeys(a, b EndpointKey) int {
	return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Method, b.Method))
}

var roleOrder = map[string]int{"server": 0, "client": 1, "unknown": 2}

func compareServices(a, b Service) int {
	return cmp.Or(
		cmp.Compare(roleOrder[a.Role], roleOrder[b.Role]),
		cmp.Compare(a.Comm, b.Comm),
		cmp.Compare(a.PID, b.PID),
		cmp.Compare(a.Addr, b.Addr),
	)
}

// Report returns the report built by End, or nil before End.
func (a *Aggregator) Report() *Report { return a.report }
