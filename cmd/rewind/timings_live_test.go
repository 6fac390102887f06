//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// The latency split checked against measurements rewind did not make:
// tcpdump and tshark for the network share, the server's own clock for the
// server and transfer shares. Each check runs on the recording and on
// tcpdump's file of the same traffic (the pcap input path).

// Bounds, measured on this 2-vCPU VM (10 runs of each check), with room:
const (
	// networkBound: |rewind − tshark| per exchange. tcpdump's stamp is
	// taken when loopback queues a packet for receipt, rewind's when the
	// receive path delivers it to the packet taps, a few µs later and more
	// when softirq processing is delayed: over 10 runs × 32 exchanges the
	// two network times differed by at most 30 µs (the worst of each run: 1 to 30 µs) on
	// recordings, and by at most 1 ns on the pcap path (tcpdump's own
	// stamps; tshark prints µs).
	networkBound = 60 * time.Microsecond
	// serverSlack: rewind's server time may exceed the handler's own
	// measurement by the dispatch before the handler and the write after
	// it, which on this shared VM is a goroutine's scheduling delay: at
	// most 2.3 ms over 10 runs × 12 requests on both paths, once beyond
	// 3 ms.
	serverSlack = 10 * time.Millisecond
	// transferSlack: |rewind − the handler's first-to-last write| (at most
	// 0.27 ms over 10 runs × 3 responses on a quiet machine). The handler
	// reads its clock before the writes it times, so a goroutine's
	// scheduling delay is in its figure: with both cores busy it measured
	// 31.8 ms where the recording and tcpdump's own stamps both said
	// 35.8 ms (within 40 µs of each other).
	transferSlack = 5 * time.Millisecond
)

