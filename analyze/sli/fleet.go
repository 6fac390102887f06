package sli

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rewind-tools/rewind/analyze"
)

// FleetReport merges the aggregators of several inputs into one report:
// each service of each host (the inputs of one host merged), and, when
// there is more than one host, a fleet row per service across hosts whose
// percentiles come from the merged distributions, never from averaging
// the hosts' percentiles.
//
// Every part must have been made with the same [Options], Fleet set, and
// ended (its input replayed). The report is the same whatever the order of
// parts: they are taken in the order of their inputs' paths. Objectives
// and the overview cover the hosts' services (each exchange once). Rates
// are per second of the host's own span in host rows, and of the whole
// span (first input's start to last input's end) in fleet rows and the
// summary.
func FleetReport(parts []*Aggregator) (*Report, error) {
	if len(parts) == 0 {
		return nil, errors.New("a fleet report needs at least one input")
	}
	for _, p := range parts {
		if !p.fleet || p.report == nil {
			return nil, errors.New("every part of a fleet report must be an ended aggregator made with Options.Fleet")
		}
	}
	parts = slices.Clone(parts)
	slices.SortStableFunc(parts, func(x, y *Aggregator) int {
		return cmp.Or(cmp.Compare(x.report.Capture.Path, y.report.Capture.Path), cmp.Compare(x.host, y.host))
	})
	for i := 1; i < len(parts); i++ {
		if parts[i].report.Capture.Path == parts[i-1].report.Capture.Path {
			return nil, fmt.Errorf("input %s is given twice", parts[i].report.Capture.Path)
		}
	}
	p0 := parts[0]
	m := &Aggregator{
		endpoint: p0.endpoint, groupBy: p0.groupBy,
		maxEndpoints: p0.maxEndpoints, maxChildren: p0.maxChildren,
		apdexT: p0.apdexT, objectives: p0.objectives,
		auto: p0.auto, reqWide: p0.reqWide, width: p0.width,
		fleet:    true,
		services: make(map[serviceKey]*service),
		intern:   make(map[string]string),
	}
	r := &Report{
		RelativeAccuracy:  RelativeAccuracy,
		ExactLimit:        ExactLimit,
		MaxEndpoints:      m.maxEndpoints,
		MaxChildren:       max(m.maxChildren, 0),
		ApdexT:            m.apdexT,
		RequestedBucketNS: m.reqWide,
	}

	// The common grid: the widest part's buckets, widened further until
	// the whole span fits, from the earliest part's origin.
	var end uint64
	for _, p := range parts {
		m.width = max(m.width, p.width)
		if p.origin != 0 && (m.origin == 0 || p.origin < m.origin) {
			m.origin = p.origin
		}
		if p.last != 0 {
			end = max(end, uint64(int64(p.last)+p.shift))
		}
	}
	if m.origin != 0 {
		limit := int64(MaxBuckets)
		if m.auto {
			limit = AutoBuckets
		}
		for {
			o := m.align(m.origin, m.width)
			if end <= o || int64(end-o)/m.width < limit {
				m.origin = o
				break
			}
			m.width *= int64(m.widenBy())
		}
	}
	r.BucketNS = m.width
	r.BucketWidened = !m.auto && m.width != m.reqWide

	// Each host's services, the inputs of one host merged.
	hostSpan := map[string][2]time.Time{}
	c := &r.Capture
	formats := map[string]bool{}
	for _, p := range parts {
		pc := p.report.Capture
		r.Inputs = append(r.Inputs, pc)
		formats[pc.Format] = true
		c.Exchanges += pc.Exchanges
		c.Conns += pc.Conns
		c.HTTPConns += pc.HTTPConns
		c.OtherConns += pc.OtherConns
		c.Lost += pc.Lost
		c.Salvaged = c.Salvaged || pc.Salvaged
		for _, w := range pc.Warnings {
			c.Warnings = append(c.Warnings, pc.Path+": "+w)
		}
		for i, n := range p.flags {
			m.flags[i] += n
		}
		if !pc.Start.IsZero() {
			if c.Start.IsZero() || pc.Start.Before(c.Start) {
				c.Start = pc.Start
			}
			if pc.End.After(c.End) {
				c.End = pc.End
			}
			sp, ok := hostSpan[p.host]
			if !ok || pc.Start.Before(sp[0]) {
				sp[0] = pc.Start
			}
			if pc.End.After(sp[1]) {
				sp[1] = pc.End
			}
			hostSpan[p.host] = sp
		}
		for _, svc := range p.sortedServices() {
			dst := m.services[svc.key]
			if dst == nil {
				dst = &service{key: svc.key, ctr: svc.ctr, endpoints: make(map[EndpointKey]*acc)}
				m.services[svc.key] = dst
			}
			m.mergeService(dst, svc, p)
		}
	}
	if len(formats) == 1 {
		c.Format = r.Inputs[0].Format
	} else {
		c.Format = "mixed"
	}
	c.Path = fmt.Sprintf("%d inputs", len(parts))
	if !c.Start.IsZero() {
		c.SpanNS = c.End.Sub(c.Start).Nanoseconds()
	}
	for i, n := range m.flags {
		if n > 0 {
			for _, name := range analyze.Flags(1 << i).Names() {
				c.Flags = append(c.Flags, FlagCount{Name: name, Count: n})
			}
		}
	}

	// Fleet rows: a service summed over its hosts.
	hosts := map[string]bool{}
	for k := range m.services {
		hosts[k.host] = true
	}
	var fleet map[serviceKey]*service
	if len(hosts) > 1 {
		fleet = map[serviceKey]*service{}
		for _, svc := range m.sortedServices() {
			fk := svc.key.fleetKey()
			dst := fleet[fk]
			if dst == nil {
				dst = &service{key: fk, endpoints: make(map[EndpointKey]*acc)}
				fleet[fk] = dst
			}
			dst.hosts = append(dst.hosts, svc.key.host)
			m.mergeService(dst, svc, nil)
		}
	}

	var startNS int64
	if !c.Start.IsZero() {
		startNS = c.Start.UnixNano()
	}
	offset := int64(m.origin) - startNS
	for _, svc := range m.services {
		m.fold(svc)
		m.capEndpoints(svc)
		var span int64
		if sp, ok := hostSpan[svc.key.host]; ok {
			span = sp[1].Sub(sp[0]).Nanoseconds()
		}
		out := svc.build(span, offset, m.width)
		out.Host = svc.key.host
		r.Services = append(r.Services, out)
	}
	for _, svc := range fleet {
		m.fold(svc)
		m.capEndpoints(svc)
		out := svc.build(c.SpanNS, offset, m.width)
		out.Fleet, out.Hosts, out.PIDs = true, slices.Compact(svc.hosts), nil
		if svc.key.addr.IsValid() {
			out.Addr = ":" + fmt.Sprint(svc.key.addr.Port())
		}
		r.Services = append(r.Services, out)
	}
	slices.SortFunc(r.Services, compareServices)
	r.Overview = m.overview(offset)
	for _, o := range m.objectives {
		r.Objectives = append(r.Objectives, m.evaluate(o))
	}
	m.report = r
	return r, nil
}

