package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rewind-tools/rewind/analyze/pcapin"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/redact"
	"github.com/rewind-tools/rewind/format/report"
)

func newInfoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "describe a capture (header, snapshot, event counts, losses, integrity) or a pcap/pcapng (packets, connections, damage)",
		ArgsUsage: "FILE|-",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("info takes exactly one capture file")
			}
			path := c.Args().First()
			f := os.Stdin // "-": a capture or pcap streamed in
			if path == "-" {
				path = "standard input"
			} else {
				if fi, err := os.Stat(path); err == nil && fi.IsDir() {
					return fmt.Errorf("%s: is a directory; info describes one capture or pcap file", path)
				}
				var err error
				if f, err = os.Open(path); err != nil {
					return err
				}
				defer f.Close()
			}
			// The same inputs as analyze: captures and pcap/pcapng, plain
			// or gzip/zstd-compressed.
			br := bufio.NewReaderSize(f, 64<<10)
			head, _ := br.Peek(8)
			compressed := false
			if pcapin.IsCompressed(head) {
				dr, err := pcapin.Decompress(br)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				defer dr.Close()
				br = bufio.NewReaderSize(dr, 64<<10)
				head, err = br.Peek(8)
				var se *capture.StreamError
				if errors.As(err, &se) {
					return fmt.Errorf("%s: %w", path, err)
				}
				compressed = true
			}
			if pcapin.IsPcap(head) {
				return infoPcap(c, path, br, compressed)
			}
			rd, err := capture.NewReader(br)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			defer rd.Close()
			if compressed {
				rd.VerifyEnd() // a stream cut after the trailer is damage too
			}
			s, err := capture.SummarizeReader(rd)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if c.Bool("json") {
				return writeInfoJSON(c.App.Writer, s)
			}
			writeInfoText(c.App.Writer, path, s)
			return nil
		},
	}
}

// pcapInfoJSON is the shape of `rewind info --json` for a pcap or pcapng.
type pcapInfoJSON struct {
	Format           string         `json:"format"` // "pcap" or "pcapng"
	Compressed       bool           `json:"compressed"`
	Start            string         `json:"start,omitempty"`
	End              string         `json:"end,omitempty"`
	DurationSeconds  float64        `json:"duration_s"`
	Packets          uint64         `json:"packets"`
	Connections      uint64         `json:"tcp_connections"`
	NonTCP           uint64         `json:"non_tcp_packets"`
	Fragments        uint64         `json:"ip_fragments"`
	Malformed        uint64         `json:"malformed_packets"`
	TruncatedPackets uint64         `json:"truncated_packets"`
	Retransmissions  uint64         `json:"retransmissions"`
	OutOfOrder       uint64         `json:"out_of_order"`
	Gaps             uint64         `json:"gaps"`
	GapBytes         uint64         `json:"gap_bytes"`
	Backwards        uint64         `json:"backwards_timestamps"`
	LinkTypes        []linkTypeJSON `json:"link_types"`
	// Damaged says some of the file could not be read. Damage is why the
	// reading stopped before the end, or else the first damage passed
	// over; DamageRegions lists the damaged regions (the first 64, and the
	// one that stopped the reading), DamagedBytes counts their bytes.
	Damaged       bool         `json:"damaged"`
	Damage        string       `json:"damage,omitempty"`
	DamageRegions []damageJSON `json:"damage_regions,omitempty"`
	DamagedCount  int          `json:"damaged_regions"`
	DamagedBytes  int64        `json:"damaged_bytes"`
}

// damageJSON is one damaged region of a pcap or pcapng: its offset in the
// uncompressed file (-1 when not known), the bytes passed over and why.
type damageJSON struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Reason string `json:"reason"`
}

// linkTypeJSON is one link type of a pcap and its packet count.
type linkTypeJSON struct {
	LinkType int    `json:"link_type"`
	Name     string `json:"name"`
	Packets  uint64 `json:"packets"`
}

