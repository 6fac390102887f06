//go:build linux

// Command benchrecord measures what `rewind record` costs the programs it
// records: nginx on 127.0.0.1 under a wrk load, each scenario run untraced
// and traced alternately (pairs of runs, so a noisy neighbour hits both
// sides alike), and prints one table of medians.
//
// It is run by `make bench-record` (through scripts/bench-record.sh, which
// installs wrk, nginx and socat when missing). It needs root.
//
//	go run ./scripts/benchrecord [-pairs 3] [-duration 8s] [-only flat,https-10k] [-rewind BIN]
//
// Scenarios:
//
//	paced-10k, paced-20k  wrk paced to about that many requests/s (a Lua
//	                      delay per connection), recorded with --comm nginx --port
//	indep-10k, indep-20k  the same rates with independent waits: each
//	                      connection waits an exponentially distributed
//	                      time (mean 2 ms) after an answer, so the
//	                      connections do not fall into step and nginx does
//	                      not serve them in bursts
//	flat                  wrk flat out, same filters
//	https-10k             nginx with TLS, wrk over https paced to 10k req/s:
//	                      the OpenSSL uprobes are active
//	https-flat            the same, wrk flat out: what the uprobes cost per
//	                      request when nginx has no idle time
//	host-copy             whole-host recording (no filters) at 10k req/s while
//	                      socat copies 1 GiB over loopback to /dev/null
//	port-copy             the same copy, recorded with --port selecting nginx
//	overload              flat out with a 64 KiB ring: losses must be counted
//	                      and reported by `rewind info`
//
// Columns: untraced and traced req/s (medians), their ratio, the change of
// wrk's p50 and p99 latency, the recorder's CPU time (user+system, from
// just before the load until it exited) per event written, events written
// per second of load, events lost (the most in any run), and the
// recorder's peak RSS (median).
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type scenario struct {
	name string
	tls  bool
	rate int // requests/s; 0: flat out
	copy bool
	// indep: each connection waits an exponentially distributed time
	// (mean 2 ms) after an answer, instead of exactly 2 ms, so that the
	// connections do not fall into step.
	indep  bool
	filter bool // --comm nginx --port P; false: whole host
	ring   string
	target string // what the issue asks for, shown beside the result
}

var scenarios = []scenario{
	{name: "paced-10k", rate: 10000, filter: true, target: ">=99%"},
	{name: "paced-20k", rate: 20000, filter: true, target: ">=97%, p99 +10%"},
	{name: "indep-10k", rate: 10000, indep: true, filter: true, target: "as paced-10k"},
	{name: "indep-20k", rate: 20000, indep: true, filter: true, target: "as paced-20k"},
	{name: "flat", filter: true, target: ">=80%"},
	{name: "https-10k", tls: true, rate: 10000, filter: true, target: ">=95%"},
	{name: "https-flat", tls: true, filter: true, target: "as flat"},
	{name: "host-copy", rate: 10000, copy: true, target: "as paced-10k"},
	{name: "port-copy", rate: 10000, copy: true, filter: true, target: "as paced-10k"},
	{name: "overload", filter: true, ring: "64KiB", target: "lost counted"},
}

// run is one wrk run, traced or not.
type run struct {
	rps, p50, p99 float64 // req/s, seconds
	cpu           float64 // recorder CPU seconds
	events, lost  int64
	rssKiB        int64
	copySecs      float64
	infoLost      int64 // lost as `rewind info` reads it back
}

