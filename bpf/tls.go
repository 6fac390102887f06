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
	res, err := a.t.attachTLS(f, target)
	if err != nil {
		fmt.Fprintf(a.log, "rewind: TLS: attaching %s probes to %s: %v\n", target.Library, f.Name, err)
		return
	}
	version := ""
	if target.GoVersion != "" {
		version = " (" + target.GoVersion + ")"
	}
	how := ""
	switch {
	case res.multiErr != nil:
		how = fmt.Sprintf(", one link each (uprobe_multi: %v)", res.multiErr)
	case a.t.uprobeMulti:
		how = fmt.Sprintf(" in %d uprobe_multi links", len(res.links))
	}
	fmt.Fprintf(a.log, "rewind: TLS: %s%s in %s: %d probes%s\n", target.Library, version, f.Name, len(res.ids), how)
}

// tlsCookie is what a TLS program reads with bpf_get_attach_cookie: the
// library (data source), the direction and the out-parameter argument.
func tlsCookie(lib tlsprobe.Library, p tlsprobe.Probe) uint64 {
	return uint64(lib) | uint64(p.Dir)<<8 | uint64(p.OutArg)<<16
}

// tlsProgram is the program of one probe kind, and its uprobe_multi twin.
type tlsProgram struct {
	kind        tlsprobe.Kind
	prog, multi *ebpf.Program
	ret         bool // a uretprobe
}

// linkKind names the probe in [Tracer.Probes]: "uprobe", "uretprobe",
// or with ".multi" for a uprobe_multi link.
func (tp tlsProgram) linkKind(multi bool) string {
	kind := "uprobe"
	if tp.ret {
		kind = "uretprobe"
	}
	if multi {
		kind += ".multi"
	}
	return kind
}

// tlsPrograms lists the programs by probe kind, returns first: a call
// entered while its return probe is not attached yet would leave its state
// behind.
func (t *Tracer) tlsPrograms() []tlsProgram {
	p := &t.objs.rewindPrograms
	return []tlsProgram{
		{tlsprobe.Return, p.TlsExit, p.TlsExitMulti, true},
		{tlsprobe.GoReturn, p.GoTlsRet, p.GoTlsRetMulti, false},
		{tlsprobe.Entry, p.TlsEnter, p.TlsEnterMulti, false},
		{tlsprobe.GoEntry, p.GoTlsEnter, p.GoTlsEnterMulti, false},
	}
}

// tlsLinks is what attachTLS attached for one target.
type tlsLinks struct {
	links []link.Link
	ids   []string // one per probe, for [Tracer.Probes]
	// multiErr is why uprobe_multi links were not used where the kernel
	// has them (one link per probe instead).
	multiErr error
}

func (l *tlsLinks) close() {
	for _, k := range l.links {
		k.Close()
	}
	l.links, l.ids = nil, nil
}

// attachTLS attaches every probe of target: with one uprobe_multi link per
// program where the kernel has them, else (or when that fails) with one
// link per probe. On a failure it detaches the ones of this target it
// attached.
func (t *Tracer) attachTLS(f tlsprobe.File, target *tlsprobe.Target) (*tlsLinks, error) {
	ex, err := link.OpenExecutable(f.Path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	var res tlsLinks
	if t.uprobeMulti {
		res.multiErr = t.attachTLSMulti(ex, f, target, &res)
		if res.multiErr != nil {
			res.close()
		}
	}
	if res.links == nil {
		if err := t.attachTLSEach(ex, f, target, &res); err != nil {
			res.close()
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.detached {
		res.close()
		return nil, errors.New("tracer detached")
	}
	t.uprobes = append(t.uprobes, res.links...)
	t.probes = append(t.probes, res.ids...)
	return &res, nil
}

// attachTLSMulti attaches the probes of each kind in target with one
// uprobe_multi link: the kernel runs the program from the uprobe itself,
// without a perf event per probe.
func (t *Tracer) attachTLSMulti(ex *link.Executable, f tlsprobe.File, target *tlsprobe.Target, res *tlsLinks) error {
	for _, tp := range t.tlsPrograms() {
		var opts link.UprobeMultiOptions
		var ids []string
		kind := tp.linkKind(true)
		for _, p := range target.Probes {
			if p.Kind != tp.kind {
				continue
			}
			opts.Addresses = append(opts.Addresses, p.Offset)
			opts.Cookies = append(opts.Cookies, tlsCookie(target.Library, p))
			ids = append(ids, fmt.Sprintf("%s:%s:%s@%#x", kind, f.Name, p.Symbol, p.Offset))
		}
		if len(ids) == 0 {
			continue
		}
		var l link.Link
		var err error
		if tp.ret {
			l, err = ex.UretprobeMulti(nil, tp.multi, &opts)
		} else {
			l, err = ex.UprobeMulti(nil, tp.multi, &opts)
		}
		if err != nil {
			return fmt.Errorf("%s (%d probes): %w", kind, len(ids), err)
		}
		res.links = append(res.links, l)
		res.ids = append(res.ids, ids...)
	}
	return nil
}

// attachTLSEach attaches the probes of target with one link (and perf
// event) each, kind by kind in tlsPrograms' order (returns first).
func (t *Tracer) attachTLSEach(ex *link.Executable, f tlsprobe.File, target *tlsprobe.Target, res *tlsLinks) error {
	for _, tp := range t.tlsPrograms() {
		kind := tp.linkKind(false)
		for _, p := range target.Probes {
			if p.Kind != tp.kind {
				continue
			}
			opts := &link.UprobeOptions{Address: p.Offset, Cookie: tlsCookie(target.Library, p)}
			var l link.Link
			var err error
			if tp.ret {
				l, err = ex.Uretprobe(p.Symbol, tp.prog, opts)
			} else {
				l, err = ex.Uprobe(p.Symbol, tp.prog, opts)
			}
			if err != nil {
				return fmt.Errorf("%s %s at %#x: %w", kind, p.Symbol, p.Offset, err)
			}
			res.links = append(res.links, l)
			res.ids = append(res.ids, fmt.Sprintf("%s:%s:%s@%#x", kind, f.Name, p.Symbol, p.Offset))
		}
	}
	return nil
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
