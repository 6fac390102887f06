package sli

import (
	"strconv"
	"time"

	"github.com/rewind-tools/rewind/capture/container"
)

// Report is the SLI report of one capture, built by an [Aggregator], or of
// several ([FleetReport]). Its slices are sorted so that equal inputs give
// equal reports.
type Report struct {
	// Capture describes the input, or sums the inputs of a fleet report.
	Capture CaptureSummary
	// Inputs describe each input of a fleet report, by path; nil for one
	// input.
	Inputs []CaptureSummary
	// Services are sorted by role (servers first), comm, pid and address.
	Services []Service
	// RelativeAccuracy is the relative error of percentiles computed from
	// a sketch; [Latency.Exact] says which ones are exact.
	RelativeAccuracy float64
	// ExactLimit is the sample count up to which percentiles are exact.
	ExactLimit int
	// MaxEndpoints is the number of distinct endpoints kept per service;
	// further ones are folded into the service's "other" endpoint.
	MaxEndpoints int
	// MaxChildren is the number of distinct values a path segment may take
	// under one prefix before the segment becomes {var}; 0 when disabled.
	MaxChildren int
	// ApdexT is the Apdex threshold on total latency, ns.
	ApdexT int64
	// BucketNS is the width of the time series' buckets. RequestedBucketNS
	// is the width asked for, 0 for automatic (the first of 1, 2, 10, 20,
	// 100 ms, … giving at most [AutoBuckets] buckets); an asked-for width
	// is widened when the capture is too long for [MaxBuckets] buckets of
	// it (then BucketWidened is set).
	BucketNS, RequestedBucketNS int64
	BucketWidened               bool
	// Overview is the activity of the whole capture per bucket: every
	// server-side exchange (every exchange when there is no server side),
	// for the report's first chart.
	Overview []Point
	// Objectives are the --slo objectives' results, in the order given.
	Objectives []ObjectiveResult
}

// Violated returns the objectives that were not met.
func (r *Report) Violated() []ObjectiveResult {
	var out []ObjectiveResult
	for _, o := range r.Objectives {
		if o.Violated {
			out = append(out, o)
		}
	}
	return out
}

// CaptureSummary describes the capture as a whole.
type CaptureSummary struct {
	Path   string // input file as given
	Format string // "rewind", "pcap" or "pcapng"
	Host   string // recording host, "" for pcap input
	// Start and End bound the span over which rates are computed, in the
	// recording host's time zone; SpanNS is their distance.
	Start, End time.Time
	SpanNS     int64
	Exchanges  int
	Conns      int
	HTTPConns  int
	OtherConns int // connections whose data was not HTTP
	Lost       uint64
	Salvaged   bool
	// Warnings are the replay's salvage and loss warnings, in its order.
	Warnings []string
	// Flags counts exchanges per flag, in [analyze.Flags] bit order; flags
	// no exchange carries are left out.
	Flags []FlagCount
}

// FlagCount is the number of exchanges that carry one flag.
type FlagCount struct {
	Name  string
	Count int
}

// Service is one process seen in one role: the same process acting as both
// server and client gives two services, and an exchange seen from both ends
// (curl and nginx in one capture) counts once in each end's service.
//
// In a fleet report each service is also one host's, and a fleet row
// (Fleet set) sums a service over every host that has it: same role and
// command name (and server port, when services are grouped by address).
type Service struct {
	Role string // "server", "client" or "unknown"
	// Host is the host whose input the service is from, in a fleet report
	// ("" otherwise, and in fleet rows).
	Host string
	// Fleet marks a fleet row, and Hosts lists the hosts it sums.
	Fleet bool
	Hosts []string
	// PID is the process when services are one per process
	// ([GroupByPID]); 0 when they gather processes, and for pcap input.
	PID uint32
	// PIDs lists the service's processes, in order; empty for pcap input.
	PIDs []uint32
	// Container is the container the service's processes ran in (the zero
	// value on the host): processes of two containers are two services.
	Container container.Info
	// NetNS is the inode of the network namespace the service's processes
	// ran in when it is not the recorder's (0 on the host's): servers on
	// one address in two namespaces are two services.
	NetNS uint64
	Comm  string
	// Addr is the server address ("10.0.0.1:443") the service's processes
	// served or called ([GroupByService]), or that identifies the service
	// when there is no process (pcap input); "" otherwise.
	Addr string
	// Stats sums every endpoint of the service.
	Stats
	Endpoints []Endpoint
}

