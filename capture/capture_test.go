package capture

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"testing"
)

// genEvent returns the i-th event of a deterministic mixed stream: mostly
// data of varied sizes, with every other kind in between.
func genEvent(rng *rand.Rand, i int) Event {
	ts := uint64(1e12) + uint64(i)*1000
	local := netip.MustParseAddrPort("127.0.0.1:8080")
	remote := netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(40000+i%1000))
	switch i % 20 {
	case 0:
		return &Connect{Start: ts - 5, Timestamp: ts, PID: uint32(i), TID: uint32(i + 1), FD: int32(i % 100), Gen: uint32(i % 7), Ret: -115, Local: local, Remote: remote}
	case 1:
		return &Accept{Start: ts - 5, Timestamp: ts, PID: 7, TID: 8, ListenFD: 3, FD: int32(i % 100), Gen: 2, Local: local, Remote: remote}
	case 2:
		return &Close{Timestamp: ts, PID: 7, TID: 9, FD: 4, Gen: 3}
	case 3:
		return &Packet{Timestamp: ts, Ifindex: 1, Dir: Egress, OrigLen: 1500, LinkType: 101, Data: []byte("E\x00\x00\x28packet-bytes")}
	case 4:
		return &TCP{Timestamp: ts, Type: TCPRetransmit, OldState: 1, NewState: 1, PID: 3, Local: local, Remote: remote, Seq: uint32(i)}
	case 5:
		return &Loss{Timestamp: ts, CPU: uint32(i % 2), Source: LossRingbuf, Count: uint64(i % 3)}
	case 6:
		return &Exit{Timestamp: ts, PID: uint32(i), Code: -1}
	case 7:
		return &Process{Timestamp: ts, PID: uint32(i), PPID: 1, UID: 1000, Comm: "curl", Exe: "/usr/bin/curl", Cmdline: "curl -s http://x/", Cgroup: "/user.slice",
			NetNS: 4026531833 + uint64(i%3), CgroupID: uint64(i) << 20, CgroupV1: "4:memory:/docker/x\n1:cpu:/",
			PodName: "web-0", PodNamespace: "shop", Hostname: "web", ContainerName: "nginx"}
	case 8:
		return &Socket{Timestamp: ts, PID: 5, FD: 6, Inode: 123456, Role: RoleServer, State: 1, Local: local, Remote: netip.AddrPort{}}
	}
	n := []int{0, 16, 80, 300, 1400, 4096}[rng.IntN(6)]
	p := make([]byte, n)
	for j := range p {
		p[j] = "GET /index.html HTTP/1.1\r\nHost: example\r\n"[(i+j)%41]
	}
	return &Data{Start: ts - 100, Timestamp: ts, PID: 42, TID: 43, FD: 5, Gen: 1, Source: SourceRecvfrom,
		Dir: Ingress, Flags: DataTruncated, Len: uint32(n + 10), Offset: 0, TLSConn: uint64(i), Payload: p}
}

func normalize(ev Event) Event {
	switch e := ev.(type) {
	case *Data:
		if len(e.Payload) == 0 {
			e.Payload = nil
		}
	case *Packet:
		if len(e.Data) == 0 {
			e.Data = nil
		}
	}
	return ev
}

// codecs are the chunk codecs every reading test runs with.
var codecs = []Codec{CodecZstd, CodecS2}

func writeCapture(t testing.TB, n int, chunk int) []byte {
	return writeCaptureWith(t, n, WriterOptions{ChunkSize: chunk})
}

