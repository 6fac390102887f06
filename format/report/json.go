package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/rewind-tools/rewind/analyze/sli"
)

// SchemaVersion is the version of the JSON report schema; it changes only
// when a field is removed or changes meaning, not when one is added.
const SchemaVersion = 2

// The types below are the JSON schema (documented in SCHEMA.md); they are
// kept apart from package sli's types so that the schema stays stable when
// those change.

type jsonReport struct {
	SchemaVersion int         `json:"schema_version"`
	Capture       jsonCapture `json:"capture"`
	// Inputs describe each input of a report over several, by path.
	Inputs       []jsonCapture   `json:"inputs,omitempty"`
	Percentiles  jsonPercentiles `json:"percentiles"`
	MaxEndpoints int             `json:"max_endpoints_per_service"`
	MaxChildren  int             `json:"max_children_per_prefix"`
	ApdexT       int64           `json:"apdex_t_ns"`
	Histogram    []int64         `json:"histogram_bounds_ns"`
	Series       jsonSeriesInfo  `json:"series"`
	Objectives   []jsonObjective `json:"objectives"`
	Violated     int             `json:"objectives_violated"`
	Services     []jsonService   `json:"services"`
}

type jsonSeriesInfo struct {
	BucketNS          int64 `json:"bucket_ns"`
	RequestedBucketNS int64 `json:"requested_bucket_ns"`
	Widened           bool  `json:"widened"`
	MaxBuckets        int   `json:"max_buckets"`
	// Overview is the whole capture's series (every server-side exchange,
	// every exchange without a server side).
	Overview []jsonPoint `json:"overview"`
}

type jsonObjective struct {
	Objective string   `json:"objective"`
	Scope     *string  `json:"scope"`
	Metric    string   `json:"metric"`
	Timing    string   `json:"timing,omitempty"`
	Quantile  float64  `json:"quantile,omitempty"`
	Op        string   `json:"op"`
	Target    float64  `json:"target"`
	Status    string   `json:"status"`
	Value     *float64 `json:"value"`
	Good      int      `json:"good"`
	Valid     int      `json:"valid"`
	GoodRatio *float64 `json:"good_ratio"`
}

type jsonCapture struct {
	Path       string         `json:"path"`
	Format     string         `json:"format"`
	Host       string         `json:"host,omitempty"`
	Start      string         `json:"start,omitempty"`
	End        string         `json:"end,omitempty"`
	SpanNS     int64          `json:"span_ns"`
	Exchanges  int            `json:"exchanges"`
	Conns      int            `json:"conns"`
	HTTPConns  int            `json:"http_conns"`
	OtherConns int            `json:"other_conns"`
	Lost       uint64         `json:"lost_events"`
	Salvaged   bool           `json:"salvaged"`
	Warnings   []string       `json:"warnings"`
	Flags      map[string]int `json:"flags"`
}

type jsonPercentiles struct {
	Method           string  `json:"method"`
	RelativeAccuracy float64 `json:"relative_accuracy"`
	ExactUpTo        int     `json:"exact_up_to"`
}