// tcpdumpLoopback captures port's loopback traffic into a pcap until the
// returned function is called; stop reports how many packets tcpdump
// dropped (a reference with drops is incomplete).
func tcpdumpLoopback(t *testing.T, port int) (file string, stop func() int) {
	t.Helper()
	bin := needTool(t, "tcpdump")
	file = filepath.Join(t.TempDir(), "lo.pcap")
	if keep := os.Getenv("KEEP"); keep != "" {
		file = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "-")+".pcap")
	}
	cmd := exec.Command(bin, "-Z", "root", "--immediate-mode", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", file,
		"tcp port "+strconv.Itoa(port))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting tcpdump: %v", err)
	}
	for i := 0; i < 100 && !strings.Contains(stderr.String(), "listening"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // "listening" comes a little before the capture is live
	var once sync.Once
	dropped := 0
	stop = func() int {
		once.Do(func() {
			time.Sleep(200 * time.Millisecond)
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			if st, err := os.Stat(file); err != nil || st.Size() <= 24 {
				t.Fatalf("tcpdump captured nothing (%v): %s", err, stderr.String())
			}
			// The reference must be whole: a response whose last segment
			// tcpdump dropped has no tshark measurement to compare with.
			if m := regexp.MustCompile(`(\d+) packets dropped by kernel`).FindStringSubmatch(stderr.String()); m != nil {
				dropped, _ = strconv.Atoi(m[1])
			}
		})
		return dropped
	}
	t.Cleanup(func() { stop() })
	return file, stop
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tsharkResponse is a response as tshark sees it in a pcap: the server's
// data from one request to the next, on the connection from client port.
type tsharkResponse struct {
	clientPort int
	end        uint64        // relative sequence number after its last byte
	network    time.Duration // its last segment → the first ACK covering it
	ackRTT     bool          // network is tshark's tcp.analysis.ack_rtt (the ACK acknowledged exactly that segment)
}

// tsharkResponses reads the responses of server port from a pcap with
// tshark. With tls, only bursts of application data records count: the
// handshake's flights are not responses.
func tsharkResponses(t *testing.T, pcap string, port int, tls bool) []tsharkResponse {
	t.Helper()
	tshark := needTool(t, "tshark")
	cmd := exec.Command(tshark, "-r", pcap, "-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tls.desegment_ssl_records:FALSE",
		"-d", fmt.Sprintf("tcp.port==%d,%s", port, map[bool]string{false: "http", true: "tls"}[tls]),
		"-T", "fields", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "frame.time_epoch", "-e", "tcp.srcport", "-e", "tcp.dstport",
		"-e", "tcp.seq", "-e", "tcp.len", "-e", "tcp.ack", "-e", "tcp.flags.ack",
		"-e", "tls.record.content_type", "-e", "tcp.analysis.acks_frame", "-e", "tcp.analysis.ack_rtt")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	seconds := func(v string) time.Duration {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("tshark time %q: %v", v, err)
		}
		return time.Duration(f * 1e9)
	}
	type row struct {
		frame, src, dst, length int
		seq, ack                uint64
		isAck                   bool
		at                      time.Duration
		contentType, acksFrame  string
		rtt                     string
	}
	var rows []row
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 11 {
			continue
		}
		var r row
		r.frame, _ = strconv.Atoi(f[0])
		// time_epoch keeps ns: parse the fraction exactly.
		sec, frac, _ := strings.Cut(f[1], ".")
		s, _ := strconv.ParseInt(sec, 10, 64)
		ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		r.at = time.Duration(s)*time.Second + time.Duration(ns)
		r.src, _ = strconv.Atoi(f[2])
		r.dst, _ = strconv.Atoi(f[3])
		r.seq, _ = strconv.ParseUint(f[4], 10, 64)
		r.length, _ = strconv.Atoi(f[5])
		r.ack, _ = strconv.ParseUint(f[6], 10, 64)
		r.isAck = f[7] == "1" || f[7] == "True"
		r.contentType, r.acksFrame, r.rtt = f[8], f[9], f[10]
		rows = append(rows, r)
	}

	// Pass 1: the responses. A burst of server data runs from the first
	// server segment after the client's data to the client's next data; its
	// end is the highest sequence number sent, its time that of the segment
	// holding the byte before the end, as first sent.
	type seg struct {
		start, end uint64
		row        int
	}
	type response struct {
		client  int
		end     uint64
		lastRow int // the segment with the last byte
	}
	type stream struct {
		segs  []seg
		burst bool // server data since the client's last data
		app   bool // the burst is application data
		high  uint64
	}
	streams := map[int]*stream{}
	var resps []response
	closeBurst := func(client int, s *stream) {
		if s.burst && s.app {
			for _, g := range s.segs {
				if g.start < s.high && s.high <= g.end {
					resps = append(resps, response{client: client, end: s.high, lastRow: g.row})
					break
				}
			}
		}
		s.burst, s.segs = false, s.segs[:0]
	}
	var order []int
	for i, r := range rows {
		client := r.src
		if r.src == port {
			client = r.dst
		}
		s := streams[client]
		if s == nil {
			s = &stream{}
			streams[client] = s
			order = append(order, client)
		}
		switch {
		case r.src == port && r.length > 0:
			if !s.burst {
				s.burst, s.app = true, !tls || r.contentType == "23"
			}
			end := r.seq + uint64(r.length)
			if end > s.high {
				s.segs = append(s.segs, seg{start: r.seq, end: end, row: i})
				s.high = end
			}
		case r.src != port && r.length > 0:
			closeBurst(client, s)
		}
	}
	for _, c := range order {
		closeBurst(c, streams[c])
	}
	slices.SortStableFunc(resps, func(a, b response) int { return a.lastRow - b.lastRow })

	// Pass 2: the first ACK from the client covering each response's end.
	var all []tsharkResponse
	for _, rs := range resps {
		last := rows[rs.lastRow]
		for _, r := range rows[rs.lastRow+1:] {
			if r.src != rs.client || r.dst != port || !r.isAck || r.ack < rs.end {
				continue
			}
			tr := tsharkResponse{clientPort: rs.client, end: rs.end, network: r.at - last.at}
			if r.acksFrame == strconv.Itoa(last.frame) && r.rtt != "" {
				tr.network, tr.ackRTT = seconds(r.rtt), true
			}
			all = append(all, tr)
			break
		}
	}
	return all
}