func writeCaptureWith(t testing.TB, n int, opts WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Host: "h", Kernel: "k"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSnapshot(&Process{PID: 1, Comm: "init", Snapshot: true}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		if err := w.Write(genEvent(rng, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTripMillion(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) { testRoundTrip(t, codec) })
	}
}

func testRoundTrip(t *testing.T, codec Codec) {
	n := 1_000_000
	if testing.Short() {
		n = 50_000
	}
	data := writeCaptureWith(t, n, WriterOptions{Codec: codec})
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// The header names the oldest format that reads the file: zstd
	// captures stay readable by rewinds that know only version 1.
	wantVersion := map[Codec]int{CodecZstd: 1, CodecS2: 2}[codec]
	if h := r.Header(); h.FormatVersion != wantVersion || h.Host != "h" {
		t.Fatalf("header = %+v, want format version %d", h, wantVersion)
	}
	_, fs := frames(t, data)
	for _, f := range fs {
		if want := map[Codec]byte{CodecZstd: codecZstd, CodecS2: codecS2}[codec]; f.codec != want && f.codec != codecNone {
			t.Fatalf("frame at %d has codec %d, want %d", f.start, f.codec, want)
		}
	}
	first, err := r.Next()
	if err != nil || !r.InSnapshot() {
		t.Fatalf("first event: %v, snapshot=%v", err, r.InSnapshot())
	}
	if p, ok := first.(*Process); !ok || p.Comm != "init" || !p.Snapshot {
		t.Fatalf("snapshot entry = %#v", first)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if r.InSnapshot() {
			t.Fatalf("event %d still in snapshot section", i)
		}
		want := genEvent(rng, i)
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("event %d:\n got %#v\nwant %#v", i, got, want)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last event: %v, want EOF", err)
	}
	st := r.Stats()
	if st.Salvaged() || !st.CleanClose || st.Events != uint64(n+1) {
		t.Fatalf("stats = %+v", st)
	}
	tr := r.Trailer()
	if tr == nil || tr.Events != uint64(n+1) || tr.EventsByKind["data"] != st.EventsByKind[KindData] || tr.Lost != st.Lost {
		t.Fatalf("trailer = %+v, stats lost %d", tr, st.Lost)
	}
	t.Logf("%d events: %d bytes on disk, %d chunks", n+1, len(data), st.ChunksRecovered)
}

// frame is a frame's extent in a file, found by walking the intact file.
type frame struct {
	start, end int
	typ        byte
	codec      byte
	events     int
}

func frames(t *testing.T, data []byte) (headerEnd int, fs []frame) {
	t.Helper()
	hlen := int(le.Uint32(data[12:]))
	off := preambleSize + hlen + 4
	headerEnd = off
	for off < len(data) {
		fh, ok := parseFrameHeader(data[off : off+frameHeaderSize])
		if !ok {
			t.Fatalf("bad frame at %d", off)
		}
		end := off + frameHeaderSize + int(fh.storedLen)
		fs = append(fs, frame{off, end, fh.typ, fh.codec, int(fh.events)})
		off = end
	}
	return headerEnd, fs
}

type readResult struct {
	events uint64
	stats  Stats
	err    error
}

func readAll(data []byte) readResult {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return readResult{err: err}
	}
	defer r.Close()
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readResult{err: err}
		}
	}
	return readResult{events: r.Stats().Events, stats: *r.Stats()}
}

func smallCapture(t *testing.T, codec Codec) []byte {
	data := writeCaptureWith(t, 120, WriterOptions{ChunkSize: 600, Codec: codec})
	if len(data) < 4096 {
		t.Fatalf("test capture is only %d bytes", len(data))
	}
	return data
}

// TestCutAtEveryOffset cuts a multi-chunk capture at every byte and checks
// that the reader recovers exactly the chunks before the cut.
func TestCutAtEveryOffset(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) { testCutAtEveryOffset(t, codec) })
	}
}

func testCutAtEveryOffset(t *testing.T, codec Codec) {
	data := smallCapture(t, codec)
	headerEnd, fs := frames(t, data)
	if len(fs) < 5 {
		t.Fatalf("only %d frames", len(fs))
	}
	t.Logf("cutting a %d-byte capture of %d chunks at each of its %d offsets", len(data), len(fs), len(data)+1)
	for c := 0; c <= len(data); c++ {
		res := readAll(data[:c])
		if c < headerEnd {
			if res.err == nil {
				t.Fatalf("cut at %d (inside header): no error", c)
			}
			continue
		}
		if res.err != nil {
			t.Fatalf("cut at %d: %v", c, res.err)
		}
		var wantEvents uint64
		wantRecovered, wantSkipped, atBoundary := 0, 0, c == headerEnd
		for _, f := range fs {
			if f.end <= c {
				wantRecovered++
				wantEvents += uint64(f.events)
			}
			if f.end == c {
				atBoundary = true
			}
		}
		if !atBoundary {
			wantSkipped = 1
		}
		st := res.stats
		if res.events != wantEvents || st.ChunksRecovered != wantRecovered || st.ChunksSkipped != wantSkipped ||
			st.CleanClose != (c == len(data)) || st.Truncated != !atBoundary {
			t.Fatalf("cut at %d/%d: events %d recovered %d skipped %d clean %v truncated %v; want %d %d %d %v %v",
				c, len(data), res.events, st.ChunksRecovered, st.ChunksSkipped, st.CleanClose, st.Truncated,
				wantEvents, wantRecovered, wantSkipped, c == len(data), !atBoundary)
		}
		if !atBoundary && st.BytesSkipped == 0 {
			t.Fatalf("cut at %d: no skipped bytes reported", c)
		}
	}
}

// TestCorruptEveryByte flips each byte after the header in turn and checks
// that exactly the chunk holding it is lost and every other one is read.
func TestCorruptEveryByte(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) { testCorruptEveryByte(t, codec) })
	}
}