// infoPcap reads a pcap or pcapng to its end and describes its packets.
func infoPcap(c *cli.Context, path string, r io.Reader, compressed bool) error {
	rd, err := pcapin.NewReader(r, pcapin.Options{})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rd.Close()
	var first, last uint64
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if t := ev.Time(); t != 0 {
			if first == 0 || t < first {
				first = t
			}
			last = max(last, t)
		}
	}
	n := rd.Counts()
	j := pcapInfoJSON{
		Format: rd.Format(), Compressed: compressed, Packets: n.Packets, Connections: n.Connections,
		NonTCP: n.NonTCP, Fragments: n.Fragments, Malformed: n.Malformed, TruncatedPackets: n.TruncatedPackets,
		Retransmissions: n.Retransmissions, OutOfOrder: n.OutOfOrder, Gaps: n.Gaps, GapBytes: n.GapBytes,
		Backwards: n.Backwards, Damaged: n.DamagedRegions > 0, Damage: n.ReadError,
		DamagedCount: n.DamagedRegions, DamagedBytes: n.DamagedBytes,
	}
	for _, d := range n.Damage {
		j.DamageRegions = append(j.DamageRegions, damageJSON{d.Offset, d.Length, d.Reason})
	}
	if j.Damage == "" && len(n.Damage) > 0 {
		j.Damage = n.Damage[0].Reason
	}
	for _, l := range n.LinkTypes {
		j.LinkTypes = append(j.LinkTypes, linkTypeJSON{l.LinkType, pcapin.LinkTypeName(l.LinkType), l.Packets})
	}
	var start, end time.Time
	if first != 0 {
		start, end = time.Unix(0, int64(first)).UTC(), time.Unix(0, int64(last)).UTC()
		j.Start, j.End = start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)
		j.DurationSeconds = end.Sub(start).Seconds()
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "capture\t%s\n", path)
	comp := ""
	if compressed {
		comp = ", compressed"
	}
	fmt.Fprintf(tw, "format\t%s%s (packets only: no processes, no TLS plaintext)\n", j.Format, comp)
	if first != 0 {
		fmt.Fprintf(tw, "captured\t%s → %s (%s)\n", start.Format(time.RFC3339), end.Format(time.RFC3339), end.Sub(start).Round(time.Millisecond))
	}
	if len(j.LinkTypes) > 0 {
		var links []string
		for _, l := range j.LinkTypes {
			links = append(links, fmt.Sprintf("%s (%d, %d packets)", l.Name, l.LinkType, l.Packets))
		}
		fmt.Fprintf(tw, "links\t%s\n", strings.Join(links, ", "))
	}
	fmt.Fprintf(tw, "packets\t%d (%s; skipped: %d not TCP, %d IP fragments, %d malformed)\n",
		j.Packets, plural(int(j.Connections), "TCP connection"), j.NonTCP, j.Fragments, j.Malformed)
	fmt.Fprintf(tw, "tcp\t%s, %d out of order, %s (%s), %d cut by the snaplen\n",
		plural(int(j.Retransmissions), "retransmission"), j.OutOfOrder, plural(int(j.Gaps), "gap"), report.Bytes(int64(j.GapBytes)), j.TruncatedPackets)
	if j.Backwards > 0 {
		fmt.Fprintf(tw, "time\t%d packets stamped earlier than a packet before them\n", j.Backwards)
	}
	switch {
	case !j.Damaged:
		fmt.Fprintf(tw, "integrity\tread to the end\n")
	case n.ReadError != "":
		fmt.Fprintf(tw, "integrity\tdamaged: %s; the packets before it were read\n", n.ReadError)
	default:
		fmt.Fprintf(tw, "integrity\tdamaged in %s (%s passed over), read to the end\n", plural(j.DamagedCount, "place"), report.Bytes(j.DamagedBytes))
	}
	regions := j.DamageRegions
	if n.ReadError != "" && len(regions) > 0 {
		regions = regions[:len(regions)-1] // the integrity line names it
	}
	for _, d := range regions {
		at := "\t"
		if d.Offset >= 0 {
			at = fmt.Sprintf("\tat byte %d: ", d.Offset)
		}
		fmt.Fprintf(tw, "%s%s (%s)\n", at, d.Reason, report.Bytes(d.Length))
	}
	if extra := j.DamagedCount - len(j.DamageRegions); extra > 0 {
		fmt.Fprintf(tw, "\t… and %s more\n", plural(extra, "region"))
	}
	return tw.Flush()
}