// serverExchangesByClient returns the server-side exchanges with a
// response, per client port, in the order of their responses.
func serverExchangesByClient(exs []*analyze.Exchange) map[int][]*analyze.Exchange {
	m := map[int][]*analyze.Exchange{}
	for _, e := range exs {
		if e.Conn.Role != capture.RoleServer || e.Response.Status == 0 {
			continue
		}
		p := int(e.Conn.Remote.Port())
		m[p] = append(m[p], e)
	}
	for _, l := range m {
		slices.SortStableFunc(l, func(a, b *analyze.Exchange) int { return compareU64(a.Response.End, b.Response.End) })
	}
	return m
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestLiveNetworkTimings records curl → nginx with packets on while tcpdump
// captures the same loopback traffic, and checks every server exchange's
// network time, from the recording and from tcpdump's file, against
// tshark's measurement of the same interval: the segment carrying the
// response's last byte → the first ACK covering it. Plain HTTP and TLS
// (1.2, so that tshark can tell handshake flights from responses), small
// and 1 MiB responses, keep-alive and one request per connection.
func TestLiveNetworkTimings(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "tls"}[tls]
		t.Run(name, func(t *testing.T) { liveNetworkTimings(t, tls) })
	}
}

func liveNetworkTimings(t *testing.T, tls bool) {
	bpftest.RequireRoot(t)
	needTool(t, "curl")
	needTool(t, "tshark")
	root := fillWWW(t)
	var ngx *nginxServer
	scheme := "http"
	if tls {
		ngx, scheme = startNginxTLS(t, root), "https"
	} else {
		ngx = startNginx(t, root, "")
	}
	for round := 1; ; round++ {
		var pcap string
		var rec *recording
		var want []tsharkResponse
		for attempt := 1; ; attempt++ {
			var dropped int
			pcap, rec, dropped = networkTraffic(t, ngx, scheme)
			// The reference must be whole: a response whose last segment
			// tcpdump dropped has no tshark measurement to compare with.
			// The reference is tcpdump's file read by tshark; the
			// recording plays no part in it.
			why := ""
			if dropped > 0 {
				why = fmt.Sprintf("tcpdump dropped %d packets", dropped)
			} else if want = tsharkResponses(t, pcap, ngx.Port, tls); len(want) < 16 {
				// Seen once in CI under load (7 of 16 over TLS), never
				// reproduced: the reference came up short, whether in
				// tcpdump's file or in tshark's reading of it.
				why = fmt.Sprintf("tshark finds %d acknowledged responses in tcpdump's file, want 16", len(want))
				keepReference(t, pcap, round, attempt)
			}
			if why == "" {
				break
			}
			if attempt == 3 {
				t.Fatalf("no complete reference in 3 attempts: %s in the last", why)
			}
			t.Logf("attempt %d: %s; capturing again", attempt, why)
		}
		// tcpdump and the recorder stamp each packet at their own point in
		// the kernel: on this shared machine a burst of load can part them
		// by more than the bound on one exchange. Such a disagreement must
		// persist over three rounds of traffic to fail; every other check
		// fails at once.
		off := checkNetworkTimings(t, want, pcap, rec, tls)
		if len(off) == 0 {
			return
		}
		if round == 3 {
			for _, o := range off {
				t.Error(o)
			}
			return
		}
		t.Logf("round %d: %d exchanges outside the bound (%s); measuring again", round, len(off), off[0])
	}
}

// keepReference copies an incomplete reference to $KEEP_FAILED, when set,
// for a look at what tshark made of it.
func keepReference(t *testing.T, pcap string, round, attempt int) {
	dir := os.Getenv("KEEP_FAILED")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(pcap)
	if err == nil {
		dst := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.pcap", strings.ReplaceAll(t.Name(), "/", "-"), round, attempt))
		if err = os.WriteFile(dst, b, 0o644); err == nil {
			t.Logf("incomplete reference kept as %s", dst)
		}
	}
	if err != nil {
		t.Logf("keeping the incomplete reference: %v", err)
	}
}

// networkTraffic records the check's requests with packets while tcpdump
// captures them; it returns tcpdump's file, the recording and tcpdump's
// drop count.
func networkTraffic(t *testing.T, ngx *nginxServer, scheme string) (string, *recording, int) {
	curl := needTool(t, "curl")
	pcap, stopDump := tcpdumpLoopback(t, ngx.Port)
	rec := startRecording(t, record.Options{Comms: []string{"nginx"}, Ports: []int{ngx.Port}, TLS: scheme == "https", Packets: true, Snaplen: 16 << 10})
	base := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ngx.Port)
	args := []string{"-sS", "-k", "--tls-max", "1.2", "--max-time", "30"}
	// Keep-alive: 12 requests on one connection.
	keep := slices.Clone(args)
	for i := 0; i < 12; i++ {
		p := "/small.txt"
		if i%4 == 2 {
			p = "/big.bin"
		}
		keep = append(keep, "-o", os.DevNull, fmt.Sprintf("%s%s?k=%d", base, p, i))
	}
	if out, err := exec.Command(curl, keep...).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	// One request per connection.
	for i, p := range []string{"/small.txt", "/big.bin", "/small.txt", "/big.bin"} {
		one := append(slices.Clone(args), "-o", os.DevNull, fmt.Sprintf("%s%s?c=%d", base, p, i))
		if out, err := exec.Command(curl, one...).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	rec.stop()
	return pcap, rec, stopDump()
}