func main() {
	pairs := flag.Int("pairs", 3, "untraced/traced pairs per scenario")
	dur := flag.Duration("duration", 8*time.Second, "length of each wrk run")
	only := flag.String("only", "", "comma-separated scenario names (default: all)")
	bin := flag.String("rewind", os.Getenv("REWIND_BIN"), "rewind binary to record with (default: build ./cmd/rewind)")
	nginxBin := flag.String("nginx", "/usr/sbin/nginx", "nginx binary")
	flag.Parse()
	if os.Geteuid() != 0 {
		fatalf("needs root: the recorder loads BPF programs")
	}
	b := &bench{dur: *dur, pairs: *pairs}
	var err error
	if b.tmp, err = os.MkdirTemp("", "bench-record-"); err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(b.tmp) })
	defer runAtExit()
	// An interrupted or failed bench must not leave its nginx running.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fatalf("stopped by %v", sig)
	}()
	b.rewind = *bin
	if b.rewind == "" {
		b.rewind = filepath.Join(b.tmp, "rewind")
		if out, err := exec.Command("go", "build", "-o", b.rewind, "./cmd/rewind").CombinedOutput(); err != nil {
			fatalf("building rewind: %v\n%s", err, out)
		}
	}
	if err := b.startNginx(*nginxBin); err != nil {
		fatalf("starting nginx: %v", err)
	}
	atExit(b.stopNginx)

	var want []scenario
	for _, s := range scenarios {
		if *only == "" || slices.Contains(strings.Split(*only, ","), s.name) {
			want = append(want, s)
		}
	}
	if len(want) == 0 {
		fatalf("-only %q: no such scenario", *only)
	}
	fmt.Println(machine(*nginxBin))
	fmt.Printf("%d pairs of %s runs per scenario, untraced and traced alternately; medians\n\n", b.pairs, b.dur)
	header := fmt.Sprintf("%-10s %10s %10s %7s %8s %8s %8s %9s %6s %8s  %s",
		"scenario", "untraced", "traced", "ratio", "p50 Δ", "p99 Δ", "µs/ev", "events/s", "lost", "peakRSS", "target")
	var rows []string
	for _, s := range want {
		row, err := b.scenario(s)
		if err != nil {
			fatalf("%s: %v", s.name, err)
		}
		rows = append(rows, row)
		fmt.Fprintln(os.Stderr, header)
		fmt.Fprintln(os.Stderr, row)
	}
	fmt.Println(header)
	for _, r := range rows {
		fmt.Println(r)
	}
}

type bench struct {
	tmp, rewind   string
	dur           time.Duration
	pairs         int
	port, tlsPort int
	nginx         *exec.Cmd
}

