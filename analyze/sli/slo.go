package sli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-tools/rewind/capture/container"
)

// Metric is what an [Objective] measures.
type Metric string

// Metrics an objective can name.
const (
	MetricAvailability Metric = "availability" // share of responses that are not 5xx
	MetricErrorRate    Metric = "error_rate"   // share of exchanges that are errors
	MetricApdex        Metric = "apdex"        // Apdex score on total latency
	MetricLatency      Metric = "latency"      // a latency percentile
)

// Objective is one service level objective of --slo, such as p99<300ms or
// "GET /users/{id}:availability>=99.9%".
//
// Grammar (objectives are separated by commas):
//
//	objective  = [ scope ":" ] metric op value
//	scope      = [ METHOD " " ] [ HOST ] PATH   (PATH a [Route] pattern)
//	metric     = "availability" | "error_rate" | "apdex"
//	           | [ timing "_" ] "p" digits       (p50, p99, p999 = p99.9, server_p95)
//	timing     = "total" | "server" | "transfer" | "network"   (default total)
//	op         = "<" | "<=" | ">" | ">="
//	value      = number [ "%" ] | duration      (300ms, 1s, 250us)
//
// Without a scope, the objective covers every server-side exchange of the
// capture (client-side ones when there is no server side); with one, the
// server-side endpoints whose method, host and route match it.
type Objective struct {
	// Text is the objective as written.
	Text string
	// Scope restricts the objective to endpoints; nil for the whole
	// capture.
	Scope  *Scope
	Metric Metric
	// Timing ("total", "server", …) and Quantile (0.99) of a latency
	// objective.
	Timing   string
	Quantile float64
	Op       string
	// Target is a ratio (0.999) for availability and error_rate, a score
	// for apdex, nanoseconds for latency.
	Target float64
}

// Scope restricts an objective to the endpoints it matches.
type Scope struct {
	Method string // "" or "*" for any
	Host   string // "" for any
	Route  Route
}

// String returns the scope as written in the grammar.
func (s *Scope) String() string {
	out := s.Host + s.Route.String()
	if s.Method != "" {
		out = s.Method + " " + out
	}
	return out
}

// Matches reports whether the endpoint k lies in the scope.
func (s *Scope) Matches(k EndpointKey) bool {
	return (s.Method == "" || s.Method == "*" || strings.EqualFold(s.Method, k.Method)) &&
		(s.Host == "" || strings.EqualFold(s.Host, k.Host)) &&
		s.Route.Match(k.Path)
}

// SyntaxError is a mistake in an --slo value; Token is the part at fault.
type SyntaxError struct {
	Token, Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("objective %q: %s", e.Token, e.Msg)
}

// ParseObjectives parses comma-separated objectives (see [Objective]).
func ParseObjectives(s string) ([]Objective, error) {
	var out []Objective
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		o, err := ParseObjective(part)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, &SyntaxError{Token: s, Msg: "no objective (try 'availability>=99.9%,p99<300ms')"}
	}
	return out, nil
}

// ParseObjective parses one objective (see [Objective]).
func ParseObjective(text string) (Objective, error) {
	o := Objective{Text: text}
	expr := text
	if i := strings.LastIndexByte(text, ':'); i >= 0 {
		sc, err := parseScope(strings.TrimSpace(text[:i]))
		if err != nil {
			return o, err
		}
		o.Scope = sc
		expr = strings.TrimSpace(text[i+1:])
	}
	i := strings.IndexAny(expr, "<>")
	if i < 0 {
		return o, &SyntaxError{Token: text, Msg: "no comparison: want <, <=, > or >= as in p99<300ms"}
	}
	name, rest := strings.TrimSpace(expr[:i]), expr[i:]
	o.Op = rest[:1]
	if len(rest) > 1 && rest[1] == '=' {
		o.Op += "="
	}
	value := strings.TrimSpace(rest[len(o.Op):])
	bad := func(tok, msg string) (Objective, error) { return o, &SyntaxError{Token: tok, Msg: msg} }
	switch Metric(name) {
	case MetricAvailability, MetricErrorRate:
		o.Metric = Metric(name)
		v, err := parseRatio(value)
		if err != nil {
			return bad(value, err.Error())
		}
		o.Target = v
	case MetricApdex:
		o.Metric = MetricApdex
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v < 0 || v > 1 {
			return bad(value, "apdex wants a score from 0 to 1, such as 0.9")
		}
		o.Target = v
	default:
		timing, p, ok := strings.Cut(name, "_")
		if !ok {
			timing, p = "total", name
		}
		switch timing {
		case "total", "server", "transfer", "network":
		default:
			return bad(name, "unknown metric: want availability, error_rate, apdex, pNN or server_pNN")
		}
		q, err := parseQuantile(p)
		if err != nil {
			return bad(name, err.Error())
		}
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return bad(value, "latency objectives want a duration such as 300ms or 1s")
		}
		o.Metric, o.Timing, o.Quantile, o.Target = MetricLatency, timing, q, float64(d)
	}
	return o, nil
}

func parseScope(s string) (*Scope, error) {
	sc := &Scope{}
	if m, p, ok := strings.Cut(s, " "); ok {
		sc.Method, s = strings.ToUpper(m), strings.TrimSpace(p)
	}
	if i := strings.IndexByte(s, '/'); i > 0 {
		sc.Host, s = strings.ToLower(s[:i]), s[i:]
	}
	r, err := ParseRoute(s)
	if err != nil {
		return nil, &SyntaxError{Token: s, Msg: "scope wants [METHOD ][HOST]/path before ':' (" + err.Error() + ")"}
	}
	sc.Route = r
	return sc, nil
}