// checkNetworkTimings compares the network times of a recording and of
// tcpdump's file with tshark's, want. It fails t for missing, zero or
// unknown times, and returns the exchanges that disagree by more than the
// bound.
func checkNetworkTimings(t *testing.T, want []tsharkResponse, pcap string, rec *recording, tls bool) (off []string) {
	fromRec, recSum := replayFile(t, rec.path)
	sources := []struct {
		name string
		exs  []*analyze.Exchange
		sum  *analyze.Summary
	}{{"recording", fromRec, recSum}}
	if !tls {
		// Packets alone are blind to TLS: tcpdump's file has no exchanges
		// to check then.
		fromPcap, pcapSum := replayFile(t, pcap)
		sources = append(sources, struct {
			name string
			exs  []*analyze.Exchange
			sum  *analyze.Summary
		}{"pcap", fromPcap, pcapSum})
	}
	for _, src := range sources {
		got := serverExchangesByClient(src.exs)
		next := map[int]int{}
		var agree, ackRTT, zeros int
		var worst time.Duration
		for _, w := range want {
			l := got[w.clientPort]
			i := next[w.clientPort]
			next[w.clientPort]++
			if i >= len(l) {
				t.Errorf("%s: no server exchange #%d on the connection from port %d (tshark has one)", src.name, i+1, w.clientPort)
				continue
			}
			e := l[i]
			if e.Timings.Network == 0 {
				zeros++
			}
			if e.Timings.Network < 0 {
				t.Errorf("%s: %s (client port %d) has no network time; tshark: %v", src.name, exchangeLine(e), w.clientPort, w.network)
				continue
			}
			d := time.Duration(e.Timings.Network) - w.network
			if d < 0 {
				d = -d
			}
			worst = max(worst, d)
			if d > networkBound {
				off = append(off, fmt.Sprintf("%s: %s (client port %d): network %v, tshark %v (ack_rtt %v): off by %v > %v",
					src.name, exchangeLine(e), w.clientPort, time.Duration(e.Timings.Network), w.network, w.ackRTT, d, networkBound))
				continue
			}
			agree++
			if w.ackRTT {
				ackRTT++
			}
		}
		for p, l := range got {
			if next[p] < len(l) {
				t.Errorf("%s: %d server exchanges on the connection from port %d, tshark has %d responses", src.name, len(l), p, next[p])
			}
		}
		if zeros > 0 {
			t.Errorf("%s: %d network times are exactly 0", src.name, zeros)
		}
		for _, w := range src.sum.Warnings {
			if strings.Contains(w, "without network time") {
				t.Errorf("%s: %s", src.name, w)
			}
		}
		t.Logf("%s: %d of %d exchanges agree with tshark within %v (%d against ack_rtt itself); worst difference %v",
			src.name, agree, len(want), networkBound, ackRTT, worst)
	}
	return off
}

// runTimingServer is the workload "timing-server" of TestLiveServerTimings
// (see workloadEnv): an HTTP server whose handlers time themselves and
// print "id kind ns" lines.
func runTimingServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var mu sync.Mutex
	logf := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	mux := http.NewServeMux()
	// /sleep?ms=N&id=K: sleeps N ms; its time runs from the handler's
	// start to the end of its write into the response buffer (the bytes
	// reach the socket when it returns).
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, "slept\n")
		logf("%s server %d", r.URL.Query().Get("id"), time.Since(start).Nanoseconds())
	})
	// /chunks?id=K: four parts 10 ms apart, each flushed to the socket; its
	// time runs from the return of the first flush to that of the last.
	mux.HandleFunc("/chunks", func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		var first time.Time
		for i := 0; i < 4; i++ {
			if i > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Fprintf(w, "part %d of 4\n", i+1)
			f.Flush()
			if i == 0 {
				first = time.Now()
			}
		}
		logf("%s transfer %d", r.URL.Query().Get("id"), time.Since(first).Nanoseconds())
	})
	logf("listening %d", ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: mux}
	go func() {
		// Ends when the test closes stdin.
		io.Copy(io.Discard, os.Stdin)
		srv.Close()
	}()
	srv.Serve(ln)
}

