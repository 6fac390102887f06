//go:build linux

package record_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// The live tests record a workload that runs in a child process: the test
// binary itself, re-executed with REWIND_LIVE_HELPER set (see
// TestLiveHelper). The recorder runs in the test process and never traces its
// own process, so the workload must live in another one; it also makes the
// recording realistic.

const helperEnv = "REWIND_LIVE_HELPER"

// recording is a recorder running in the background.
type recording struct {
	path string
	done chan struct{}
	res  *record.Result
	err  error
	stop context.CancelFunc
}

// startRecording starts record.ToFile and waits until every probe is
// attached.
func startRecording(t *testing.T, opts record.Options) *recording {
	t.Helper()
	bpftest.RequireRoot(t)
	r := &recording{path: filepath.Join(t.TempDir(), "live.rwd"), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r.stop = cancel
	ready := make(chan struct{})
	opts.Ready = func([]string) { close(ready) }
	go func() {
		defer close(r.done)
		r.res, r.err = record.ToFile(ctx, opts, r.path)
	}()
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("recorder stopped before attaching: %v", r.err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("recorder did not attach within 60s")
	}
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// finish stops the recording and returns its events.
func (r *recording) finish(t *testing.T) []capture.Event {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // let the last records reach the ring
	r.stop()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("recorder did not stop within 60s")
	}
	if r.err != nil {
		t.Fatalf("recording: %v", r.err)
	}
	if r.res.StopReason != "signal" {
		t.Errorf("stop reason %q, want signal", r.res.StopReason)
	}
	f, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
		t.Errorf("capture file mode %v, want 0600", st.Mode().Perm())
	}
	rd, err := capture.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var evs []capture.Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, capture.Clone(ev))
	}
	if !rd.Stats().CleanClose {
		t.Error("capture not closed cleanly")
	}
	if rd.Stats().Lost > 0 {
		t.Errorf("the kernel lost %d events", rd.Stats().Lost)
	}
	if len(rd.Header().Probes) == 0 || rd.Header().Clock.MonoNS == 0 || rd.Header().BootID == "" {
		t.Errorf("header incomplete: %+v", rd.Header())
	}
	return evs
}

// helper starts the test binary as a workload child in mode, with args.
func helper(t *testing.T, mode string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLiveHelper$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "REWIND_HELPER_ARGS="+strings.Join(args, ","))
	cmd.Stderr = os.Stderr
	return cmd
}

// connKey identifies a connection in a capture.
type connKey struct {
	pid uint32
	fd  int32
	gen uint32
}

// stream is one connection's reassembled bytes.
type stream struct {
	in, out []byte
	calls   int
}

// reassemble joins the Data events of each connection, checking that the
// fragments of every call are contiguous. When exact is set, no call may be
// truncated.
func reassemble(t *testing.T, evs []capture.Event, exact bool) map[connKey]*stream {
	t.Helper()
	out := map[connKey]*stream{}
	// The fragments of a call follow each other among the records of its
	// thread; other CPUs' records may come between them (the file is in
	// the ring's order).
	type call struct {
		d   *capture.Data
		got uint32
	}
	calls := map[uint32]*call{} // by thread
	done := func(c *call) {
		if c != nil && exact && c.got != c.d.Len {
			t.Errorf("call on %v: captured %d of %d bytes", connKey{c.d.PID, c.d.FD, c.d.Gen}, c.got, c.d.Len)
		}
	}
	for _, ev := range evs {
		d, ok := ev.(*capture.Data)
		if !ok {
			continue
		}
		k := connKey{d.PID, d.FD, d.Gen}
		s := out[k]
		if s == nil {
			s = &stream{}
			out[k] = s
		}
		cur := calls[d.TID]
		if d.Offset == 0 {
			done(cur)
			cur = &call{d: d}
			calls[d.TID] = cur
			s.calls++
		} else if cur == nil || cur.d.FD != d.FD || d.Offset != cur.got {
			var have uint32
			if cur != nil {
				have = cur.got
			}
			t.Fatalf("fragment at offset %d of %v does not follow its call (have %d bytes)", d.Offset, k, have)
		}
		cur.got += uint32(len(d.Payload))
		if exact && d.Truncated() {
			t.Errorf("truncated data on %v (len %d, offset %d, payload %d)", k, d.Len, d.Offset, len(d.Payload))
		}
		if d.Dir == capture.Ingress {
			s.in = append(s.in, d.Payload...)
		} else {
			s.out = append(s.out, d.Payload...)
		}
	}
	for _, c := range calls {
		done(c)
	}
	return out
}

