// Package parquet writes exchanges as Apache Parquet (`rewind analyze
// --parquet PATH`), one row per exchange, for SQL engines (DuckDB, Spark,
// Trino, ClickHouse) at fleet scale. The schema is documented in SCHEMA.md.
//
// The file is written with parquet-go/parquet-go, a maintained pure-Go
// implementation, so rewind stays free of cgo on every platform: string
// columns are dictionary-encoded, pages zstd-compressed, and rows are
// flushed as row groups of RowGroupRows while the replay goes on, so memory
// stays bounded by one row group whatever the capture's size. With a
// directory for PATH the rows go to a Hive-partitioned tree,
// host=HOST/date=YYYY-MM-DD/part-CAPTURE.parquet (CAPTURE a hash of the
// input's path, so that many captures of one host and day share the tree
// and a rerun replaces its own file), that engines prune by host and day.
package parquet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
)

// RowGroupRows is how many rows a row group holds before it is written.
const RowGroupRows = 64 << 10

// PageBytes is the size of a column's buffer of uncompressed values: when
// full, it is encoded and compressed as one page. Smaller than parquet-go's
// default of 256 KiB so that the 45 columns' buffers (1.4 MiB) stay in the
// CPU's caches between being filled and being encoded: on 100,000 small
// HTTP/1 exchanges the writer costs about a quarter less CPU and the
// process 18 MiB less memory, for a file 4 % larger (more page headers).
const PageBytes = 32 << 10

// batchRows is how many rows are handed to the column writer at once. The
// writer keeps a row group in its own compact column buffers, so rows are
// not held longer than a batch. 1024 rows (about 0.4 MiB) cost the writer
// 5 ms less than 256 on 100,000 exchanges.
const batchRows = 1024

// Row is one exchange. Optional fields are NULL when unknown (no response,
// a timing not measured), never 0 by default. How a field says NULL
// depends on whether its zero value can be known: a plain optional field is
// NULL when zero (no network namespace is 0, no status is 0, no query is
// empty); a []byte field is NULL when nil, so that an empty string is still
// a value; a pointer is NULL when nil, for numbers where 0 is a value. The
// first two are written by the column writer a batch at a time, a pointer
// one row at a time: pointers are kept for what needs them.
//
// ts and seq grow from row to row: delta encoding leaves a few bits of each
// for zstd to compress, where PLAIN gives it 8 bytes. Timings and sizes are
// left PLAIN: zstd makes them smaller than delta encoding does, for the
// same CPU.
type Row struct {
	TS      time.Time `parquet:"ts,timestamp(nanosecond),delta"`
	Capture string    `parquet:"capture,dict"`
	Host    string    `parquet:"host,dict"` // the recording host (capture header), or the file name for pcaps
	Seq     int64     `parquet:"seq,delta"`
	Conn    string    `parquet:"conn,dict"`
	PID     int64     `parquet:"pid"` // 0 for pcap input
	Comm    string    `parquet:"comm,dict"`

	ContainerRuntime []byte `parquet:"container_runtime,optional,dict,string"`
	ContainerID      string `parquet:"container_id,optional,dict"`
	ContainerName    string `parquet:"container_name,optional,dict"`
	PodUID           string `parquet:"pod_uid,optional,dict"`
	PodQoS           []byte `parquet:"pod_qos,optional,dict,string"`
	PodName          string `parquet:"pod_name,optional,dict"`
	PodNamespace     []byte `parquet:"pod_namespace,optional,dict,string"`
	Hostname         string `parquet:"hostname,optional,dict"`
	NetNS            int64  `parquet:"netns,optional"`

	Role   string `parquet:"role,dict"`
	TLS    string `parquet:"tls,dict"`
	Local  string `parquet:"local,dict"`
	Remote string `parquet:"remote,dict"`
	Proto  string `parquet:"proto,dict"`

	StreamID int64  `parquet:"stream_id,optional"`
	Method   string `parquet:"method,dict"`
	ReqHost  string `parquet:"req_host,dict"`
	Route    string `parquet:"route,dict"`
	Path     string `parquet:"path"`
	Query    string `parquet:"query,optional"`
	Status   int32  `parquet:"status,optional"`

	ReqBodyBytes  *int64 `parquet:"req_body_bytes,optional"`
	RespBodyBytes *int64 `parquet:"resp_body_bytes,optional"`
	ContentType   string `parquet:"resp_content_type,dict"`

	ServerNS   *int64 `parquet:"server_ns,optional"`
	TransferNS *int64 `parquet:"transfer_ns,optional"`
	NetworkNS  *int64 `parquet:"network_ns,optional"`
	TotalNS    *int64 `parquet:"total_ns,optional"`

	Flags      []string `parquet:"flags,list"`
	Incomplete bool     `parquet:"incomplete"`
	Truncated  bool     `parquet:"truncated"`
	Desynced   bool     `parquet:"desynced"`
	Reset      bool     `parquet:"reset"`
	NoResponse bool     `parquet:"no_response"`

	GRPCService []byte `parquet:"grpc_service,optional,string"`
	GRPCMethod  []byte `parquet:"grpc_method,optional,string"`
	GRPCStatus  *int32 `parquet:"grpc_status,optional"`
}

