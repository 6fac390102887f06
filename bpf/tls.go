//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/rewind-tools/rewind/bpf/tlsprobe"
)

// tlsRescanInterval is how often every process's maps are scanned again for
// TLS libraries that were not attached yet (dlopen, programs started in
// another way than exec'd under the recording).
const tlsRescanInterval = 2 * time.Second

// After an exec, the new process's maps are scanned again at these delays:
// its libraries are mapped by the dynamic loader after the exec returns.
var tlsExecRescans = []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond, time.Second}

// tlsAttacher finds TLS libraries in processes and attaches the uprobes of
// each file (device, inode) once. Files it attached stay attached until
// the tracer detaches: a uprobe on a file covers every process mapping it,
// the ones started later included.
type tlsAttacher struct {
	t     *Tracer
	log   io.Writer
	seen  map[[2]uint64]bool // files inspected, TLS or not
	execs chan uint32
	stop  chan struct{}
	done  chan struct{}
}

// ProcessStarted tells the TLS attacher that process pid exec'd a new
// program (the recorder forwards EventExec records): its executable and
// libraries are inspected right away instead of at the next periodic scan.
// It never blocks and does nothing without TLS probes.
func (t *Tracer) ProcessStarted(pid uint32) {
	if t.tls == nil {
		return
	}
	select {
	case t.tls.execs <- pid:
	default: // the periodic scan will find it
	}
}

// startTLS attaches the TLS probes of the system libraries and of every
// running process, then keeps watching for new ones in the background.
func (t *Tracer) startTLS(log io.Writer) {
	a := &tlsAttacher{
		t:     t,
		log:   log,
		seen:  map[[2]uint64]bool{},
		execs: make(chan uint32, 1024),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	t.tls = a
	for _, f := range tlsprobe.SystemLibraries() {
		a.attachFile(f)
	}
	a.scanAll()
	go a.run()
}

func (a *tlsAttacher) close() {
	close(a.stop)
	<-a.done
}

func (a *tlsAttacher) run() {
	defer close(a.done)
	rescan := time.NewTicker(tlsRescanInterval)
	defer rescan.Stop()
	type later struct {
		pid uint32
		at  time.Time
	}
	var pending []later
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-rescan.C:
			a.scanAll()
		case pid := <-a.execs:
			a.scanProcess(int(pid))
			now := time.Now()
			for _, d := range tlsExecRescans {
				pending = append(pending, later{pid, now.Add(d)})
			}
		case now := <-poll.C:
			keep := pending[:0]
			for _, p := range pending {
				if now.Before(p.at) {
					keep = append(keep, p)
					continue
				}
				a.scanProcess(int(p.pid))
			}
			pending = keep
		}
	}
}

// scanAll inspects every process's files.
func (a *tlsAttacher) scanAll() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || uint32(pid) == a.t.selfPID {
			continue
		}
		a.scanProcess(pid)
	}
}

// traced reports whether the recording selects process pid (the kernel's
// traced_tgids, which fork extends, or the task name).
func (t *Tracer) traced(pid int) bool {
	if !t.filterPIDs && t.comms == nil && t.cgroups == nil {
		return true
	}
	if t.filterPIDs {
		var one uint8
		if t.objs.TracedTgids.Lookup(uint32(pid), &one) == nil {
			return true
		}
	}
	if t.comms != nil {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && t.comms[strings.TrimSuffix(string(b), "\n")] {
			return true
		}
	}
	if t.cgroups != nil {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			path, ok := strings.CutPrefix(line, "0::")
			if !ok {
				continue
			}
			for _, sel := range t.cgroups {
				if path == sel || strings.HasPrefix(path, strings.TrimSuffix(sel, "/")+"/") {
					return true
				}
			}
		}
	}
	return false
}