func testCorruptEveryByte(t *testing.T, codec Codec) {
	data := smallCapture(t, codec)
	headerEnd, fs := frames(t, data)
	var total uint64
	for _, f := range fs {
		total += uint64(f.events)
	}
	bad := make([]byte, len(data))
	for i := headerEnd; i < len(data); i++ {
		copy(bad, data)
		bad[i] ^= 0x5a
		var hit frame
		for _, f := range fs {
			if i >= f.start && i < f.end {
				hit = f
			}
		}
		res := readAll(bad)
		if res.err != nil {
			t.Fatalf("byte %d: %v", i, res.err)
		}
		st := res.stats
		wantClean := hit.typ != frameTrailer
		if res.events != total-uint64(hit.events) || st.ChunksRecovered != len(fs)-1 || st.ChunksSkipped != 1 ||
			st.CleanClose != wantClean || len(st.Damage) != 1 {
			t.Fatalf("byte %d in %c frame [%d,%d): events %d/%d recovered %d skipped %d clean %v damage %+v",
				i, hit.typ, hit.start, hit.end, res.events, total-uint64(hit.events), st.ChunksRecovered, st.ChunksSkipped, st.CleanClose, st.Damage)
		}
		if d := st.Damage[0]; d.Offset != int64(hit.start) || d.Length != int64(hit.end-hit.start) {
			t.Fatalf("byte %d: damage %+v, want offset %d length %d", i, d, hit.start, hit.end-hit.start)
		}
	}
}

func TestMissingChunkInMiddle(t *testing.T) {
	data := smallCapture(t, CodecZstd)
	_, fs := frames(t, data)
	f := fs[2]
	cut := append(append([]byte{}, data[:f.start]...), data[f.end:]...)
	res := readAll(cut)
	if res.err != nil || res.stats.ChunksSkipped != 1 || res.stats.BytesSkipped != 0 || !res.stats.CleanClose {
		t.Fatalf("removed chunk: %+v %v", res.stats, res.err)
	}
}

func TestNotACapture(t *testing.T) {
	for _, in := range []string{"", "hello world, this is text", "\x89PNG\r\n\x1a\n0000000000"} {
		if _, err := NewReader(bytes.NewReader([]byte(in))); !errors.Is(err, ErrNotCapture) {
			t.Errorf("%q: err = %v, want ErrNotCapture", in, err)
		}
	}
}

func TestNewerVersion(t *testing.T) {
	data := writeCapture(t, 3, 0)
	le.PutUint16(data[8:], FormatVersion+1)
	_, err := NewReader(bytes.NewReader(data))
	var nv *NewerVersionError
	if !errors.As(err, &nv) || nv.Version != FormatVersion+1 {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownKindSkipped(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{}, WriterOptions{})
	w.Write(&Close{Timestamp: 1, PID: 1, FD: 3})
	// A record of kind 200 as a newer recorder might write it.
	w.raw = append(w.raw, 200, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c')
	w.nEvents++
	w.Write(&Close{Timestamp: 2, PID: 1, FD: 4})
	w.Close()
	res := readAll(buf.Bytes())
	if res.err != nil || res.events != 2 || res.stats.UnknownKinds != 1 {
		t.Fatalf("%+v %v", res.stats, res.err)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) { benchmarkWrite(b, codec) })
	}
}

func benchmarkWrite(b *testing.B, codec Codec) {
	rng := rand.New(rand.NewPCG(1, 2))
	evs := make([]Event, 10000)
	var raw int
	for i := range evs {
		evs[i] = genEvent(rng, i)
		raw += len(appendEvent(nil, evs[i]))
	}
	w, _ := NewWriter(io.Discard, Header{}, WriterOptions{Codec: codec})
	b.SetBytes(int64(raw / len(evs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(evs[i%len(evs)])
	}
	w.Close()
}

func BenchmarkRead(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) { benchmarkRead(b, codec) })
	}
}

func benchmarkRead(b *testing.B, codec Codec) {
	const n = 200_000
	data := writeCaptureWith(b, n, WriterOptions{Codec: codec})
	r0, _ := NewReader(bytes.NewReader(data))
	var raw int64
	for {
		ev, err := r0.Next()
		if err != nil {
			break
		}
		raw += int64(len(appendEvent(nil, ev)))
	}
	b.SetBytes(raw)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		r.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{Host: "fuzz"}, WriterOptions{ChunkSize: 200})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 40; i++ {
		w.Write(genEvent(rng, i))
	}
	w.Close()
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read error on in-memory input: %v", err)
			}
		}
		st := r.Stats()
		if st.ChunksSkipped < 0 || st.BytesSkipped < 0 || st.BytesSkipped > int64(len(data)) {
			t.Fatalf("implausible stats %+v", st)
		}
	})
}