// Writer is an [analyze.Sink] writing one Parquet row per exchange.
type Writer struct {
	path    string // a file, or the root of a partitioned tree
	tree    bool
	version string
	router  *sli.Router
	track   func(path string, live bool)
	info    *analyze.CaptureInfo
	capture string
	host    string
	parts   map[string]*part // by partition directory
	order   []string         // partitions in the order they appeared
	addrs   endpoints
	// last is the part of the previous exchange, and lastDay its UTC day
	// in a tree: an exchange of the same day goes to it without its
	// partition's path being made again.
	last    *part
	lastDay [3]int
}

// part is one output file of a partitioned tree (or the single file).
type part struct {
	f    *os.File
	tmp  string // written under a temporary name, renamed at End
	dst  string
	w    *parquet.GenericWriter[Row]
	rows []Row
	// vals holds what the optional fields of rows[i] point to, and flags
	// their flag names, so a row costs no allocation of its own.
	vals  [batchRows]optionals
	flags []string
}

// optionals is the storage of what one row's pointer fields point to.
type optionals struct {
	reqBody, respBody                int64
	server, transfer, network, total int64
	grpcStatus                       int32
}

// endpoints caches the address strings of recent connections, by
// connection and address (a TLS session's addresses can be learnt after
// its first exchange), so that a keep-alive connection's exchanges format
// them once.
type endpoints struct {
	conn          [256]*analyze.Conn
	addr          [256][2]netip.AddrPort
	local, remote [256]string
}

func (e *endpoints) of(c *analyze.Conn) (local, remote string) {
	i := (uintptr(unsafe.Pointer(c)) >> 6) % uintptr(len(e.conn))
	if e.conn[i] != c || e.addr[i] != [2]netip.AddrPort{c.Local, c.Remote} {
		e.conn[i], e.addr[i], e.local[i], e.remote[i] = c, [2]netip.AddrPort{c.Local, c.Remote}, "", ""
		if c.Local.IsValid() {
			e.local[i] = c.Local.String()
		}
		if c.Remote.IsValid() {
			e.remote[i] = c.Remote.String()
		}
	}
	return e.local[i], e.remote[i]
}

// Options tune a [Writer].
type Options struct {
	// Routes are the --route patterns, for the route column.
	Routes []sli.Route
	// Version goes into the file's created_by.
	Version string
	// TrackTemp, when set, is told of each temporary file the writer
	// creates (live true) and of its end, renamed into place or removed
	// (live false), so that a program ending at once (a second Ctrl-C) can
	// remove the temporary files still there.
	TrackTemp func(path string, live bool)
}

// IsTree reports whether New makes a partitioned tree of path: it is an
// existing directory or ends in a separator.
func IsTree(path string) bool {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return true
	}
	return strings.HasSuffix(path, string(os.PathSeparator)) || strings.HasSuffix(path, "/")
}

// New returns a Writer to path: a file, or, when path is an existing
// directory or ends in a separator, a Hive-partitioned tree under it.
func New(path string, opts Options) (*Writer, error) {
	track := opts.TrackTemp
	if track == nil {
		track = func(string, bool) {}
	}
	w := &Writer{path: path, version: opts.Version, router: sli.NewRouter(opts.Routes), track: track, parts: map[string]*part{}}
	if IsTree(path) {
		w.tree = true
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("--parquet %s: %w", path, err)
		}
	} else if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--parquet %s: directory %s does not exist", path, dir)
		}
	}
	return w, nil
}

// Begin implements [analyze.Sink].
func (w *Writer) Begin(info *analyze.CaptureInfo) error {
	w.info = info
	w.capture = info.Path
	w.host = info.HostName()
	return nil
}

// Exchange implements [analyze.Sink].
func (w *Writer) Exchange(ex *analyze.Exchange) error {
	ts := w.info.Wall(ex.Start()).UTC()
	p, err := w.part(ts)
	if err != nil {
		return err
	}
	p.rows = p.rows[:len(p.rows)+1]
	w.row(ex, ts, p, len(p.rows)-1)
	if len(p.rows) == batchRows {
		return p.write()
	}
	return nil
}