func (b *bench) scenario(s scenario) (string, error) {
	fmt.Fprintf(os.Stderr, "bench-record: %s\n", s.name)
	// Warm nginx and the page cache up.
	if _, err := b.wrk(s, 2*time.Second); err != nil {
		return "", err
	}
	var un, tr []run
	for i := 0; i < b.pairs; i++ {
		u, err := b.once(s, false)
		if err != nil {
			return "", err
		}
		t, err := b.once(s, true)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(os.Stderr, "  pair %d: %.0f / %.0f req/s, recorder %.2f s CPU, %d events, %d lost, copy %.2f / %.2f s\n",
			i+1, u.rps, t.rps, t.cpu, t.events, t.lost, u.copySecs, t.copySecs)
		un, tr = append(un, u), append(tr, t)
	}
	med := func(rs []run, f func(run) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	urps, trps := med(un, func(r run) float64 { return r.rps }), med(tr, func(r run) float64 { return r.rps })
	p50 := med(tr, func(r run) float64 { return r.p50 })/med(un, func(r run) float64 { return r.p50 }) - 1
	p99 := med(tr, func(r run) float64 { return r.p99 })/med(un, func(r run) float64 { return r.p99 }) - 1
	usPerEv := med(tr, func(r run) float64 { return 1e6 * r.cpu / float64(max(r.events, 1)) })
	evps := med(tr, func(r run) float64 { return float64(r.events) / b.dur.Seconds() })
	var lost int64 // the worst run: any loss counts
	for _, r := range tr {
		lost = max(lost, r.lost)
	}
	rss := med(tr, func(r run) float64 { return float64(r.rssKiB) })
	target := s.target
	if s.ring != "" {
		for _, r := range tr {
			if r.lost == 0 || r.infoLost != r.lost {
				return "", fmt.Errorf("overload: the recorder said %d lost, rewind info %d: losses must be counted and reported", r.lost, r.infoLost)
			}
		}
		target += " (rewind info agrees in every run)"
	}
	if s.copy {
		target += fmt.Sprintf("; 1 GiB copy %.2f s → %.2f s", med(un, func(r run) float64 { return r.copySecs }), med(tr, func(r run) float64 { return r.copySecs }))
	}
	return fmt.Sprintf("%-10s %10.0f %10.0f %6.1f%% %+7.1f%% %+7.1f%% %8.2f %9.0f %6d %6.0fMiB  %s",
		s.name, urps, trps, 100*trps/urps, 100*p50, 100*p99, usPerEv, evps, lost, rss/1024, target), nil
}

// once runs the load once, under `rewind record` when traced.
func (b *bench) once(s scenario, traced bool) (run, error) {
	var r run
	var rec *exec.Cmd
	var log bytes.Buffer
	// ready says when the recorder is recording, and is closed once its
	// whole stderr is in log.
	var ready chan error
	capFile := filepath.Join(b.tmp, "bench.rwd")
	if traced {
		args := []string{"record", "-o", capFile}
		if s.filter {
			port := b.port
			if s.tls {
				port = b.tlsPort
			}
			args = append(args, "--comm", "nginx", "--port", strconv.Itoa(port))
		}
		if s.ring != "" {
			args = append(args, "--ring-size", s.ring)
		}
		rec = exec.Command(b.rewind, args...)
		pr, pw, err := os.Pipe()
		if err != nil {
			return r, err
		}
		rec.Stderr = pw
		if err := rec.Start(); err != nil {
			return r, err
		}
		pw.Close()
		ready = make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(pr)
			sent := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !sent && strings.Contains(sc.Text(), "rewind: recording") {
					ready <- nil
					sent = true
				}
			}
			if !sent {
				ready <- fmt.Errorf("recorder exited before it was recording:\n%s", log.String())
			}
			close(ready)
		}()
		select {
		case err := <-ready:
			if err != nil {
				return r, err
			}
		case <-time.After(60 * time.Second):
			_ = rec.Process.Kill()
			return r, fmt.Errorf("recorder not ready after 60 s:\n%s", log.String())
		}
		defer func() {
			for range ready {
			}
		}()
	}
	var cpu0 float64
	if rec != nil {
		cpu0 = procCPU(rec.Process.Pid)
	}
	var copyDone chan float64
	if s.copy {
		var err error
		if copyDone, err = b.startCopy(); err != nil {
			return r, err
		}
	}
	w, err := b.wrk(s, b.dur)
	if err != nil {
		if rec != nil {
			_ = rec.Process.Kill()
			_ = rec.Wait()
		}
		return r, err
	}
	r.rps, r.p50, r.p99 = w.rps, w.p50, w.p99
	if copyDone != nil {
		r.copySecs = <-copyDone
	}
	if rec == nil {
		return r, nil
	}
	r.rssKiB = procHWM(rec.Process.Pid)
	_ = rec.Process.Signal(syscall.SIGINT)
	err = rec.Wait()
	for range ready { // the last lines, the summary among them, may still be in the pipe
	}
	if err != nil {
		return r, fmt.Errorf("recorder: %v\n%s", err, log.String())
	}
	ru := rec.ProcessState.SysUsage().(*syscall.Rusage)
	r.cpu = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds() - cpu0
	m := regexp.MustCompile(`: (\d+) events, .*, (\d+) lost \(stopped`).FindStringSubmatch(log.String())
	if m == nil {
		return r, fmt.Errorf("no summary line from the recorder:\n%s", log.String())
	}
	r.events, _ = strconv.ParseInt(m[1], 10, 64)
	r.lost, _ = strconv.ParseInt(m[2], 10, 64)
	if s.ring != "" {
		out, err := exec.Command(b.rewind, "info", capFile).CombinedOutput()
		if err != nil {
			return r, fmt.Errorf("rewind info: %v\n%s", err, out)
		}
		if m := regexp.MustCompile(`(?m)^lost\s*:?\s*(\d+)`).FindSubmatch(out); m != nil {
			r.infoLost, _ = strconv.ParseInt(string(m[1]), 10, 64)
		} else {
			return r, fmt.Errorf("rewind info does not say how many events were lost:\n%s", out)
		}
	}
	return r, os.Remove(capFile)
}

type wrkResult struct{ rps, p50, p99 float64 }

// wrk runs the load generator once and reads its summary.
func (b *bench) wrk(s scenario, d time.Duration) (wrkResult, error) {
	conns, threads := 8, 1
	var args []string
	if s.rate > 0 {
		// Each connection sends a request every 2 ms plus its latency:
		// about 400 requests/s per connection.
		conns = (s.rate + 399) / 400
		threads = 2
		lua := filepath.Join(b.tmp, "pace.lua")
		script := "function delay() return 2 end\n"
		if s.indep {
			// wrk truncates the delay to whole milliseconds: rounding up
			// with the fraction's probability keeps the mean at 2 ms. (Its
			// timers also fire up to a millisecond early, in both
			// shapes, so neither waits quite its mean; each scenario
			// is compared with its own untraced runs.)
			// Each wrk thread has its own Lua state: seeded from a table's
			// address, the threads' sequences differ.
			script = "math.randomseed(os.time() + tonumber(tostring({}):match('0x(%x+)'), 16) % 1000003)\n" +
				"function delay() local d = -2 * math.log(1 - math.random()); local f = math.floor(d); if math.random() < d - f then f = f + 1 end; return f end\n"
		}
		if err := os.WriteFile(lua, []byte(script), 0o644); err != nil {
			return wrkResult{}, err
		}
		args = append(args, "-s", lua)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", b.port)
	if s.tls {
		url = fmt.Sprintf("https://127.0.0.1:%d/index.html", b.tlsPort)
	}
	args = append([]string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%.0fs", d.Seconds()), "--latency"}, args...)
	args = append(args, url)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %v: %v\n%s", args, err, out)
	}
	var w wrkResult
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			w.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			w.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			w.p99 = wrkDuration(f[1])
		case strings.Contains(line, "Non-2xx") || strings.Contains(line, "Socket errors"):
			return w, fmt.Errorf("wrk saw errors:\n%s", out)
		}
	}
	if w.rps == 0 || w.p99 == 0 {
		return w, fmt.Errorf("could not read wrk's summary:\n%s", out)
	}
	return w, nil
}