// fleetKey is the key of the fleet row a host's service belongs to: the
// same role and command name, and, for services named by their server
// address, its port (hosts serve on their own addresses). Processes and
// containers differ from host to host and do not split fleet rows.
func (k serviceKey) fleetKey() serviceKey {
	f := serviceKey{fleet: true, role: k.role, comm: k.comm}
	if k.addr.IsValid() {
		f.addr = netip.AddrPortFrom(netip.IPv6Unspecified(), k.addr.Port())
	}
	return f
}

// mergeService merges src's endpoints into dst, their series moved onto
// m's grid when src is from part p (nil: src is already on it), and its
// processes and path templates with them.
func (m *Aggregator) mergeService(dst, src *service, p *Aggregator) {
	for _, pid := range src.pids {
		dst.addPID(pid)
	}
	for prefix := range src.varPrefix {
		if dst.varPrefix == nil {
			dst.varPrefix = map[string]bool{}
		}
		dst.varPrefix[prefix] = true
	}
	add := func(to **acc, e *acc) {
		if *to == nil {
			*to = new(acc)
		}
		if p == nil {
			(*to).merge(e)
			return
		}
		series := e.series
		e.series = rebase(series, p.origin, p.width, m.origin, m.width)
		(*to).merge(e)
		e.series = series
	}
	for _, k := range sortedKeys(src) {
		to := dst.endpoints[k]
		add(&to, src.endpoints[k])
		dst.endpoints[k] = to
	}
	if src.other != nil {
		add(&dst.other, src.other)
	}
}

// rebase moves a series whose bucket i covers from+i·w onto the grid of
// width W (a whole multiple of w) starting at to ≤ from, both origins on
// the wall-clock grid of their widths.
func rebase(series []bucket, from uint64, w int64, to uint64, W int64) []bucket {
	if len(series) == 0 {
		return nil
	}
	idx := func(i int) int { return int((int64(from-to) + int64(i)*w) / W) }
	out := make([]bucket, idx(len(series)-1)+1)
	for i := range series {
		out[idx(i)].merge(&series[i])
	}
	return out
}

// capEndpoints folds the endpoints beyond the cap (the least used, then
// the last in key order) into other: merging inputs can bring a service
// more endpoints than any one input had.
func (m *Aggregator) capEndpoints(svc *service) {
	if len(svc.endpoints) <= m.maxEndpoints {
		return
	}
	keys := sortedKeys(svc)
	slices.SortStableFunc(keys, func(x, y EndpointKey) int {
		return cmp.Compare(svc.endpoints[y].count, svc.endpoints[x].count)
	})
	if svc.other == nil {
		svc.other = new(acc)
	}
	for _, k := range keys[m.maxEndpoints:] {
		svc.other.merge(svc.endpoints[k])
		delete(svc.endpoints, k)
	}
}
