package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/format/jsonl"
	"github.com/rewind-tools/rewind/format/parquet"
	"github.com/rewind-tools/rewind/format/pcapng"
)

// manyPart is one input of an analysis of several, and what its replay
// wrote: its aggregator and the temporary files of its per-exchange
// outputs, joined in the inputs' order once every input is done.
type manyPart struct {
	path      string
	agg       *sli.Aggregator
	exchanges string // JSON lines, "" when not asked for
	pcapng    string // one pcapng section
	parquet   string // a Parquet file, when --parquet names one file
	sum       *analyze.Summary
}

// manyOutputs says which per-exchange outputs each input writes, each
// into a temporary file in the directory named ("" when not asked for).
type manyOutputs struct {
	exchanges, pcapng string
	// parquetTree is the --parquet directory every input writes its own
	// partitions into; parquetFile the directory where each input writes a
	// file of its own, concatenated into --parquet FILE at the end.
	parquetTree, parquetFile string
	// routes are the --route patterns, for the route fields.
	routes []sli.Route
	// read, when set, counts the bytes read from every input, for the
	// progress shown on a terminal.
	read *atomic.Int64
}

// analyzeMany replays the inputs at paths (more than one) concurrently, at
// most GOMAXPROCS at a time, each with memory bounded as a replay of one
// input is, and merges their SLI reports into one ([sli.FleetReport]).
// Parts come back in the order of paths, whatever order the replays
// finished in, so that the outputs are the same bytes every time. On an
// error the other replays stop and every temporary file is removed.
func analyzeMany(ctx context.Context, paths []string, sliOpts sli.Options, ropts analyze.Options, outs manyOutputs) (*sli.Report, []*manyPart, error) {
	// Every input must open before any work: a typo in the tenth name
	// should not cost the first nine replays.
	for _, p := range paths {
		in, err := analyze.Open(p)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		in.Close()
	}
	sliOpts.Fleet = true
	parts := make([]*manyPart, len(paths))
	for i, p := range paths {
		parts[i] = &manyPart{path: p, agg: sli.New(sliOpts)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *manyPart)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for part := range jobs {
				if err := part.replay(ctx, ropts, outs); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, part := range parts {
		if ctx.Err() != nil {
			break
		}
		jobs <- part
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		removeParts(parts)
		return nil, nil, firstErr
	}
	aggs := make([]*sli.Aggregator, len(parts))
	for i, p := range parts {
		aggs[i] = p.agg
	}
	r, err := sli.FleetReport(aggs)
	if err != nil {
		removeParts(parts)
		return nil, nil, err
	}
	return r, parts, nil
}

// replay analyzes one input into its aggregator and temporary outputs.
func (p *manyPart) replay(ctx context.Context, ropts analyze.Options, outs manyOutputs) (err error) {
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	var r io.Reader = f
	if outs.read != nil {
		r = &countingReader{r: f, n: outs.read}
	}
	in, err := analyze.OpenReader(r, p.path)
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.path, err)
	}
	in = in.WithCloser(f.Close)
	defer in.Close()
	sinks := []analyze.Sink{p.agg}
	var files []*os.File
	defer func() {
		for _, f := range files {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = cerr
			}
		}
	}()
	temp := func(dst *string, dir, pattern string) (io.Writer, error) {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, fmt.Errorf("a temporary file for %s: %w", p.path, err)
		}
		trackTemp(f.Name(), true)
		*dst = f.Name()
		files = append(files, f)
		return f, nil
	}
	if outs.exchanges != "" {
		w, err := temp(&p.exchanges, outs.exchanges, ".rewind-exchanges-*")
		if err != nil {
			return err
		}
		sinks = append(sinks, jsonl.New(w, outs.routes...).NameInput())
	}
	if outs.pcapng != "" {
		w, err := temp(&p.pcapng, outs.pcapng, ".rewind-pcapng-*")
		if err != nil {
			return err
		}
		sinks = append(sinks, pcapng.New(w, pcapng.Options{Version: version}))
	}
	var pq *parquet.Writer
	switch {
	case outs.parquetTree != "":
		pq, err = parquet.New(outs.parquetTree, parquet.Options{Routes: outs.routes, Version: version, TrackTemp: trackTemp})
	case outs.parquetFile != "":
		if _, err = temp(&p.parquet, outs.parquetFile, ".rewind-parquet-*"); err == nil {
			pq, err = parquet.New(p.parquet, parquet.Options{Routes: outs.routes, Version: version, TrackTemp: trackTemp})
		}
	}
	if err != nil {
		return err
	}
	if pq != nil {
		sinks = append(sinks, pq)
	}
	sum, err := analyze.Replay(ctx, in.Source, in.Info, ropts, sinks...)
	if err != nil {
		if pq != nil {
			pq.Abort()
		}
		return fmt.Errorf("analyzing %s: %w", p.path, err)
	}
	p.sum = sum
	return nil
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// removeParts removes the parts' temporary files.
func removeParts(parts []*manyPart) {
	for _, p := range parts {
		for _, f := range []string{p.exchanges, p.pcapng, p.parquet} {
			if f != "" {
				os.Remove(f)
				trackTemp(f, false)
			}
		}
	}
}

// joinParts appends each part's temporary file (picked by which), in the
// parts' order, to w, removing the files.
func joinParts(w io.Writer, parts []*manyPart, which func(*manyPart) *string) error {
	var errs []error
	for _, p := range parts {
		name := which(p)
		if *name == "" {
			continue
		}
		f, err := os.Open(*name)
		if err == nil {
			_, err = io.Copy(w, f)
			f.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
		os.Remove(*name)
		trackTemp(*name, false)
		*name = ""
	}
	return errors.Join(errs...)
}

// tempDirFor is where the temporary files of an output go: beside it, so
// that they are on the same file system, or the system's for standard
// output.
func tempDirFor(out string) string {
	if out == "" || out == "-" {
		return os.TempDir()
	}
	return filepath.Dir(out)
}