// transcript is what the helper's client sent and received on one
// connection, keyed by the client's local address.
type transcript struct {
	Local    string `json:"local"`
	Sent     []byte `json:"sent"`
	Received []byte `json:"received"`
}

// recordingConn keeps every byte a client connection moves.
type recordingConn struct {
	net.Conn
	mu       sync.Mutex
	sent     bytes.Buffer
	received bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.received.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// Write records p before sending it: the peer may answer (and the client
// finish) before Write returns.
func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	before := c.sent.Len()
	c.sent.Write(p)
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.mu.Lock()
		c.sent.Truncate(before + n)
		c.mu.Unlock()
	}
	return n, err
}

// body returns n deterministic, compressible bytes.
func body(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d:%d;", seed, i)
	}
	return b.Bytes()[:n]
}

// TestLiveHelper is not a test: it is the workload of the live tests, run in
// a child process when REWIND_LIVE_HELPER is set.
func TestLiveHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("workload helper for the live tests")
	}
	args := strings.Split(os.Getenv("REWIND_HELPER_ARGS"), ",")
	var err error
	switch mode {
	case "http":
		err = helperHTTP(args)
	case "preexisting":
		err = helperPreexisting()
	case "reuse":
		err = helperReuse(args)
	case "protocols":
		err = helperProtocols()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperHTTP runs a net/http server and client: keep-alive requests, then
// requests on fresh connections, with bodies of 0 B, 100 B, 64 KiB and
// 1 MiB echoed back. It writes the client's transcripts as JSON to args[0].
func helperHTTP(args []string) error {
	keepAlive, _ := strconv.Atoi(args[1])
	fresh, _ := strconv.Atoi(args[2])
	bigEvery, _ := strconv.Atoi(args[3])
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})}
	go srv.Serve(ln)

	var mu sync.Mutex
	var conns []*recordingConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rc := &recordingConn{Conn: c}
		mu.Lock()
		conns = append(conns, rc)
		mu.Unlock()
		return rc, nil
	}
	sizes := []int{0, 100, 64 << 10}
	do := func(client *http.Client, i int) error {
		n := sizes[i%len(sizes)]
		if i%bigEvery == bigEvery-1 {
			n = 1 << 20
		}
		want := body(n, i)
		resp, err := client.Post("http://"+ln.Addr().String()+"/echo", "application/octet-stream", bytes.NewReader(want))
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("request %d: echo differs", i)
		}
		return nil
	}
	ka := &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}}
	for i := 0; i < keepAlive; i++ {
		if err := do(ka, i); err != nil {
			return err
		}
	}
	fr := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	for i := 0; i < fresh; i++ {
		if err := do(fr, i); err != nil {
			return err
		}
	}
	ka.CloseIdleConnections()
	fr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	var ts []transcript
	for _, c := range conns {
		c.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		ts = append(ts, transcript{Local: c.LocalAddr().String(), Sent: c.sent.Bytes(), Received: c.received.Bytes()})
	}
	js, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return os.WriteFile(args[0], js, 0o600)
}

// echoServer accepts connections and echoes lines back, in this process.
func echoServer() (net.Listener, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln, nil
}

// helperPreexisting opens a connection, prints its addresses, waits for a
// line on stdin (the recorder is attached), then uses it.
func helperPreexisting() error {
	ln, err := echoServer()
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", c.LocalAddr(), c.RemoteAddr())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	msg := []byte("hello from before the recording\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	return c.Close()
}

