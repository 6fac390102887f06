// Package capture is the .rwd capture file format: the raw probe events a
// recording holds (socket data, connects, accepts, closes, process and
// packet events), the JSON header with the clock mapping and recorder
// options, the snapshot of processes and sockets at the start, and the
// trailer with counts and losses.
//
// A [Writer] frames events into independent zstd chunks, each with its length
// and CRC, so that a file cut off or damaged part-way still yields every
// intact chunk; a [Reader] streams events back, salvaging what is intact and
// saying what was lost. [Summarize] describes a file for `rewind info`. The
// bytes are specified in FORMAT.md.
//
// This package is portable and has no dependency on the recorder: recording
// lives in package record (Linux only), replay in package analyze.
package capture
