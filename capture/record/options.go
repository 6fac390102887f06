// Package record is the recording session: it loads and attaches the
// probes of package bpf, takes the /proc and sock_diag snapshot, drains the
// kernel's ring buffer (syscall events and packets alike), sorts events by time, applies
// record-time redaction and writes everything through a [capture.Writer].
//
// Recording needs Linux with eBPF. On every other system the package builds
// (so the command line does) and [ToFile] and [ToWriter] return an
// [*UnavailableError] that says so; analysis works everywhere.
package record

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rewind-tools/rewind/capture"
)

// Options configure a recording session ([ToWriter]).
type Options struct {
	// PIDs and Comms select the processes to record (their union); empty
	// records every process but the recorder. Children a selected PID starts
	// during the recording are recorded too.
	PIDs  []int
	Comms []string
	// Cgroups and Containers select, in the kernel, the processes of
	// cgroup v2 directories and those below them (a path from the v2
	// root, or in full) and of running containers (each by its name, as
	// its runtime's files on the node give it, else by a prefix of 4 or
	// more characters of its id; nspawn: the machine's name), in union
	// with PIDs and Comms; processes outside them cost no user-space
	// work. A container is found by its cgroup when the recording
	// starts: one started later is not recorded. A value that fits no
	// running container, or several, is a [*SelectionError].
	Cgroups    []string
	Containers []string
	// Ports keeps connections whose local or remote port is listed.
	Ports []int
	// Duration stops the recording after this long; 0 records until ctx is
	// cancelled or MaxSize is reached.
	Duration time.Duration
	// MaxSize stops the recording once the file reaches about this many
	// bytes; 0 means no limit.
	MaxSize int64
	// Snaplen is the payload bytes kept per call (default 16 KiB). Calls that
	// moved more are recorded with their full length and flagged truncated.
	Snaplen int
	// KeepOther keeps the payload of connections of protocols rewind does
	// not parse. Without it such a connection, told by its first bytes,
	// keeps those calls whole and the later ones by length only
	// (capture.DataOtherProtocol), so bulk transfers and binary protocols
	// beside the traced HTTP cost no copies.
	KeepOther bool
	// TLS records the plaintext of TLS libraries (OpenSSL, BoringSSL,
	// GnuTLS, Go crypto/tls) with uprobes, in the running processes and the
	// ones started during the recording; their connections' ciphertext is
	// then recorded by length only.
	TLS bool
	// Packets captures the traced connections' TCP packets (IP and TCP
	// headers plus 128 payload bytes) on interface Iface ("" for all) with an
	// AF_PACKET socket, for network timings and retransmissions. It needs
	// root or CAP_NET_RAW; without it the recorder says so on Log and records
	// without packets.
	Packets bool
	Iface   string
	// Redact masks the values of credential headers (Authorization,
	// Proxy-Authorization, Cookie, Set-Cookie, and RedactHeaders) in HTTP/1
	// payloads before they are written, byte for byte with '*'. HTTP/2
	// header blocks are HPACK-compressed and are not masked.
	Redact        bool
	RedactHeaders []string
	// RingSize is the kernel ring buffer size in bytes (a power of two;
	// default 32 MiB).
	RingSize int
	// Compression is the capture's chunk codec (default capture.CodecZstd;
	// `rewind record` uses capture.CodecS2, a third of the CPU per byte).
	Compression capture.Codec
	// VerifierLog is where the verifier's log goes if the kernel refuses a
	// program (default a temporary file); the error names the file.
	VerifierLog string
	// Version is the recorder version written into the header.
	Version string
	// Log receives the recorder's messages (nil discards them): the line
	// that says every probe is attached, and notices.
	Log io.Writer
	// Ready, when set, is called once every probe is attached and the
	// snapshot written, before any traffic is drained.
	Ready func(probes []string)
	// Progress, when set, is called about once a second.
	Progress func(Progress)
}

// Progress is the live state of a recording.
type Progress struct {
	Elapsed time.Duration
	Events  uint64 // events written, snapshot included
	Bytes   int64  // file bytes written
	Lost    uint64 // events the kernel could not deliver
}

// Result says what a recording wrote.
type Result struct {
	Events     uint64
	Bytes      int64
	Lost       uint64
	StopReason string
	Probes     []string
}

// AttachedMessage is the prefix of the line the recorder writes to
// Options.Log once every probe is attached; scripts wait for it.
const AttachedMessage = "rewind: recording"

// ToFile records into a new file at path (mode 0600), created once the
// probes are attached. See [ToWriter].
func ToFile(ctx context.Context, opts Options, path string) (*Result, error) {
	var f *os.File
	create := func() (io.Writer, error) {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating capture file: %w", err)
		}
		return f, nil
	}
	res, err := record(ctx, opts, create)
	if f != nil {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing capture file: %w", cerr)
		}
	}
	return res, err
}

// Record loads and attaches the probes, writes the header and the /proc and
// sock_diag snapshot to w, then drains the kernel's records into it until
// ctx is cancelled (stop reason "signal"), Duration passes ("duration") or
// MaxSize is reached ("max-size"), and closes the capture with its trailer.
// It flushes at least once a second, so a file cut off loses at most about
// a second. It needs root, or CAP_BPF and CAP_PERFMON.
func ToWriter(ctx context.Context, opts Options, w io.Writer) (*Result, error) {
	return record(ctx, opts, func() (io.Writer, error) { return w, nil })
}

// UnavailableError means recording cannot start on this host at all: the
// system is not Linux, or the process lacks the privileges eBPF needs. Its
// message is meant for the user as it is.
type UnavailableError struct {
	Reason string
}

func (e *UnavailableError) Error() string { return e.Reason }

// SelectionError means a --cgroup or --container value of [Options]
// selects nothing, or a container value several containers: a mistake in
// what was asked, not the host's. Its message, meant for the user as it
// is, says what was searched or lists the candidates.
type SelectionError struct {
	Msg string
}

func (e *SelectionError) Error() string { return e.Msg }