// helperReuse writes a log file, then sends one message on each of two
// connections opened one after the other (the second reuses the first's
// fd number), and prints both fds.
func helperReuse(args []string) error {
	logf, err := os.Create(args[0])
	if err != nil {
		return err
	}
	for i := 0; i < 200; i++ {
		fmt.Fprintf(logf, "LOGLINE %d: the traced process writes its log\n", i)
		logf.Sync()
	}
	logf.Close()
	ln, err := echoServer()
	if err != nil {
		return err
	}
	var fds []string
	for _, msg := range []string{"first connection\n", "second connection\n"} {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		raw, _ := c.(*net.TCPConn).SyscallConn()
		_ = raw.Control(func(fd uintptr) { fds = append(fds, strconv.Itoa(int(fd))) })
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			return err
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println(strings.Join(fds, " "))
	return nil
}

func TestLiveRecordGoHTTPExact(t *testing.T) {
	out := filepath.Join(t.TempDir(), "transcripts.json")
	rec := startRecording(t, record.Options{Comms: []string{selfComm()}, Snaplen: 2 << 20, RingSize: 128 << 20})
	cmd := helper(t, "http", out, "1000", "100", "50")
	if err := runTimeout(cmd, 90*time.Second); err != nil {
		t.Fatalf("workload: %v", err)
	}
	evs := rec.finish(t)
	pid := uint32(cmd.Process.Pid)

	var ts []transcript
	js, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts) < 101 {
		t.Fatalf("workload used %d connections, want at least 101", len(ts))
	}
	streams := reassemble(t, evs, true)
	connects := map[string]connKey{} // client local address -> connection
	accepts := map[string]connKey{}  // client (remote) address -> server side
	closes := map[connKey]bool{}
	for _, ev := range evs {
		switch e := ev.(type) {
		case *capture.Connect:
			if e.PID == pid {
				connects[e.Local.String()] = connKey{e.PID, e.FD, e.Gen}
			}
		case *capture.Accept:
			if e.PID == pid {
				accepts[e.Remote.String()] = connKey{e.PID, e.FD, e.Gen}
			}
		case *capture.Close:
			closes[connKey{e.PID, e.FD, e.Gen}] = true
		}
	}
	var bytesChecked int
	for _, tr := range ts {
		ck, ok := connects[tr.Local]
		if !ok {
			t.Errorf("no connect for client connection %s", tr.Local)
			continue
		}
		sk, ok := accepts[tr.Local]
		if !ok {
			t.Errorf("no accept for client connection %s", tr.Local)
			continue
		}
		if !closes[ck] || !closes[sk] {
			t.Errorf("connection %s: close missing (client %v, server %v)", tr.Local, closes[ck], closes[sk])
		}
		c, s := streams[ck], streams[sk]
		if c == nil || s == nil {
			t.Errorf("connection %s: no data (client %v, server %v)", tr.Local, c != nil, s != nil)
			continue
		}
		check := func(what string, got, want []byte) {
			if !bytes.Equal(got, want) {
				t.Errorf("connection %s: %s: captured %d bytes, want %d (first difference at %d)", tr.Local, what, len(got), len(want), firstDiff(got, want))
			}
		}
		check("client sent", c.out, tr.Sent)
		check("client received", c.in, tr.Received)
		check("server received", s.in, tr.Sent)
		check("server sent", s.out, tr.Received)
		bytesChecked += 2 * (len(tr.Sent) + len(tr.Received))
	}
	t.Logf("%d connections, %d events, %d bytes compared", len(ts), len(evs), bytesChecked)
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func runTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s timed out after %s", cmd.Path, d)
	}
}

// protocolStreams are what helperProtocols' clients send, each on a
// connection of its own, in this order, to a server that answers each
// with its first reply and then reads to the end.
var protocolStreams = []struct {
	name  string
	first []byte // the client's first write
	reply []byte // the server's answer to it
	whole int    // calls the recorder keeps whole before it keeps lengths only; 0: all
}{
	// Binary, length-prefixed (as PostgreSQL's or Kafka's): a control byte
	// first decides at once.
	{"binary", []byte{0, 0, 1, 0, 'x', 'y'}, []byte{0, 0, 0, 2, 'o', 'k'}, 1},
	// Text that is no request line (Redis's protocol), answered by no
	// status line: the answer decides.
	{"text", []byte("*1\r\n$4\r\nPING\r\n"), []byte("+PONG\r\n"), 2},
	// A METHOD SP start is HTTP to the analysis, whatever the protocol
	// (SMTP's HELO): kept.
	{"method-like", []byte("HELO client.example\r\n"), []byte("250 hello\r\n"), 0},
	// HTTP with a method no list holds: kept.
	{"propfind", []byte("PROPFIND /dav/ HTTP/1.1\r\nHost: h\r\nContent-Length: 262144\r\n\r\n"), []byte("HTTP/1.1 207 Multi-Status\r\n\r\n"), 0},
	// A sloppy request line the server still answers as HTTP: kept.
	{"sloppy", []byte("get/ x\r\n\r\n"), []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), 0},
}