// TestLiveServerTimings records a Go server whose handlers sleep 1, 5, 20
// and 100 ms and measure themselves, and one that writes a response in four
// parts 10 ms apart, while tcpdump captures the same traffic. On the
// recording and on tcpdump's file, rewind's server time must lie in
// [handler time, handler time + serverSlack] and its transfer time within
// transferSlack of the handler's first-to-last write.
func TestLiveServerTimings(t *testing.T) {
	bpftest.RequireRoot(t)
	needTool(t, "tcpdump")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workloadEnv+"=timing-server")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	stopped := false
	stopServer := func() {
		if !stopped {
			stopped = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(stopServer)
	var port int
	select {
	case l := <-lines:
		if _, err := fmt.Sscanf(l, "listening %d", &port); err != nil {
			t.Fatalf("timing server: %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("timing server did not start")
	}
	pcap, stopDump := tcpdumpLoopback(t, port)
	rec := startRecording(t, record.Options{PIDs: []int{cmd.Process.Pid}, Packets: true})

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	id := 0
	for round := 0; round < 3; round++ {
		for _, ms := range []int{1, 5, 20, 100} {
			id++
			get(fmt.Sprintf("/sleep?ms=%d&id=%d", ms, id))
		}
		id++
		get(fmt.Sprintf("/chunks?id=%d", id))
	}
	client.CloseIdleConnections()
	rec.stop()
	if n := stopDump(); n > 0 {
		t.Fatalf("tcpdump dropped %d packets: the pcap-path reference is incomplete", n)
	}
	stopServer()
	own := map[string]time.Duration{} // "id kind" → the handler's measurement
	for l := range lines {
		f := strings.Fields(l)
		if len(f) == 3 {
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			own[f[0]+" "+f[1]] = time.Duration(ns)
		}
	}
	if len(own) != id {
		t.Fatalf("the server logged %d measurements, want %d", len(own), id)
	}
	fromRec, _ := replayFile(t, rec.path)
	fromPcap, _ := replayFile(t, pcap)
	for _, src := range []struct {
		name string
		exs  []*analyze.Exchange
	}{{"recording", fromRec}, {"pcap", fromPcap}} {
		seen, okServer, okTransfer := 0, 0, 0
		var worstServer, worstTransfer time.Duration
		for _, e := range src.exs {
			if e.Conn.Role != capture.RoleServer {
				continue
			}
			q := e.Request.Query
			k := strings.TrimPrefix(q[strings.Index(q, "id="):], "id=")
			seen++
			switch {
			case e.Request.Path == "/sleep":
				h, ok := own[k+" server"]
				if !ok {
					t.Errorf("%s: %s: no handler measurement", src.name, exchangeLine(e))
					continue
				}
				got := time.Duration(e.Timings.Server)
				if got < h || got > h+serverSlack {
					t.Errorf("%s: %s: server %v, the handler measured %v (want within [%v, %v])", src.name, exchangeLine(e), got, h, h, h+serverSlack)
					continue
				}
				worstServer = max(worstServer, got-h)
				okServer++
			case e.Request.Path == "/chunks":
				h := own[k+" transfer"]
				got := time.Duration(e.Timings.Transfer)
				d := got - h
				if d < 0 {
					d = -d
				}
				if e.Timings.Transfer < 0 || d > transferSlack {
					t.Errorf("%s: %s: transfer %v, the handler measured %v (want within %v)", src.name, exchangeLine(e), got, h, transferSlack)
					continue
				}
				worstTransfer = max(worstTransfer, d)
				okTransfer++
			}
		}
		if seen != id {
			t.Errorf("%s: %d server exchanges, want %d", src.name, seen, id)
		}
		t.Logf("%s: server time within bounds for %d of 12 (worst excess over the handler %v), transfer for %d of 3 (worst difference %v)",
			src.name, okServer, worstServer, okTransfer, worstTransfer)
	}
}