// wrkDuration reads wrk's "123.45us", "1.20ms" or "2.00s".
func wrkDuration(s string) float64 {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"us", 1e-6}, {"ms", 1e-3}, {"m", 60}, {"s", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f * u.scale
		}
	}
	return 0
}

// startCopy copies 1 GiB from one socat to another over loopback, the
// receiver writing to /dev/null, and reports how long the sender took.
func (b *bench) startCopy() (chan float64, error) {
	port := freePort()
	// fork: the readiness probe below is served by a child of its own.
	recv := exec.Command("socat", "-u", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port), "OPEN:/dev/null")
	if err := recv.Start(); err != nil {
		return nil, fmt.Errorf("socat: %v (install socat)", err)
	}
	if err := waitListening(port); err != nil {
		_ = recv.Process.Kill()
		_ = recv.Wait()
		return nil, err
	}
	done := make(chan float64, 1)
	go func() {
		start := time.Now()
		send := exec.Command("socat", "-u", "OPEN:/dev/zero,readbytes=1073741824", fmt.Sprintf("TCP:127.0.0.1:%d", port))
		if out, err := send.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench-record: copy failed: %v %s\n", err, out)
		}
		took := time.Since(start).Seconds()
		_ = recv.Process.Kill()
		_ = recv.Wait()
		done <- took
	}()
	return done, nil
}

// waitListening waits up to 5 s for something to accept on 127.0.0.1:port.
func waitListening(port int) error {
	for i := 0; i < 250; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d", port)
}

func (b *bench) startNginx(bin string) error {
	if err := os.WriteFile(filepath.Join(b.tmp, "index.html"), page(), 0o644); err != nil {
		return err
	}
	if err := writeCert(b.tmp); err != nil {
		return err
	}
	b.port, b.tlsPort = freePort(), freePort()
	t := b.tmp
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; user root;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s; scgi_temp_path %[1]s; keepalive_requests 100000000;
  server { listen 127.0.0.1:%[2]d; root %[1]s; }
  server { listen 127.0.0.1:%[3]d ssl; root %[1]s;
    ssl_certificate %[1]s/cert.pem; ssl_certificate_key %[1]s/key.pem; }
}
`, t, b.port, b.tlsPort)
	if err := os.WriteFile(filepath.Join(t, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	b.nginx = exec.Command(bin, "-c", filepath.Join(t, "nginx.conf"), "-p", t)
	b.nginx.Stderr = os.Stderr
	if err := b.nginx.Start(); err != nil {
		return err
	}
	return waitListening(b.tlsPort)
}

func (b *bench) stopNginx() {
	if b.nginx != nil {
		_ = b.nginx.Process.Signal(syscall.SIGTERM)
		_ = b.nginx.Wait()
	}
}

// page is the response body: 1.4 KiB of text.
func page() []byte {
	raw := make([]byte, 1024)
	_, _ = rand.Read(raw)
	return pem.EncodeToMemory(&pem.Block{Type: "DATA", Bytes: raw})
}

// writeCert writes a throwaway self-signed ECDSA certificate for nginx.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procCPU reads a process's user+system CPU seconds from /proc.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// procHWM reads a process's peak resident set size in KiB.
func procHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func machine(nginxBin string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	rel := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	nv, _ := exec.Command(nginxBin, "-v").CombinedOutput()
	return fmt.Sprintf("machine: %s, %d CPUs, Linux %s, %s, wrk 4.1", cpu, runtime.NumCPU(), rel, strings.TrimSpace(strings.TrimPrefix(string(nv), "nginx version: ")))
}

// cleanups run, last first, when the bench ends or fails.
var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func runAtExit() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

// fatalf stops nginx and removes the bench's files, then exits 1.
func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench-record: "+format+"\n", a...)
	runAtExit()
	os.Exit(1)
}
