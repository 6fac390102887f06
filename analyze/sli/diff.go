package sli

import (
	"cmp"
	"slices"
)

// Regression kinds a [Diff] flags, as named by --fail-on.
const (
	RegressP50          = "p50"
	RegressP99          = "p99"
	RegressAvailability = "availability"
	RegressErrorRate    = "error_rate"
	RegressRate         = "rate"
	RegressNew          = "new"
	RegressVanished     = "vanished"
)

// RegressionKinds lists every kind, for usage messages.
var RegressionKinds = []string{RegressP50, RegressP99, RegressAvailability, RegressErrorRate, RegressRate, RegressNew, RegressVanished}

// DiffOptions are the thresholds beyond which a change is flagged. A zero
// or negative threshold disables its check.
type DiffOptions struct {
	// MaxP50Increase and MaxP99Increase are relative (0.2 = +20%), on
	// total latency (server latency when total is unknown).
	MaxP50Increase, MaxP99Increase float64
	// MaxAvailabilityDrop and MaxErrorRateIncrease are in ratio points
	// (0.001 = 0.1 percentage point).
	MaxAvailabilityDrop, MaxErrorRateIncrease float64
	// MaxRateChange is relative, either way (0.5 = ±50%).
	MaxRateChange float64
	// MinCount is the number of exchanges each side needs before
	// percentile and ratio changes are flagged (small samples are noise).
	MinCount int
	// IgnoreHost matches endpoints by method and route only, for captures
	// whose servers listened on different addresses.
	IgnoreHost bool
}

// MatchedBy says how endpoints are matched, for the output.
func (o DiffOptions) MatchedBy() string {
	if o.IgnoreHost {
		return "service, method and route"
	}
	return "service, method, Host and route"
}

// DefaultDiffOptions are the thresholds of rewind diff.
var DefaultDiffOptions = DiffOptions{
	MaxP50Increase: 0.2, MaxP99Increase: 0.2,
	MaxAvailabilityDrop: 0.001, MaxErrorRateIncrease: 0.001,
	MaxRateChange: 0, MinCount: 10,
}

// Diff compares the endpoints of two reports (before, after).
type Diff struct {
	A, B    CaptureSummary
	Options DiffOptions
	// Endpoints are matched endpoints and services' totals (Key.Path
	// "(all)"), then new and vanished ones, sorted by service and key.
	Endpoints []EndpointDiff
}

// EndpointDiff compares one endpoint across two captures.
type EndpointDiff struct {
	// Service is the service's name without its pid ("nginx", or the
	// address for pcap input) and Role its role.
	Service, Role string
	Key           EndpointKey
	// A and B are the endpoint's stats in each capture; nil when absent.
	A, B *Stats
	// Regressions names the kinds flagged, in [RegressionKinds] order.
	Regressions []string
}

// Regressed reports whether any endpoint has a regression of a kind in
// kinds (all kinds when kinds is nil).
func (d *Diff) Regressed(kinds []string) bool {
	for _, e := range d.Endpoints {
		for _, r := range e.Regressions {
			if kinds == nil || slices.Contains(kinds, r) {
				return true
			}
		}
	}
	return false
}

// AllKey is the key under which a service's totals are compared.
var AllKey = EndpointKey{Method: "*", Path: "(all)"}

type diffKey struct {
	role, service string
	key           EndpointKey
}

// Compare matches the services (by role and what grouped them: the
// command name, with the server address under [GroupByService] and the pid
// under [GroupByPID]; the address alone for pcap input) and endpoints of a
// and b and flags the changes beyond opts. A report of several hosts
// ([FleetReport]) takes part with its fleet rows.
func Compare(a, b *Report, opts DiffOptions) *Diff {
	d := &Diff{A: a.Capture, B: b.Capture, Options: opts}
	index := func(r *Report) (map[diffKey]*Stats, []diffKey) {
		m := map[diffKey]*Stats{}
		var order []diffKey
		// A report over several hosts is compared by its fleet rows: a
		// set of captures against another.
		fleet := slices.ContainsFunc(r.Services, func(s Service) bool { return s.Fleet })
		for i := range r.Services {
			s := &r.Services[i]
			if fleet && !s.Fleet {
				continue
			}
			// Services match by what grouped them, never by the pids a
			// merged service happened to have, nor by host.
			name := s.Comm
			switch {
			case name == "":
				name = s.Addr
			case s.PID != 0:
				name = s.baseName()
			case s.Addr != "":
				name += " " + s.Addr
			}
			put := func(k EndpointKey, st *Stats) {
				if opts.IgnoreHost {
					k.Host = ""
				}
				dk := diffKey{s.Role, name, k}
				if m[dk] == nil {
					order = append(order, dk)
					m[dk] = st
				}
			}
			put(AllKey, &s.Stats)
			for j := range s.Endpoints {
				put(s.Endpoints[j].Key, &s.Endpoints[j].Stats)
			}
		}
		return m, order
	}
	ma, oa := index(a)
	mb, ob := index(b)
	keys := append(oa, ob...)
	slices.SortFunc(keys, func(x, y diffKey) int {
		return cmp.Or(cmp.Compare(roleOrder[x.role], roleOrder[y.role]), cmp.Compare(x.service, y.service),
			cmp.Compare(boolInt(x.key != AllKey), boolInt(y.key != AllKey)), compareKeys(x.key, y.key))
	})
	keys = slices.Compact(keys)
	for _, k := range keys {
		e := EndpointDiff{Service: k.service, Role: k.role, Key: k.key, A: ma[k], B: mb[k]}
		e.Regressions = regressions(e.A, e.B, opts)
		d.Endpoints = append(d.Endpoints, e)
	}
	return d
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func regressions(a, b *Stats, o DiffOptions) []string {
	switch {
	case a == nil:
		return []string{RegressNew}
	case b == nil:
		return []string{RegressVanished}
	}
	var out []string
	enough := a.Count >= o.MinCount && b.Count >= o.MinCount
	la, lb := a.Total, b.Total
	if la.Count == 0 || lb.Count == 0 {
		la, lb = a.Server, b.Server
	}
	grew := func(x, y int64, limit float64) bool {
		return limit > 0 && x > 0 && float64(y) > float64(x)*(1+limit)
	}
	if enough && la.Count > 0 && lb.Count > 0 && grew(la.P50, lb.P50, o.MaxP50Increase) {
		out = append(out, RegressP50)
	}
	if enough && la.Count > 0 && lb.Count > 0 && grew(la.P99, lb.P99, o.MaxP99Increase) {
		out = append(out, RegressP99)
	}
	if enough && o.MaxAvailabilityDrop > 0 && a.Availability >= 0 && b.Availability >= 0 &&
		a.Availability-b.Availability > o.MaxAvailabilityDrop+1e-12 {
		out = append(out, RegressAvailability)
	}
	if enough && o.MaxErrorRateIncrease > 0 && b.ErrorRate-a.ErrorRate > o.MaxErrorRateIncrease+1e-12 {
		out = append(out, RegressErrorRate)
	}
	if o.MaxRateChange > 0 && a.Rate > 0 {
		if ch := b.Rate/a.Rate - 1; ch > o.MaxRateChange || ch < -o.MaxRateChange {
			out = append(out, RegressRate)
		}
	}
	return out
}