// protocolBulk is what each client writes after the answer, in calls of
// 8 KiB.
const protocolBulk = 256 << 10

// helperProtocols serves and sends protocolStreams, one connection each.
func helperProtocols() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	for _, st := range protocolStreams {
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			if _, err := io.ReadFull(c, make([]byte, len(st.first))); err != nil {
				done <- err
				return
			}
			if _, err := c.Write(st.reply); err != nil {
				done <- err
				return
			}
			_, err = io.Copy(io.Discard, c)
			done <- err
		}()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		if _, err := c.Write(st.first); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, make([]byte, len(st.reply))); err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte{'z'}, 8<<10)
		for n := 0; n < protocolBulk; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return err
			}
		}
		c.Close()
		if err := <-done; err != nil {
			return err
		}
	}
	return nil
}

// TestLiveRecordOtherProtocols records connections of other protocols beside
// HTTP ones: each keeps the calls that showed its protocol whole, and the
// rest as the summed lengths of consecutive calls (flagged), so their bytes
// are never copied and their calls cost no record each; HTTP, an unlisted
// method and a sloppy request line answered by a status line are kept
// whole; with KeepOther everything is.
func TestLiveRecordOtherProtocols(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep-other=%v", keep), func(t *testing.T) {
			rec := startRecording(t, record.Options{Comms: []string{selfComm()}, KeepOther: keep})
			cmd := helper(t, "protocols")
			if err := runTimeout(cmd, 60*time.Second); err != nil {
				t.Fatalf("workload: %v", err)
			}
			evs := rec.finish(t)
			pid := uint32(cmd.Process.Pid)
			// Connections in order of their client's connect.
			var order []connKey
			client := map[connKey]bool{}
			for _, ev := range evs {
				if c, ok := ev.(*capture.Connect); ok && c.PID == pid {
					k := connKey{c.PID, c.FD, c.Gen}
					order = append(order, k)
					client[k] = true
				}
			}
			if len(order) != len(protocolStreams) {
				t.Fatalf("%d connections, want %d", len(order), len(protocolStreams))
			}
			type tally struct{ records, kept, merged, bytes int }
			got := map[connKey]*tally{}
			for _, ev := range evs {
				d, ok := ev.(*capture.Data)
				if !ok || !client[connKey{d.PID, d.FD, d.Gen}] || d.Offset != 0 {
					continue
				}
				k := connKey{d.PID, d.FD, d.Gen}
				if got[k] == nil {
					got[k] = &tally{}
				}
				g := got[k]
				g.records++
				g.bytes += int(d.Len)
				if len(d.Payload) == int(d.Len) {
					g.kept++
				}
				if d.Flags&capture.DataOtherProtocol != 0 {
					if d.Flags&capture.DataMerged == 0 || len(d.Payload) != 0 {
						t.Errorf("%v: a record of another protocol with flags %#x and %d bytes of payload, want merged lengths only", k, d.Flags, len(d.Payload))
					}
					g.merged++
				}
			}
			for i, st := range protocolStreams {
				g := got[order[i]]
				if g == nil {
					t.Errorf("%s: no data recorded", st.name)
					continue
				}
				t.Logf("%s: %d records (%d calls whole, %d merged lengths), %d bytes", st.name, g.records, g.kept, g.merged, g.bytes)
				if want := len(st.first) + len(st.reply) + protocolBulk; g.bytes != want {
					t.Errorf("%s: %d bytes recorded, want %d: lengths are kept whatever the protocol", st.name, g.bytes, want)
				}
				calls := 2 + protocolBulk/(8<<10)
				if st.whole > 0 && !keep {
					// The calls that showed the protocol are whole; the
					// rest, 8 KiB writes (and the reply's read when the
					// first write decided), are summed up in a record or
					// two, not one per call.
					if g.kept != st.whole || g.merged == 0 || g.merged > 3 || g.records != g.kept+g.merged {
						t.Errorf("%s: %d calls whole and %d merged records of %d, want the first %d whole and the rest in 1 to 3 merged records",
							st.name, g.kept, g.merged, g.records, st.whole)
					}
				} else if g.kept != calls || g.merged != 0 {
					t.Errorf("%s: %d calls whole, %d merged records; want all %d calls whole", st.name, g.kept, g.merged, calls)
				}
			}
		})
	}
}