// parseQuantile turns "p99" into 0.99, "p999" and "p99.9" into 0.999,
// "p5" into 0.05: the first two digits are the percentage's integer part.
func parseQuantile(p string) (float64, error) {
	if len(p) < 2 || p[0] != 'p' {
		return 0, fmt.Errorf("unknown metric: want availability, error_rate, apdex, pNN or server_pNN")
	}
	whole, frac, _ := strings.Cut(p[1:], ".")
	if len(whole) > 2 && !strings.Contains(p, ".") {
		whole, frac = whole[:2], whole[2:]
	}
	if len(whole) == 1 {
		whole = "0" + whole
	}
	v, err := strconv.ParseFloat("0."+whole+frac, 64)
	if err != nil || len(whole) != 2 || strings.ContainsAny(whole+frac, "+-eE") {
		return 0, fmt.Errorf("bad percentile %q", p)
	}
	if v <= 0 || v >= 1 || whole == "10" && strings.Trim(frac, "0") == "" && len(frac) > 0 {
		return 0, fmt.Errorf("percentile %q out of range (p1 to p99.99…)", p)
	}
	return v, nil
}

func parseRatio(s string) (float64, error) {
	num, pct := strings.CutSuffix(s, "%")
	if pct {
		// 99.9% is 0.999, the double nearest that decimal: dividing by
		// 100 would give 0.9990000000000001, which 999 of 1000 fails.
		num += "e-2"
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || strings.ContainsAny(strings.TrimSuffix(num, "e-2"), "eE") {
		return 0, fmt.Errorf("want a percentage such as 99.9%% or a ratio such as 0.999")
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("ratio out of range 0–100%%")
	}
	return f, nil
}

// ObjectiveResult is an objective's evaluation, as good and valid events
// in the manner of the SRE workbook: availability counts responses (valid)
// that are not 5xx (good); error_rate counts exchanges (valid) that are not
// errors (good); a latency objective counts exchanges with the timing
// measured (valid) below the threshold (good), and also reports the
// measured percentile, which is what is compared; apdex counts its samples.
type ObjectiveResult struct {
	Objective
	// Good and Valid are the event counts; Valid 0 means no data, and
	// the objective is then neither met nor violated.
	Good, Valid int
	// Value is the measured indicator: a ratio, a score, or for latency
	// the percentile in ns.
	Value float64
	// GoodRatio is Good/Valid (for latency: the share under the
	// threshold), 0 without data.
	GoodRatio float64
	NoData    bool
	Violated  bool
}

// evaluate computes an objective's result over the matching endpoints.
func (a *Aggregator) evaluate(o Objective) ObjectiveResult {
	res := ObjectiveResult{Objective: o}
	var sum acc
	for _, role := range []string{"server", "client"} {
		for _, svc := range a.sortedServices() {
			if svc.key.role.String() != role {
				continue
			}
			for _, k := range sortedKeys(svc) {
				if o.Scope == nil || o.Scope.Matches(k) {
					sum.merge(svc.endpoints[k])
				}
			}
			if svc.other != nil && o.Scope == nil {
				sum.merge(svc.other)
			}
		}
		if sum.count > 0 || o.Scope != nil {
			break // client side only when there is no server side
		}
	}
	switch o.Metric {
	case MetricAvailability:
		res.Good, res.Valid = sum.ok, sum.responses
		res.Value = ratio(res.Good, res.Valid)
	case MetricErrorRate:
		res.Good, res.Valid = sum.count-sum.errors, sum.count
		res.Value = ratio(sum.errors, sum.count)
	case MetricApdex:
		res.Good, res.Valid = sum.satisfied, sum.apdexN
		if sum.apdexN > 0 {
			res.Value = (float64(sum.satisfied) + float64(sum.tolerating)/2) / float64(sum.apdexN)
		}
	case MetricLatency:
		d := &sum.total
		switch o.Timing {
		case "server":
			d = &sum.server
		case "transfer":
			d = &sum.transfer
		case "network":
			d = &sum.net
		}
		res.Valid = d.n
		res.Good = d.countBelow(int64(o.Target), o.Op == "<=" || o.Op == ">")
		if o.Op[0] == '>' {
			res.Good = d.n - res.Good
		}
		res.Value = float64(d.quantile(o.Quantile))
	}
	res.GoodRatio = ratio(res.Good, res.Valid)
	if res.Valid == 0 {
		res.NoData = true
		res.Value = 0
		return res
	}
	res.Violated = !compare(res.Value, o.Op, o.Target)
	return res
}

func (a *Aggregator) sortedServices() []*service {
	out := make([]*service, 0, len(a.services))
	for _, s := range a.services {
		out = append(out, s)
	}
	keyOf := func(s *service) Service {
		return Service{Role: s.key.role.String(), Comm: s.key.comm, PID: s.key.pid, Addr: s.key.addr.String(), Host: s.key.host, Fleet: s.key.fleet, Container: container.Info{ID: s.key.ctr}, NetNS: s.key.netns}
	}
	slices.SortFunc(out, func(x, y *service) int { return compareServices(keyOf(x), keyOf(y)) })
	return out
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func compare(v float64, op string, t float64) bool {
	switch op {
	case "<":
		return v < t
	case "<=":
		return v <= t
	case ">":
		return v > t
	}
	return v >= t
}