type jsonService struct {
	Name string `json:"name"`
	Role string `json:"role"`
	PID  uint32 `json:"pid"`
	// PIDs lists the processes of the service (all of them also when PID
	// names the one of --group-by pid); [] for pcap input.
	PIDs []uint32 `json:"pids"`
	Comm string   `json:"comm"`
	Addr string   `json:"addr,omitempty"`
	// Host is the service's host in a report over several inputs; Fleet
	// marks a row that sums a service over the Hosts that have it.
	Host  string   `json:"host,omitempty"`
	Fleet bool     `json:"fleet,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
	// Container is the service's container, when it ran in one.
	Container *jsonContainer `json:"container,omitempty"`
	// NetNS is the service's network namespace when not the recorder's.
	NetNS uint64 `json:"netns,omitempty"`
	jsonStats
	Endpoints []jsonEndpoint `json:"endpoints"`
}

type jsonContainer struct {
	Runtime string `json:"runtime"`
	ID      string `json:"id"`
	PodUID  string `json:"pod_uid,omitempty"`
	QoS     string `json:"qos,omitempty"`
	// Pod, Namespace, Hostname and Name are as recorded with the
	// processes.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Name      string `json:"name,omitempty"`
}

type jsonEndpoint struct {
	Method string `json:"method"`
	Host   string `json:"host"`
	Path   string `json:"path"`
	Other  bool   `json:"other,omitempty"`
	jsonStats
}

type jsonStats struct {
	Count         int           `json:"count"`
	Rate          float64       `json:"rate_per_s"`
	Responses     int           `json:"responses"`
	Availability  *float64      `json:"availability"`
	Status        jsonStatus    `json:"status"`
	Incomplete    int           `json:"incomplete"`
	Reset         int           `json:"reset"`
	GRPCErrors    int           `json:"grpc_errors"`
	Errors        int           `json:"errors"`
	ErrorRate     float64       `json:"error_rate"`
	ErrorRatio    jsonRatios    `json:"error_ratio"`
	Apdex         *float64      `json:"apdex"`
	ApdexSamples  int           `json:"apdex_samples"`
	ReqBodyBytes  int64         `json:"req_body_bytes"`
	RespBodyBytes int64         `json:"resp_body_bytes"`
	Latency       jsonLatencies `json:"latency"`
	Histogram     []int         `json:"latency_histogram"`
	Series        []jsonPoint   `json:"series"`
}

type jsonRatios struct {
	S4xx      float64 `json:"4xx"`
	S5xx      float64 `json:"5xx"`
	ResetIncl float64 `json:"reset_or_incomplete"`
	GRPC      float64 `json:"grpc"`
}

type jsonPoint struct {
	OffsetNS int64 `json:"offset_ns"`
	Count    int   `json:"count"`
	Errors   int   `json:"errors"`
	P99      int64 `json:"p99_ns"`
}

type jsonStatus struct {
	S1xx  int `json:"1xx"`
	S2xx  int `json:"2xx"`
	S3xx  int `json:"3xx"`
	S4xx  int `json:"4xx"`
	S5xx  int `json:"5xx"`
	Other int `json:"other"`
}

type jsonLatencies struct {
	Server   *jsonLatency `json:"server"`
	Transfer *jsonLatency `json:"transfer"`
	Network  *jsonLatency `json:"network"`
	Total    *jsonLatency `json:"total"`
}

type jsonLatency struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50_ns"`
	P90   int64 `json:"p90_ns"`
	P95   int64 `json:"p95_ns"`
	P99   int64 `json:"p99_ns"`
	P999  int64 `json:"p999_ns"`
	Max   int64 `json:"max_ns"`
	Exact bool  `json:"exact"`
}