// Name is a short label for the service: "nginx[1234]", "nginx[1234,1235]"
// (at most four pids, then how many more: "curl[10,11,12,13,+66]"), or the
// server address for pcap input. A service in a Kubernetes pod whose name
// was recorded is named by it first ("shop/web-0:nginx[1234]"), else one in
// a container whose name was recorded by that ("web:nginx[1234]"), else by
// the container's hostname when recorded ("3f4e5a6b7c8d:nginx[1234]"). In a fleet report, the host follows
// ("nginx[1234]@node-a"), and a fleet row says how many hosts it sums
// ("nginx (fleet: 3 hosts)").
func (s *Service) Name() string {
	switch {
	case s.Fleet:
		return s.baseName() + " (fleet: " + strconv.Itoa(len(s.Hosts)) + " hosts)"
	case s.Host != "":
		return s.baseName() + "@" + s.Host
	}
	return s.baseName()
}

func (s *Service) baseName() string {
	comm := s.Comm
	if comm == "" {
		if s.Addr != "" && s.PID == 0 && len(s.PIDs) == 0 {
			return s.Addr
		}
		comm = "?"
	}
	var b []byte
	if where := s.Container.PodLabel(); where != "" {
		b = append(append(b, where...), ':')
	} else if s.Container.Name != "" {
		b = append(append(b, s.Container.Name...), ':')
	} else if s.Container.Hostname != "" {
		b = append(append(b, s.Container.Hostname...), ':')
	}
	b = append(b, comm...)
	pids := s.PIDs
	if s.PID != 0 {
		pids = []uint32{s.PID}
	}
	if len(pids) == 0 {
		return string(b)
	}
	b = append(b, '[')
	for i, p := range pids {
		if i == 4 {
			b = append(b, ",+"...)
			b = strconv.AppendInt(b, int64(len(pids)-4), 10)
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	return string(append(b, ']'))
}

// Endpoint is one endpoint of a service, sorted by descending count.
type Endpoint struct {
	Key EndpointKey
	// Other marks the bucket that holds endpoints beyond the service's
	// cap; its Key is [OtherKey].
	Other bool
	Stats
}

// Stats are the service level indicators of a set of exchanges.
type Stats struct {
	Count int
	// Rate is Count per second over the capture's span; 0 when the span
	// is empty.
	Rate float64
	// Responses counts exchanges with a response status.
	Responses int
	// Availability is the share of Responses whose status is not 5xx, from
	// 0 to 1; -1 when there were no responses.
	Availability float64
	// Status1xx … Status5xx count final responses by class; a status
	// outside 100–599 is counted in StatusOther.
	Status1xx, Status2xx, Status3xx, Status4xx, Status5xx, StatusOther int
	// Incomplete counts exchanges without a response or flagged incomplete.
	Incomplete int
	// Reset counts exchanges whose stream or connection was reset;
	// ResetOrIncomplete those reset or incomplete (each once).
	Reset, ResetOrIncomplete int
	// GRPCErrors counts gRPC calls that ended with a status other than 0.
	GRPCErrors int
	// Errors counts failed exchanges: 5xx, reset, or a gRPC status other
	// than 0 (each exchange once). ErrorRate is Errors/Count, 0 when Count
	// is 0. Incomplete exchanges are not errors: a capture's edges cut them.
	Errors    int
	ErrorRate float64
	// Apdex is the Apdex score on total latency against [Report.ApdexT]:
	// (satisfied + tolerating/2) / samples, where satisfied is ≤ T,
	// tolerating ≤ 4T, and errors are frustrated; -1 without samples.
	// ApdexSamples counts exchanges with a known total latency or an error.
	Apdex        float64
	ApdexSamples int
	// ReqBodyBytes and RespBodyBytes sum the known body sizes on the wire
	// (after transfer decoding, before content decoding).
	ReqBodyBytes, RespBodyBytes int64
	// Latency distributions of the exchanges' timings where measured.
	Server, Transfer, Network, Total Latency
	// Histogram counts total latencies per [HistogramBounds] bin; nil
	// without samples.
	Histogram []int
	// Series is the activity per time bucket of [Report.BucketNS], from the
	// capture's start; buckets without exchanges are included.
	Series []Point
}

// Point is one time bucket of a series.
type Point struct {
	// OffsetNS is the bucket's start from the capture's start.
	OffsetNS int64
	Count    int
	Errors   int
	// P99 of total latency in the bucket, ns; 0 without samples.
	P99 int64
}

// Latency summarises one timing over a set of exchanges, in nanoseconds.
type Latency struct {
	// Count is the number of exchanges where the timing was measured; the
	// other fields are 0 when it is 0.
	Count                    int
	P50, P90, P95, P99, P999 int64
	Max                      int64 // always exact
	// Exact says the percentiles were computed from every sample; if not,
	// they are within [Report.RelativeAccuracy] of the true values.
	Exact bool
}