// infoJSON is the stable shape of `rewind info --json`.
type infoJSON struct {
	FormatVersion   int                      `json:"format_version"`
	RecorderVersion string                   `json:"recorder_version"`
	Host            string                   `json:"host"`
	Kernel          string                   `json:"kernel"`
	Start           string                   `json:"start,omitempty"`
	End             string                   `json:"end,omitempty"`
	DurationSeconds float64                  `json:"duration_s"`
	Options         capture.RecordingOptions `json:"options"`
	// PacketClock is "events" when packets are stamped on the events'
	// clock, "wall-mapped" for older recordings with packets.
	PacketClock string   `json:"packet_clock,omitempty"`
	Probes      []string `json:"probes,omitempty"`
	Snapshot    struct {
		Processes int `json:"processes"`
		Sockets   int `json:"sockets"`
	} `json:"snapshot"`
	EventsTotal     uint64            `json:"events_total"`
	EventsByKind    map[string]uint64 `json:"events_by_kind"`
	Connections     int               `json:"connections"`
	BytesIn         uint64            `json:"bytes_in"`
	BytesOut        uint64            `json:"bytes_out"`
	CapturedBytes   uint64            `json:"captured_bytes"`
	TLSBytes        uint64            `json:"tls_bytes"`
	OtherBytes      uint64            `json:"other_protocol_bytes"`
	LostEvents      uint64            `json:"lost_events"`
	LostBySource    map[string]uint64 `json:"lost_by_source"`
	CleanClose      bool              `json:"clean_close"`
	StopReason      string            `json:"stop_reason,omitempty"`
	ChunksRecovered int               `json:"chunks_recovered"`
	ChunksSkipped   int               `json:"chunks_skipped"`
	BytesSkipped    int64             `json:"bytes_skipped"`
	Truncated       bool              `json:"truncated"`
	UnknownKinds    uint64            `json:"unknown_kinds"`
	BadRecords      uint64            `json:"bad_records"`
	Damage          []capture.Damage  `json:"damage,omitempty"`
	// StreamError is why the gzip or zstd stream around the capture could
	// not be read to its end, if it could not.
	StreamError string `json:"stream_error,omitempty"`
	// Credentials counts payloads holding unmasked credential headers.
	Credentials map[string]uint64 `json:"unredacted_credentials"`
	// HTTP2Connections counts connections that start with the HTTP/2
	// preface: `record --redact` cannot mask their HPACK-compressed headers.
	HTTP2Connections int `json:"http2_connections"`
}