// recordedEvents returns the events of testdata/sample.rwd (real traffic
// recorded from the demo workload), for benchmarks on realistic payloads.
func recordedEvents(b *testing.B) []Event {
	f, err := os.Open("../testdata/sample.rwd")
	if err != nil {
		b.Skip("testdata/sample.rwd:", err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		if !r.InSnapshot() {
			evs = append(evs, Clone(ev))
		}
	}
	return evs
}

// BenchmarkWriteRecorded and BenchmarkReadRecorded measure throughput on
// recorded HTTP traffic, whose payloads compress like real ones do.
func BenchmarkWriteRecorded(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) { benchmarkWriteRecorded(b, codec) })
	}
}

func benchmarkWriteRecorded(b *testing.B, codec Codec) {
	evs := recordedEvents(b)
	var raw int
	for _, ev := range evs {
		raw += len(appendEvent(nil, ev))
	}
	w, _ := NewWriter(io.Discard, Header{}, WriterOptions{Codec: codec})
	b.SetBytes(int64(raw / len(evs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(evs[i%len(evs)])
	}
	w.Close()
}

func BenchmarkReadRecorded(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) { benchmarkReadRecorded(b, codec) })
	}
}

func benchmarkReadRecorded(b *testing.B, codec Codec) {
	evs := recordedEvents(b)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{}, WriterOptions{Codec: codec})
	var raw int64
	for raw < 64<<20 {
		for _, ev := range evs {
			w.Write(ev)
			raw += int64(len(appendEvent(nil, ev)))
		}
	}
	w.Close()
	data := buf.Bytes()
	b.SetBytes(raw)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _ := NewReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		r.Close()
	}
	b.ReportMetric(float64(raw)/float64(len(data)), "ratio")
}

// BenchmarkWriteIncompressible writes 4 KiB random payloads: the worst case
// for the compressor (chunks end up stored).
func BenchmarkWriteIncompressible(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	evs := make([]Event, 256)
	for i := range evs {
		p := make([]byte, 4096)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		evs[i] = &Data{Timestamp: uint64(i), PID: 1, FD: 3, Dir: Egress, Len: 4096, Payload: p}
	}
	w, _ := NewWriter(io.Discard, Header{}, WriterOptions{})
	b.SetBytes(int64(len(appendEvent(nil, evs[0]))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(evs[i%len(evs)])
	}
	w.Close()
}

// TestProcessWithoutAppendedFields reads process records as older
// recorders wrote them, each ending before a group of appended fields:
// before the network namespace and cgroup id, before the pod name,
// namespace and hostname, and before the container name. The fields a
// record lacks read as unknown (0 or "").
func TestProcessWithoutAppendedFields(t *testing.T) {
	full := &Process{Timestamp: 9, PID: 1, Comm: "nginx", Cgroup: "/system.slice/nginx.service", NetNS: 4026531833, CgroupID: 77, CgroupV1: "1:cpu:/",
		PodName: "web-0", PodNamespace: "shop", Hostname: "web-0", ContainerName: "nginx"}
	rec := appendEvent(nil, full)
	var d decoder
	// The decoder reuses its values: decode the full record first.
	if ev, err := d.decode(KindProcess, rec[recordHeaderSize:]); err != nil || *ev.(*Process) != *full {
		t.Fatalf("full record: %+v, %v", ev, err)
	}
	noName := 4 + len(full.ContainerName)
	noPod := noName + 3*4 + len(full.PodName) + len(full.PodNamespace) + len(full.Hostname)
	noNetNS := noPod + 16 + 4 + len(full.CgroupV1)
	for _, c := range []struct {
		what string
		cut  int
		want Process
	}{
		{"before the netns", noNetNS, Process{Timestamp: 9, PID: 1, Comm: "nginx", Cgroup: full.Cgroup}},
		{"before the pod", noPod, Process{Timestamp: 9, PID: 1, Comm: "nginx", Cgroup: full.Cgroup, NetNS: full.NetNS, CgroupID: 77, CgroupV1: full.CgroupV1}},
		{"before the container name", noName, Process{Timestamp: 9, PID: 1, Comm: "nginx", Cgroup: full.Cgroup, NetNS: full.NetNS, CgroupID: 77, CgroupV1: full.CgroupV1,
			PodName: "web-0", PodNamespace: "shop", Hostname: "web-0"}},
	} {
		old := append([]byte(nil), rec[:len(rec)-c.cut]...)
		le.PutUint32(old[4:], uint32(len(old)-recordHeaderSize))
		ev, err := d.decode(KindProcess, old[recordHeaderSize:])
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if p := ev.(*Process); *p != c.want {
			t.Errorf("record %s decoded as %+v", c.what, p)
		}
	}
}