// WriteJSON writes r as one indented JSON document (schema in SCHEMA.md).
func WriteJSON(w io.Writer, r *sli.Report) error {
	b, err := json.MarshalIndent(toJSON(r), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// captureJSON is the JSON of a capture summary.
func captureJSON(c *sli.CaptureSummary) jsonCapture {
	j := jsonCapture{
		Path: c.Path, Format: c.Format, Host: c.Host,
		SpanNS: c.SpanNS, Exchanges: c.Exchanges,
		Conns: c.Conns, HTTPConns: c.HTTPConns, OtherConns: c.OtherConns,
		Lost: c.Lost, Salvaged: c.Salvaged,
		Warnings: c.Warnings,
		Flags:    make(map[string]int, len(c.Flags)),
	}
	if !c.Start.IsZero() {
		j.Start = c.Start.Format(time.RFC3339Nano)
		j.End = c.End.Format(time.RFC3339Nano)
	}
	if j.Warnings == nil {
		j.Warnings = []string{}
	}
	for _, f := range c.Flags {
		j.Flags[f.Name] = f.Count
	}
	return j
}

func toJSON(r *sli.Report) *jsonReport {
	out := &jsonReport{
		SchemaVersion: SchemaVersion,
		Capture:       captureJSON(&r.Capture),
		Percentiles: jsonPercentiles{
			Method:           "ddsketch",
			RelativeAccuracy: r.RelativeAccuracy,
			ExactUpTo:        r.ExactLimit,
		},
		MaxEndpoints: r.MaxEndpoints,
		MaxChildren:  r.MaxChildren,
		ApdexT:       r.ApdexT,
		Histogram:    sli.HistogramBounds,
		Series: jsonSeriesInfo{
			BucketNS: r.BucketNS, RequestedBucketNS: r.RequestedBucketNS,
			Widened: r.BucketWidened, MaxBuckets: sli.MaxBuckets,
			Overview: make([]jsonPoint, len(r.Overview)),
		},
		Objectives: make([]jsonObjective, 0, len(r.Objectives)),
		Violated:   len(r.Violated()),
		Services:   make([]jsonService, 0, len(r.Services)),
	}
	for i, p := range r.Overview {
		out.Series.Overview[i] = jsonPoint{OffsetNS: p.OffsetNS, Count: p.Count, Errors: p.Errors, P99: p.P99}
	}
	for _, o := range r.Objectives {
		out.Objectives = append(out.Objectives, objectiveJSON(o))
	}
	for i := range r.Inputs {
		out.Inputs = append(out.Inputs, captureJSON(&r.Inputs[i]))
	}
	for i := range r.Services {
		s := &r.Services[i]
		if s.PIDs == nil {
			s.PIDs = []uint32{}
		}
		js := jsonService{
			Name: s.Name(), Role: s.Role, PID: s.PID, PIDs: s.PIDs, Comm: s.Comm, Addr: s.Addr,
			Host: s.Host, Fleet: s.Fleet, Hosts: s.Hosts,
			jsonStats: statsJSON(&s.Stats),
			Container: containerJSON(s),
			NetNS:     s.NetNS,
			Endpoints: make([]jsonEndpoint, 0, len(s.Endpoints)),
		}
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			js.Endpoints = append(js.Endpoints, jsonEndpoint{
				Method: e.Key.Method, Host: e.Key.Host, Path: e.Key.Path, Other: e.Other,
				jsonStats: statsJSON(&e.Stats),
			})
		}
		out.Services = append(out.Services, js)
	}
	return out
}

func statsJSON(s *sli.Stats) jsonStats {
	j := jsonStats{
		Count: s.Count, Rate: s.Rate, Responses: s.Responses,
		Status: jsonStatus{
			S1xx: s.Status1xx, S2xx: s.Status2xx, S3xx: s.Status3xx,
			S4xx: s.Status4xx, S5xx: s.Status5xx, Other: s.StatusOther,
		},
		Incomplete:    s.Incomplete,
		Reset:         s.Reset,
		GRPCErrors:    s.GRPCErrors,
		Errors:        s.Errors,
		ErrorRate:     s.ErrorRate,
		ApdexSamples:  s.ApdexSamples,
		Histogram:     s.Histogram,
		Series:        make([]jsonPoint, len(s.Series)),
		ReqBodyBytes:  s.ReqBodyBytes,
		RespBodyBytes: s.RespBodyBytes,
		Latency: jsonLatencies{
			Server:   latencyJSON(s.Server),
			Transfer: latencyJSON(s.Transfer),
			Network:  latencyJSON(s.Network),
			Total:    latencyJSON(s.Total),
		},
	}
	if s.Availability >= 0 {
		a := s.Availability
		j.Availability = &a
	}
	if s.Apdex >= 0 {
		a := s.Apdex
		j.Apdex = &a
	}
	if s.Count > 0 {
		n := float64(s.Count)
		j.ErrorRatio = jsonRatios{
			S4xx: float64(s.Status4xx) / n, S5xx: float64(s.Status5xx) / n,
			ResetIncl: float64(s.ResetOrIncomplete) / n, GRPC: float64(s.GRPCErrors) / n,
		}
	}
	if j.Histogram == nil {
		j.Histogram = []int{}
	}
	for i, p := range s.Series {
		j.Series[i] = jsonPoint{OffsetNS: p.OffsetNS, Count: p.Count, Errors: p.Errors, P99: p.P99}
	}
	return j
}

func objectiveJSON(o sli.ObjectiveResult) jsonObjective {
	j := jsonObjective{
		Objective: o.Text, Metric: string(o.Metric), Timing: o.Timing, Quantile: o.Quantile,
		Op: o.Op, Target: o.Target, Status: objectiveStatus(o), Good: o.Good, Valid: o.Valid,
	}
	if o.Scope != nil {
		sc := o.Scope.String()
		j.Scope = &sc
	}
	if !o.NoData {
		v, g := o.Value, o.GoodRatio
		j.Value, j.GoodRatio = &v, &g
	}
	return j
}

func objectiveStatus(o sli.ObjectiveResult) string {
	switch {
	case o.NoData:
		return "no_data"
	case o.Violated:
		return "violated"
	}
	return "met"
}

func latencyJSON(l sli.Latency) *jsonLatency {
	if l.Count == 0 {
		return nil
	}
	return &jsonLatency{Count: l.Count, P50: l.P50, P90: l.P90, P95: l.P95, P99: l.P99, P999: l.P999, Max: l.Max, Exact: l.Exact}
}

func containerJSON(s *sli.Service) *jsonContainer {
	ct := s.Container
	if !ct.Known() {
		return nil
	}
	return &jsonContainer{Runtime: ct.Runtime, ID: ct.ID, PodUID: ct.PodUID, QoS: ct.QoS, Pod: ct.Pod, Namespace: ct.Namespace, Hostname: ct.Hostname, Name: ct.Name}
}