func writeInfoJSON(w io.Writer, s *capture.Summary) error {
	var j infoJSON
	h := s.Header
	j.FormatVersion, j.RecorderVersion, j.Host, j.Kernel = h.FormatVersion, h.RecorderVersion, h.Host, h.Kernel
	if start, end := s.Span(); !start.IsZero() {
		j.Start, j.End = start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)
		j.DurationSeconds = end.Sub(start).Seconds()
	}
	j.Options, j.Probes = h.Options, h.Probes
	if h.Options.Packets {
		j.PacketClock = packetClock(h.Clock)
	}
	j.Snapshot.Processes, j.Snapshot.Sockets = s.SnapshotProcesses, s.SnapshotSockets
	j.EventsTotal = s.Stats.Events
	j.EventsByKind = map[string]uint64{}
	for _, k := range capture.Kinds() {
		j.EventsByKind[k.String()] = s.Stats.EventsByKind[k]
	}
	j.Connections, j.BytesIn, j.BytesOut, j.CapturedBytes, j.TLSBytes = s.Connections, s.BytesIn, s.BytesOut, s.CapturedBytes, s.TLSBytes
	j.OtherBytes = s.OtherBytes
	j.LostEvents, j.LostBySource = s.Stats.Lost, s.LostBySource
	j.CleanClose = s.Stats.CleanClose
	if s.Trailer != nil {
		j.StopReason = s.Trailer.StopReason
	}
	j.ChunksRecovered, j.ChunksSkipped, j.BytesSkipped = s.Stats.ChunksRecovered, s.Stats.ChunksSkipped, s.Stats.BytesSkipped
	j.Credentials = s.Credentials
	j.HTTP2Connections = s.HTTP2Connections
	j.Truncated, j.UnknownKinds, j.BadRecords, j.Damage = s.Stats.Truncated, s.Stats.UnknownKinds, s.Stats.BadRecords, s.Stats.Damage
	j.StreamError = s.Stats.StreamError
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func writeInfoText(w io.Writer, path string, s *capture.Summary) {
	h := s.Header
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "capture\t%s\n", path)
	fmt.Fprintf(tw, "format\tversion %d, written by rewind %s\n", h.FormatVersion, h.RecorderVersion)
	fmt.Fprintf(tw, "host\t%s (kernel %s)\n", h.Host, h.Kernel)
	if start, end := s.Span(); !start.IsZero() {
		fmt.Fprintf(tw, "recorded\t%s → %s (%s)\n", start.Format(time.RFC3339), end.Format(time.RFC3339),
			end.Sub(start).Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "options\t%s\n", describeOptions(h.Options))
	if h.Options.Packets {
		fmt.Fprintf(tw, "packets\t%s\n", describePacketClock(h.Clock))
	}
	if len(h.Probes) > 0 {
		fmt.Fprintf(tw, "probes\t%d attached\n", len(h.Probes))
	}
	fmt.Fprintf(tw, "snapshot\t%s, %s\n", plural(s.SnapshotProcesses, "process"), plural(s.SnapshotSockets, "socket"))
	var kinds []string
	for _, k := range capture.Kinds() {
		if n := s.Stats.EventsByKind[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(tw, "events\t%d (%s)\n", s.Stats.Events, strings.Join(kinds, ", "))
	other := ""
	if s.OtherBytes > 0 {
		other = fmt.Sprintf("; %s of other protocols kept by length only", report.Bytes(int64(s.OtherBytes)))
	}
	fmt.Fprintf(tw, "traffic\t%s opened; %s in, %s out (%s captured, %s TLS plaintext%s)\n",
		plural(s.Connections, "connection"), report.Bytes(int64(s.BytesIn)), report.Bytes(int64(s.BytesOut)), report.Bytes(int64(s.CapturedBytes)), report.Bytes(int64(s.TLSBytes)), other)
	if top := s.TopComms(5); len(top) > 0 {
		parts := make([]string, len(top))
		for i, c := range top {
			parts[i] = fmt.Sprintf("%s (%s)", c, plural(int(s.Comms[c]), "data event"))
		}
		fmt.Fprintf(tw, "processes\t%s\n", strings.Join(parts, ", "))
	}
	if s.Stats.Lost > 0 {
		var srcs []string
		for src, n := range s.LostBySource {
			srcs = append(srcs, fmt.Sprintf("%s %d", src, n))
		}
		sort.Strings(srcs)
		fmt.Fprintf(tw, "lost\t%d events (%s)\n", s.Stats.Lost, strings.Join(srcs, ", "))
	} else {
		fmt.Fprintf(tw, "lost\t0 events\n")
	}
	st := s.Stats
	if st.CleanClose && !st.Salvaged() {
		reason := ""
		if s.Trailer != nil && s.Trailer.StopReason != "" {
			reason = ", stopped by " + s.Trailer.StopReason
		}
		fmt.Fprintf(tw, "integrity\tclosed cleanly, %d chunks intact%s\n", st.ChunksRecovered, reason)
	} else {
		state := "closed cleanly"
		if !st.CleanClose {
			state = "NOT closed (still being recorded, or the recording was cut off)"
		}
		fmt.Fprintf(tw, "integrity\t%s: salvaged %s, skipped %s (%s)\n",
			state, plural(st.ChunksRecovered, "chunk"), plural(st.ChunksSkipped, "chunk"), plural(int(st.BytesSkipped), "byte"))
		for _, d := range st.Damage {
			fmt.Fprintf(tw, "\tat byte %d: %s (%s, %s)\n", d.Offset, d.Reason, plural(int(d.Length), "byte"), plural(d.Chunks, "chunk"))
		}
	}
	if len(s.Credentials) > 0 {
		var names []string
		for n, c := range s.Credentials {
			names = append(names, fmt.Sprintf("%s in %s", n, plural(int(c), "payload")))
		}
		sort.Strings(names)
		fmt.Fprintf(tw, "warning\tthe capture holds unredacted credentials (%s): share it with care, or record with --redact\n",
			strings.Join(names, ", "))
	}
	if h.Options.Redact && s.HTTP2Connections > 0 {
		fmt.Fprintf(tw, "warning\trecorded with --redact, but %d HTTP/2 connections carry HPACK-compressed headers that were not masked: they may hold credentials\n",
			s.HTTP2Connections)
	}
	if st.UnknownKinds > 0 {
		verb := "were"
		if st.UnknownKinds == 1 {
			verb = "was"
		}
		fmt.Fprintf(tw, "warning\t%s of kinds this rewind does not know %s skipped: upgrade rewind\n", plural(int(st.UnknownKinds), "event"), verb)
	}
	if st.BadRecords > 0 {
		fmt.Fprintf(tw, "warning\t%s; the rest of their chunks was skipped\n", plural(int(st.BadRecords), "undecodable record"))
	}
	tw.Flush()
}

// packetClock names how a recording's packet times relate to its events'
// times: "events" (the same clock) or "wall-mapped" (older recorders).
func packetClock(c capture.ClockMapping) string {
	if c.PacketClock == capture.PacketClockEvents {
		return capture.PacketClockEvents
	}
	return "wall-mapped"
}

// describePacketClock says how a recording's packet times relate to its
// events' times, and how far the mapping can be off.
func describePacketClock(c capture.ClockMapping) string {
	if packetClock(c) == capture.PacketClockEvents {
		return "stamped by the packet filter on the events' clock (no mapping: error 0)"
	}
	return "stamped on the wall clock and mapped with the readings at the start (error not measured: network times may be off by the wall clock's steps)"
}

func describeOptions(o capture.RecordingOptions) string {
	var parts []string
	for _, p := range o.PIDs {
		parts = append(parts, fmt.Sprintf("--pid %d", p))
	}
	for _, c := range o.Comms {
		parts = append(parts, "--comm "+c)
	}
	for _, c := range o.Cgroups {
		parts = append(parts, "--cgroup "+c)
	}
	for _, c := range o.Containers {
		parts = append(parts, "--container "+c)
	}
	for _, p := range o.Ports {
		parts = append(parts, fmt.Sprintf("--port %d", p))
	}
	if o.Duration != "" {
		parts = append(parts, "--duration "+o.Duration)
	}
	if o.MaxSize > 0 {
		parts = append(parts, "--max-size "+report.Bytes(o.MaxSize))
	}
	parts = append(parts, fmt.Sprintf("snaplen %s", report.Bytes(int64(o.Snaplen))))
	if o.KeepOther {
		parts = append(parts, "--keep-other")
	}
	if o.Compression != "" {
		parts = append(parts, o.Compression+" chunks")
	}
	if !o.TLS {
		parts = append(parts, "no TLS")
	}
	if !o.Packets {
		parts = append(parts, "no packets")
	}
	if o.Redact {
		parts = append(parts, "--redact")
		for _, h := range o.RedactHeaders {
			if !slices.ContainsFunc(redact.DefaultHeaders, func(d string) bool { return strings.EqualFold(d, h) }) {
				parts = append(parts, "--redact-header "+h)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// plural counts n things: "1 place", "3 places", "2 processes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
