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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
)

// RowGroupRows is how many rows a row group holds before it is written.
const RowGroupRows = 64 << 10

// Row is one exchange. Optional fields are nil when unknown (no response,
// a timing not measured), never 0 by default.
type Row struct {
	TS      time.Time `parquet:"ts,timestamp(nanosecond)"`
	Capture string    `parquet:"capture,dict"`
	Host    string    `parquet:"host,dict"` // the recording host (capture header), or the file name for pcaps
	Seq     int64     `parquet:"seq"`
	Conn    string    `parquet:"conn,dict"`
	PID     int64     `parquet:"pid"` // 0 for pcap input
	Comm    string    `parquet:"comm,dict"`

	ContainerRuntime *string `parquet:"container_runtime,optional,dict"`
	ContainerID      *string `parquet:"container_id,optional,dict"`
	PodUID           *string `parquet:"pod_uid,optional,dict"`
	PodQoS           *string `parquet:"pod_qos,optional,dict"`

	Role   string `parquet:"role,dict"`
	TLS    string `parquet:"tls,dict"`
	Local  string `parquet:"local,dict"`
	Remote string `parquet:"remote,dict"`
	Proto  string `parquet:"proto,dict"`

	StreamID *int64  `parquet:"stream_id,optional"`
	Method   string  `parquet:"method,dict"`
	ReqHost  string  `parquet:"req_host,dict"`
	Route    string  `parquet:"route,dict"`
	Path     string  `parquet:"path"`
	Query    *string `parquet:"query,optional"`
	Status   *int32  `parquet:"status,optional"`

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

	GRPCService *string `parquet:"grpc_service,optional"`
	GRPCMethod  *string `parquet:"grpc_method,optional"`
	GRPCStatus  *int32  `parquet:"grpc_status,optional"`
}

// Writer is an [analyze.Sink] writing one Parquet row per exchange.
type Writer struct {
	path    string // a file, or the root of a partitioned tree
	tree    bool
	version string
	router  *sli.Router
	info    *analyze.CaptureInfo
	capture string
	host    string
	parts   map[string]*part // by partition directory
	order   []string         // partitions in the order they appeared
}

// part is one output file of a partitioned tree (or the single file).
type part struct {
	f    *os.File
	tmp  string // written under a temporary name, renamed at End
	dst  string
	w    *parquet.GenericWriter[Row]
	rows []Row
}

// Options tune a [Writer].
type Options struct {
	// Routes are the --route patterns, for the route column.
	Routes []sli.Route
	// Version goes into the file's created_by.
	Version string
}

// New returns a Writer to path: a file, or, when path is an existing
// directory or ends in a separator, a Hive-partitioned tree under it.
func New(path string, opts Options) (*Writer, error) {
	w := &Writer{path: path, version: opts.Version, router: sli.NewRouter(opts.Routes), parts: map[string]*part{}}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() || strings.HasSuffix(path, string(os.PathSeparator)) || strings.HasSuffix(path, "/") {
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
	w.host = info.Header.Host
	if w.host == "" || info.Format != "rewind" {
		// A pcap has no host: its file name stands in.
		w.host = strings.TrimSuffix(filepath.Base(info.Path), filepath.Ext(info.Path))
	}
	return nil
}

// Exchange implements [analyze.Sink].
func (w *Writer) Exchange(ex *analyze.Exchange) error {
	r := w.row(ex)
	p, err := w.part(r.TS)
	if err != nil {
		return err
	}
	p.rows = append(p.rows, r)
	if len(p.rows) >= RowGroupRows {
		return p.flush()
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
		if err := w.parts[dir].close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HeaderLookupOnly reports that the writer reads header fields only by
// name: see [analyze.HeaderLookupSink].
func (w *Writer) HeaderLookupOnly() bool { return true }

// part returns the output an exchange at ts goes to, opening it on first
// use.
func (w *Writer) part(ts time.Time) (*part, error) {
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
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("--parquet: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".rewind-*")
	if err != nil {
		return nil, fmt.Errorf("--parquet: %w", err)
	}
	p := &part{f: f, tmp: f.Name(), dst: dst}
	p.w = parquet.NewGenericWriter[Row](f,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.CreatedBy("rewind", w.version, ""),
		parquet.MaxRowsPerRowGroup(RowGroupRows),
	)
	w.parts[key] = p
	w.order = append(w.order, key)
	return p, nil
}

func (p *part) flush() error {
	if len(p.rows) == 0 {
		return nil
	}
	if _, err := p.w.Write(p.rows); err != nil {
		return fmt.Errorf("writing parquet %s: %w", p.dst, err)
	}
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("writing parquet %s: %w", p.dst, err)
	}
	clear(p.rows)
	p.rows = p.rows[:0]
	return nil
}

func (p *part) close() error {
	err := p.flush()
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
	}
}

// escape keeps a partition value a single path element.
func escape(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.NewReplacer("/", "%2F", "\\", "%5C", "=", "%3D", ":", "%3A").Replace(s)
}

func (w *Writer) row(ex *analyze.Exchange) Row {
	c := ex.Conn
	r := Row{
		TS:      w.info.Wall(ex.Start()).UTC(),
		Capture: w.capture, Host: w.host, Seq: int64(ex.Seq),
		Conn: c.ID, PID: int64(c.PID), Comm: c.Comm, Role: c.Role.String(), TLS: c.TLS,
		Proto:  ex.Proto,
		Method: ex.Request.Method, ReqHost: ex.Request.Host, Path: ex.Request.Path,
		Route:       w.router.Endpoint(ex).Path,
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
	if ct := c.Container; ct.Known() {
		r.ContainerRuntime, r.ContainerID = ptr(ct.Runtime), ptr(ct.ID)
		if ct.PodUID != "" {
			r.PodUID, r.PodQoS = ptr(ct.PodUID), ptr(ct.QoS)
		}
	}
	if c.Local.IsValid() {
		r.Local = c.Local.String()
	}
	if c.Remote.IsValid() {
		r.Remote = c.Remote.String()
	}
	if ex.StreamID != 0 {
		r.StreamID = ptr(int64(ex.StreamID))
	}
	if ex.Request.Query != "" {
		r.Query = ptr(ex.Request.Query)
	}
	if n := ex.Request.BodyBytes; n >= 0 {
		r.ReqBodyBytes = ptr(n)
	}
	if s := ex.Response.Status; s != 0 {
		r.Status = ptr(int32(s))
		if n := ex.Response.BodyBytes; n >= 0 {
			r.RespBodyBytes = ptr(n)
		}
	}
	for _, t := range []struct {
		v   int64
		dst **int64
	}{{ex.Timings.Server, &r.ServerNS}, {ex.Timings.Transfer, &r.TransferNS}, {ex.Timings.Network, &r.NetworkNS}, {ex.Timings.Total, &r.TotalNS}} {
		if t.v >= 0 {
			*t.dst = ptr(t.v)
		}
	}
	r.Flags = ex.Flags.AppendNames(nil)
	if r.Flags == nil {
		r.Flags = []string{}
	}
	if g := ex.GRPC; g != nil {
		r.GRPCService, r.GRPCMethod = ptr(g.Service), ptr(g.Method)
		if g.Status >= 0 {
			r.GRPCStatus = ptr(int32(g.Status))
		}
	}
	return r
}

func ptr[T any](v T) *T { return &v }
