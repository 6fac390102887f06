package capture

import (
	"time"
)

// FormatVersion is the newest capture format version this package writes.
// Readers read every version up to and including it. A writer puts the
// oldest version that can read its file in the header: 1 for zstd chunks,
// 2 once chunks may be S2 ([CodecS2]), so a capture an older rewind can
// read still says so, and one it cannot is refused with
// [NewerVersionError] rather than read as damaged chunks.
const FormatVersion = 2

// Header describes a recording. It is stored as JSON right after the file's
// magic, so fields can be added without a format version change; readers
// ignore fields they do not know.
type Header struct {
	FormatVersion   int              `json:"format_version"`
	RecorderVersion string           `json:"recorder_version"`
	Host            string           `json:"host"`
	Kernel          string           `json:"kernel"`
	Arch            string           `json:"arch,omitempty"`
	BootID          string           `json:"boot_id,omitempty"`
	Clock           ClockMapping     `json:"clock"`
	Options         RecordingOptions `json:"options"`
	// Probes lists what was attached ("tracepoint:syscalls:sys_enter_read",
	// "uprobe:/usr/lib/.../libssl.so.3:SSL_read", …), for `rewind info`.
	Probes []string `json:"probes,omitempty"`
	// NetNS is the inode of the recorder's network namespace, where its
	// packets were captured (a process's connections are matched with
	// packets only in that namespace); 0 in older captures.
	NetNS uint64 `json:"netns,omitempty"`
}

// ClockMapping maps the monotonic clock that event timestamps use to wall-clock
// time: both clocks were read back to back when recording started.
type ClockMapping struct {
	MonoNS     uint64 `json:"mono_ns"`      // CLOCK_MONOTONIC, ns
	WallUnixNS int64  `json:"wall_unix_ns"` // CLOCK_REALTIME, ns since the Unix epoch
	// BoottimeNS is CLOCK_BOOTTIME at the same moment; packet timestamps from
	// some sources use it.
	BoottimeNS uint64 `json:"boottime_ns,omitempty"`
	// PacketClock says how packet timestamps relate to the events' clock:
	// PacketClockEvents when the packet filter stamps them with
	// bpf_ktime_get_ns (the clock of every other event: no mapping, no
	// error); empty in captures of recorders before it, whose packets were
	// stamped with CLOCK_REALTIME and mapped with this header's readings
	// (an error of the wall clock's steps during the recording, not
	// measured).
	PacketClock string `json:"packet_clock,omitempty"`
	// Zone is the recording host's time zone offset in seconds east of UTC,
	// so reports can show local times of the host that recorded.
	ZoneOffset int `json:"zone_offset_s"`
}

// PacketClockEvents is [ClockMapping].PacketClock of captures whose packets
// are stamped on the events' clock.
const PacketClockEvents = "events"

// Wall converts a monotonic timestamp to wall-clock time in the recording
// host's zone.
func (c ClockMapping) Wall(mono uint64) time.Time {
	ns := c.WallUnixNS + int64(mono) - int64(c.MonoNS)
	return time.Unix(0, ns).In(time.FixedZone("", c.ZoneOffset))
}

// RecordingOptions are the recorder settings in force, kept in the header so
// that an analyst knows what the capture can and cannot contain.
type RecordingOptions struct {
	PIDs  []int    `json:"pids,omitempty"`
	Comms []string `json:"comms,omitempty"`
	// Cgroups and Containers are record's --cgroup and --container.
	Cgroups    []string `json:"cgroups,omitempty"`
	Containers []string `json:"containers,omitempty"`
	Ports      []int    `json:"ports,omitempty"`
	Duration   string   `json:"duration,omitempty"`
	MaxSize    int64    `json:"max_size,omitempty"`
	Snaplen    int      `json:"snaplen"`
	// KeepOther is record's --keep-other: connections of other protocols
	// kept whole. False in older recordings, which kept every payload
	// (their recorders did not tell protocols apart).
	KeepOther bool   `json:"keep_other,omitempty"`
	TLS       bool   `json:"tls"`
	Packets   bool   `json:"packets"`
	Iface     string `json:"iface,omitempty"`
	Redact    bool   `json:"redact,omitempty"`
	// RedactHeaders are the headers whose values `record --redact` masked.
	RedactHeaders []string `json:"redact_headers,omitempty"`
	// Compression is record's --compression ("s2", "zstd"); absent in
	// older recordings, which are all zstd.
	Compression string `json:"compression,omitempty"`
}

// Trailer closes a capture that was recorded to the end. Its absence means the
// recording was cut off (crash, kill, full disk); the reader then reports the
// file as salvaged.
type Trailer struct {
	EndMonoNS    uint64            `json:"end_mono_ns"`
	EndWallNS    int64             `json:"end_wall_unix_ns"`
	Events       uint64            `json:"events"`
	EventsByKind map[string]uint64 `json:"events_by_kind"`
	Chunks       uint64            `json:"chunks"`
	// Lost is the total of all Loss events written.
	Lost       uint64            `json:"lost_events"`
	LostByKind map[string]uint64 `json:"lost_by_source,omitempty"`
	// StopReason says why recording ended: "duration", "max-size", "signal",
	// "error: …", or "closed" for programmatic writers.
	StopReason string `json:"stop_reason,omitempty"`
}