func TestLiveRecordSnaplenTruncation(t *testing.T) {
	rec := startRecording(t, record.Options{Comms: []string{selfComm()}})
	out := filepath.Join(t.TempDir(), "transcripts.json")
	cmd := helper(t, "http", out, "6", "0", "2")
	if err := runTimeout(cmd, 60*time.Second); err != nil {
		t.Fatalf("workload: %v", err)
	}
	evs := rec.finish(t)
	pid := uint32(cmd.Process.Pid)
	var big, truncated int
	var cur *capture.Data
	var got int
	flush := func() {
		if cur == nil {
			return
		}
		if int(cur.Len) > 16<<10 {
			big++
			if got != 16<<10 {
				t.Errorf("call of %d bytes: %d captured, want the 16 KiB snaplen", cur.Len, got)
			}
		} else if got != int(cur.Len) {
			t.Errorf("call of %d bytes: %d captured", cur.Len, got)
		}
	}
	for _, ev := range evs {
		d, ok := ev.(*capture.Data)
		if !ok || d.PID != pid {
			continue
		}
		if d.Offset == 0 {
			flush()
			cur, got = d, 0
		}
		got += len(d.Payload)
		if d.Truncated() {
			truncated++
			if int(d.Offset)+len(d.Payload) >= int(d.Len) {
				t.Errorf("truncated flag on a complete fragment (len %d offset %d payload %d)", d.Len, d.Offset, len(d.Payload))
			}
		}
	}
	flush()
	if big == 0 || truncated != big {
		t.Errorf("%d calls above the snaplen, %d truncated fragments: want equal and > 0", big, truncated)
	}
}

