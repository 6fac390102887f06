package sli

import (
	"strconv"
	"time"
)

// Report is the SLI report of one capture, built by an [Aggregator]. Its
// slices are sorted so that equal inputs give equal reports.
type Report struct {
	Capture CaptureSummary
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
type Service struct {
	Role string // "server", "client" or "unknown"
	PID  uint32 // 0 for pcap input
	Comm string
	// Addr is the server address ("10.0.0.1:443") identifying the service
	// when there is no process (pcap input); "" otherwise.
	Addr string
	// Stats sums every endpoint of the service.
	Stats
	Endpoints []Endpoint
}

// Name is a short label for the service: "nginx[1234]" or the server
// address for pcap input.
func (s *Service) Name() string {
	if s.PID == 0 {
		if s.Comm != "" {
			return s.Comm
		}
		if s.Addr != "" {
			return s.Addr
		}
		return "?"
	}
	comm := s.Comm
	if comm == "" {
		comm = "?"
	}
	return comm + "[" + strconv.FormatUint(uint64(s.PID), 10) + "]"
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
	// ReqBodyBytes and RespBodyBytes sum the known body sizes on the wire
	// (after transfer decoding, before content decoding).
	ReqBodyBytes, RespBodyBytes int64
	// Latency distributions of the exchanges' timings where measured.
	Server, Transfer, Network, Total Latency
}

// Latency summarises one timing over a set of exchanges, in nanoseconds.
type Latency struct {
	// Count is the number of exchanges where the timing was measured; the
	// other fields are 0 when it is 0.
	Count         int
	P50, P90, P99 int64
	Max           int64 // always exact
	// Exact says the percentiles were computed from every sample; if not,
	// they are within [Report.RelativeAccuracy] of the true values.
	Exact bool
}