func (a *tlsAttacher) scanProcess(pid int) {
	// Every uprobe costs the kernel a grace period to remove (~0.1 s on
	// recent kernels, also when the recorder is killed): probe only the
	// programs the recording selects.
	if !a.t.traced(pid) {
		return
	}
	files, _ := tlsprobe.ProcessFiles(pid) // the process may be gone: nothing to do
	for _, f := range files {
		a.attachFile(f)
	}
}

// attachFile inspects f and attaches its probes, once per (device, inode).
func (a *tlsAttacher) attachFile(f tlsprobe.File) {
	key := [2]uint64{f.Dev, f.Ino}
	if a.seen[key] {
		return
	}
	a.seen[key] = true
	target, err := tlsprobe.Inspect(f.Path)
	if err != nil {
		if errors.Is(err, tlsprobe.ErrUnsupported) {
			fmt.Fprintf(a.log, "rewind: TLS: %s: %v\n", f.Name, err)
		}
		return
	}
	if target == nil {
		return
	}
	n, err := a.t.attachTLS(f, target)
	if err != nil {
		fmt.Fprintf(a.log, "rewind: TLS: attaching %s probes to %s: %v\n", target.Library, f.Name, err)
		return
	}
	version := ""
	if target.GoVersion != "" {
		version = " (" + target.GoVersion + ")"
	}
	fmt.Fprintf(a.log, "rewind: TLS: %s%s in %s: %d probes\n", target.Library, version, f.Name, n)
}

// tlsCookie is what a TLS program reads with bpf_get_attach_cookie: the
// library (data source), the direction and the out-parameter argument.
func tlsCookie(lib tlsprobe.Library, p tlsprobe.Probe) uint64 {
	return uint64(lib) | uint64(p.Dir)<<8 | uint64(p.OutArg)<<16
}

// attachTLS attaches every probe of target; on a failure it detaches the
// ones of this target it attached.
func (t *Tracer) attachTLS(f tlsprobe.File, target *tlsprobe.Target) (int, error) {
	ex, err := link.OpenExecutable(f.Path)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	var links []link.Link
	var ids []string
	fail := func(err error) (int, error) {
		for _, l := range links {
			l.Close()
		}
		return 0, err
	}
	progs := &t.objs.rewindPrograms
	for _, p := range target.Probes {
		var (
			prog *ebpf.Program
			ret  bool
			kind = "uprobe"
		)
		switch p.Kind {
		case tlsprobe.Entry:
			prog = progs.TlsEnter
		case tlsprobe.Return:
			prog, ret, kind = progs.TlsExit, true, "uretprobe"
		case tlsprobe.GoEntry:
			prog = progs.GoTlsEnter
		case tlsprobe.GoReturn:
			prog = progs.GoTlsRet
		default:
			continue
		}
		opts := &link.UprobeOptions{Address: p.Offset, Cookie: tlsCookie(target.Library, p)}
		var l link.Link
		if ret {
			l, err = ex.Uretprobe(p.Symbol, prog, opts)
		} else {
			l, err = ex.Uprobe(p.Symbol, prog, opts)
		}
		if err != nil {
			return fail(fmt.Errorf("%s %s at %#x: %w", kind, p.Symbol, p.Offset, err))
		}
		links = append(links, l)
		ids = append(ids, fmt.Sprintf("%s:%s:%s@%#x", kind, f.Name, p.Symbol, p.Offset))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.detached {
		return fail(errors.New("tracer detached"))
	}
	t.uprobes = append(t.uprobes, links...)
	t.probes = append(t.probes, ids...)
	return len(links), nil
}

// errTLSArch says TLS probes are not available on this architecture.
var errTLSArch = errors.New("TLS plaintext capture is only available on amd64 for now")

// tlsSupported reports whether TLS probes can run here.
func tlsSupported(goarch string) error {
	if goarch != "amd64" {
		return errTLSArch
	}
	return nil
}

// TLSProbesSupported reports why TLS plaintext cannot be captured on this
// machine, or nil when it can.
func TLSProbesSupported() error { return tlsSupported(runtime.GOARCH) }