func TestLiveRecordCurlNginx(t *testing.T) {
	bpftest.RequireRoot(t)
	for _, bin := range []string{"curl", "/usr/sbin/nginx"} {
		if _, err := exec.LookPath(bin); err != nil {
			bpftest.Unavailable(t, bin+" is not installed")
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>rewind</h1>\n"), 0o644)
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; user root;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server { listen 127.0.0.1:%[2]d; root %[1]s; } }
`, dir, port)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	nginx := exec.Command("/usr/sbin/nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	nginx.Stderr = os.Stderr
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nginx.Process.Kill(); _ = nginx.Wait() }()
	waitPort(t, port)

	rec := startRecording(t, record.Options{Comms: []string{"curl", "nginx"}, Ports: []int{port}})
	curl := exec.Command("curl", "-sS", "-v", "-o", "/dev/null", "-H", "X-Rewind: live-test", fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	var stderr bytes.Buffer
	curl.Stderr = &stderr
	if err := runTimeout(curl, 30*time.Second); err != nil {
		t.Fatalf("curl: %v\n%s", err, stderr.String())
	}
	evs := rec.finish(t)

	// curl -v prints the request header lines it sent, prefixed "> ".
	var req strings.Builder
	for _, line := range strings.Split(stderr.String(), "\n") {
		line = strings.TrimRight(line, "\r")
		if rest, ok := strings.CutPrefix(line, "> "); ok {
			req.WriteString(rest + "\r\n")
		} else if line == ">" {
			req.WriteString("\r\n")
		}
	}
	want := req.String()
	if !strings.HasPrefix(want, "GET /index.html") || !strings.HasSuffix(want, "\r\n\r\n") {
		t.Fatalf("could not read curl's request from its -v output:\n%s", stderr.String())
	}
	var sent, served []byte
	for k, s := range reassemble(t, evs, true) {
		if k.pid == uint32(curl.Process.Pid) {
			sent = append(sent, s.out...)
		} else if k.pid == uint32(nginx.Process.Pid) {
			served = append(served, s.in...)
		}
	}
	if string(sent) != want {
		t.Errorf("curl sent (captured):\n%q\nwant (curl -v):\n%q", sent, want)
	}
	if string(served) != want {
		t.Errorf("nginx received (captured):\n%q\nwant:\n%q", served, want)
	}
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

func TestLiveRecordPreexistingConnection(t *testing.T) {
	bpftest.RequireRoot(t)
	cmd := helper(t, "preexisting")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addrs := strings.Fields(line)
	pid := uint32(cmd.Process.Pid)

	rec := startRecording(t, record.Options{PIDs: []int{cmd.Process.Pid}})
	fmt.Fprintln(stdin, "go")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("workload timed out")
	}
	evs := rec.finish(t)

	snapSock := map[int32]*capture.Socket{} // by fd, from the snapshot
	var data []*capture.Data
	for _, ev := range evs {
		switch e := ev.(type) {
		case *capture.Socket:
			if e.PID != pid {
				continue
			}
			if _, ok := snapSock[e.FD]; !ok {
				snapSock[e.FD] = e
			}
		case *capture.Data:
			if e.PID == pid {
				data = append(data, e)
			}
		}
	}
	var clientData *capture.Data
	for _, d := range data {
		if d.Dir == capture.Egress && strings.Contains(string(d.Payload), "hello from before") {
			if s := snapSock[d.FD]; s != nil && s.Local.String() == addrs[0] {
				clientData = d
			}
		}
	}
	if clientData == nil {
		t.Fatalf("no data of the pre-existing client connection %s resolved through a socket record (data: %d, sockets: %v)", addrs[0], len(data), snapSock)
	}
	if clientData.Gen != 0 {
		t.Errorf("pre-existing connection has gen %d, want 0", clientData.Gen)
	}
	s := snapSock[clientData.FD]
	if s.Remote.String() != addrs[1] {
		t.Errorf("socket record remote %s, want %s", s.Remote, addrs[1])
	}
	if s.Role != capture.RoleClient {
		t.Errorf("role %v, want client", s.Role)
	}
}

func TestLiveRecordFDReuseAndFiles(t *testing.T) {
	rec := startRecording(t, record.Options{Comms: []string{selfComm()}})
	logPath := filepath.Join(t.TempDir(), "workload.log")
	cmd := helper(t, "reuse", logPath)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := runTimeout(cmd, 30*time.Second); err != nil {
		t.Fatalf("workload: %v", err)
	}
	evs := rec.finish(t)
	pid := uint32(cmd.Process.Pid)
	fds := strings.Fields(stdout.String())
	if len(fds) != 2 || fds[0] != fds[1] {
		t.Fatalf("workload did not reuse its fd (fds %q)", fds)
	}
	gens := map[string]connKey{}
	for _, ev := range evs {
		d, ok := ev.(*capture.Data)
		if !ok || d.PID != pid {
			continue
		}
		if bytes.Contains(d.Payload, []byte("LOGLINE")) {
			t.Fatalf("a log file write was recorded as socket data: %q", d.Payload)
		}
		if d.Dir == capture.Egress && strings.HasSuffix(string(d.Payload), "connection\n") {
			gens[string(d.Payload)] = connKey{d.PID, d.FD, d.Gen}
		}
	}
	a, b := gens["first connection\n"], gens["second connection\n"]
	if a.fd == 0 || b.fd == 0 {
		t.Fatalf("messages not captured: %v", gens)
	}
	if a.fd != b.fd || a.gen == b.gen {
		t.Errorf("fd reuse: first %+v, second %+v: want the same fd with different generations", a, b)
	}
}

// selfComm is the task name of this test binary (and of the helpers it
// starts), as the kernel keeps it: the executable's base name, at most 15
// bytes.
func selfComm() string {
	c := filepath.Base(os.Args[0])
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}