// End implements [analyze.Sink]: it writes the last row groups and the
// files' footers, and moves the files into place.
func (w *Writer) End(*analyze.Summary) error {
	if len(w.order) == 0 && !w.tree {
		// No exchange: still a valid file, with the schema and no rows.
		if _, err := w.part(time.Time{}); err != nil {
			return err
		}
	}
	var errs []error
	for _, dir := range w.order {
		p := w.parts[dir]
		if err := p.close(); err != nil {
			errs = append(errs, err)
		}
		w.track(p.tmp, false)
	}
	return errors.Join(errs...)
}

// The optional sink interfaces the replay finds by type assertion.
var (
	_ analyze.HeaderLookupSink    = (*Writer)(nil)
	_ analyze.KeepsNoExchangeSink = (*Writer)(nil)
)

// KeepsNoExchange reports that the writer keeps no exchange: a batch's rows
// hold the exchange's strings and its Conn's, which are never reused (see
// [analyze.KeepsNoExchangeSink]), and values copied into the row.
func (w *Writer) KeepsNoExchange() bool { return true }

// HeaderLookupOnly reports that the writer reads header fields only by
// name: see [analyze.HeaderLookupSink].
func (w *Writer) HeaderLookupOnly() bool { return true }

// part returns the output an exchange at ts goes to, opening it on first
// use.
func (w *Writer) part(ts time.Time) (*part, error) {
	var day [3]int
	if w.tree {
		y, m, d := ts.UTC().Date()
		day = [3]int{y, int(m), d}
	}
	if w.last != nil && day == w.lastDay {
		return w.last, nil
	}
	p, err := w.partOf(ts)
	if err == nil {
		w.last, w.lastDay = p, day
	}
	return p, err
}

// partOf is part without the cache.
func (w *Writer) partOf(ts time.Time) (*part, error) {
	dst := w.path
	key := ""
	if w.tree {
		key = filepath.Join("host="+escape(w.host), "date="+ts.UTC().Format("2006-01-02"))
		sum := sha256.Sum256([]byte(w.capture))
		dst = filepath.Join(w.path, key, "part-"+hex.EncodeToString(sum[:8])+".parquet")
	}
	if p := w.parts[key]; p != nil {
		return p, nil
	}
	p, err := w.newPart(dst)
	if err != nil {
		return nil, err
	}
	w.parts[key] = p
	w.order = append(w.order, key)
	return p, nil
}

// newPart opens a temporary file beside dst, renamed to dst when closed.
func (w *Writer) newPart(dst string) (*part, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("--parquet: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".rewind-*")
	if err != nil {
		return nil, fmt.Errorf("--parquet: %w", err)
	}
	w.track(f.Name(), true)
	p := &part{f: f, tmp: f.Name(), dst: dst, rows: make([]Row, 0, batchRows), flags: make([]string, 0, 64)}
	p.w = parquet.NewGenericWriter[Row](f, writerOptions(w.version)...)
	return p, nil
}

// writerOptions are the file's compression and page size: zstd at its
// fastest level, without entropy coding of literals (see zstdCodec).
func writerOptions(version string) []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(&zstdCodec{}),
		parquet.CreatedBy("rewind", version, ""),
		parquet.MaxRowsPerRowGroup(RowGroupRows),
		parquet.PageBufferSize(PageBytes),
	}
}

// Concat writes the rows of the Parquet files srcs, written by Writers,
// into the one file dst, in the order given, row group by row group
// (bounded memory); dst appears complete or not at all. It is how the
// files of several inputs analyzed concurrently become one.
func Concat(dst string, srcs []string, opts Options) error {
	w := &Writer{version: opts.Version, track: opts.TrackTemp}
	if w.track == nil {
		w.track = func(string, bool) {}
	}
	p, err := w.newPart(dst)
	if err != nil {
		return err
	}
	copyRows := func(src string) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			return fmt.Errorf("reading parquet %s: %w", src, err)
		}
		for _, rg := range pf.RowGroups() {
			if _, err := p.w.WriteRowGroup(rg); err != nil {
				return fmt.Errorf("writing parquet %s: %w", dst, err)
			}
		}
		return nil
	}
	for _, src := range srcs {
		if err := copyRows(src); err != nil {
			p.f.Close()
			os.Remove(p.tmp)
			w.track(p.tmp, false)
			return err
		}
	}
	err = p.close()
	w.track(p.tmp, false)
	return err
}

// write hands the batch to the column writer, which starts a new row
// group every RowGroupRows rows.
func (p *part) write() error {
	if len(p.rows) == 0 {
		return nil
	}
	if _, err := p.w.Write(p.rows); err != nil {
		return fmt.Errorf("writing parquet %s: %w", p.dst, err)
	}
	clear(p.rows)
	p.rows = p.rows[:0]
	clear(p.flags)
	p.flags = p.flags[:0]
	return nil
}

func (p *part) close() error {
	err := p.write()
	if cerr := p.w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing parquet %s: %w", p.dst, cerr)
	}
	if cerr := p.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.tmp, p.dst)
	}
	if err != nil {
		os.Remove(p.tmp)
	}
	return err
}

// Abort removes what was written, for a run that failed.
func (w *Writer) Abort() {
	for _, p := range w.parts {
		p.f.Close()
		os.Remove(p.tmp)
		w.track(p.tmp, false)
	}
}

// empty is the empty string as a value of a []byte field: not nil, so not
// NULL.
var empty = []byte{}

// value returns s as the value of a []byte field of Row, sharing its bytes
// (the writer only reads them): "" is a value, not NULL.
func value(s string) []byte {
	if s == "" {
		return empty
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

var escaper = strings.NewReplacer("/", "%2F", "\\", "%5C", "=", "%3D", ":", "%3A")

// escape keeps a partition value a single path element.
func escape(s string) string {
	if s == "" {
		return "unknown"
	}
	return escaper.Replace(s)
}

// row fills p.rows[i] from ex; its optional values live in p.vals[i].
func (w *Writer) row(ex *analyze.Exchange, ts time.Time, p *part, i int) {
	c := ex.Conn
	v := &p.vals[i]
	r := &p.rows[i]
	*r = Row{
		TS:      ts,
		Capture: w.capture, Host: w.host, Seq: int64(ex.Seq),
		Conn: c.ID, PID: int64(c.PID), Comm: c.Comm, Role: c.Role.String(), TLS: c.TLS,
		Proto:  ex.Proto,
		Method: ex.Request.Method, ReqHost: ex.Request.Host, Path: ex.Request.Path,
		Route:       w.router.Route(ex),
		ContentType: ex.Response.HeaderValue("Content-Type"),
		Incomplete:  ex.Flags&analyze.FlagIncomplete != 0,
		Truncated:   ex.Flags&analyze.FlagTruncated != 0,
		Desynced:    ex.Flags&analyze.FlagDesynced != 0,
		Reset:       ex.Flags&analyze.FlagReset != 0,
		NoResponse:  ex.Flags&analyze.FlagNoResponse != 0,
	}
	if r.TLS == "" {
		r.TLS = "none"
	}
	// ID, Name, PodUID, Pod and Hostname are NULL exactly when empty: plain
	// optional fields.
	if ct := c.Container; ct.Known() {
		r.ContainerRuntime, r.ContainerID = value(ct.Runtime), ct.ID
		r.ContainerName = ct.Name
		if ct.PodUID != "" {
			r.PodUID, r.PodQoS = ct.PodUID, value(ct.QoS)
		}
		if ct.Pod != "" {
			r.PodName, r.PodNamespace = ct.Pod, value(ct.Namespace)
		}
		r.Hostname = ct.Hostname
	}
	r.NetNS = int64(c.NetNS)
	r.Local, r.Remote = w.addrs.of(c)
	r.StreamID = int64(ex.StreamID)
	r.Query = ex.Request.Query
	if n := ex.Request.BodyBytes; n >= 0 {
		v.reqBody = n
		r.ReqBodyBytes = &v.reqBody
	}
	if s := ex.Response.Status; s != 0 {
		r.Status = int32(s)
		if n := ex.Response.BodyBytes; n >= 0 {
			v.respBody = n
			r.RespBodyBytes = &v.respBody
		}
	}
	timing := func(t int64, slot *int64, dst **int64) {
		if t >= 0 {
			*slot = t
			*dst = slot
		}
	}
	timing(ex.Timings.Server, &v.server, &r.ServerNS)
	timing(ex.Timings.Transfer, &v.transfer, &r.TransferNS)
	timing(ex.Timings.Network, &v.network, &r.NetworkNS)
	timing(ex.Timings.Total, &v.total, &r.TotalNS)
	// The flags of the batch's rows share one array; a row's slice is
	// capped so that a later append cannot write into it.
	n := len(p.flags)
	p.flags = ex.Flags.AppendNames(p.flags)
	r.Flags = p.flags[n:len(p.flags):len(p.flags)]
	if g := ex.GRPC; g != nil {
		r.GRPCService, r.GRPCMethod = value(g.Service), value(g.Method)
		if g.Status >= 0 {
			v.grpcStatus = int32(g.Status)
			r.GRPCStatus = &v.grpcStatus
		}
	}
}
