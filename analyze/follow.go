package analyze

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rewind-tools/rewind/capture"
)

// ErrWaiting is returned by a following source's Next when no event has
// come for a moment: the file is being written and has no more yet.
// [Replay] then releases what it holds (the reorder window, a partial batch
// of exchanges) and flushes the sinks that implement [FlushSink], so that
// exchanges show as they complete, and asks again.
var ErrWaiting = errors.New("waiting for the capture to grow")

// FlushSink is implemented by sinks that buffer output and can write it out
// when the replay is waiting for a capture being recorded.
type FlushSink interface {
	Flush() error
}

// Follow opens a rewind capture that may still be being recorded: at the
// end of the file it waits for more instead of stopping, until the
// recording's trailer is read (the recorder closed the file) or ctx is
// done. Its Next returns [ErrWaiting] while nothing new comes. Packet
// captures cannot be followed (pipe tcpdump -U -w - into analyze - instead).
func Follow(ctx context.Context, path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	tail := &tailReader{f: f, ctx: ctx, poll: 100 * time.Millisecond, quit: make(chan struct{})}
	br := bufio.NewReaderSize(tail, 64<<10)
	head, err := br.Peek(len(capture.Magic))
	if err != nil || !bytes.Equal(head, []byte(capture.Magic)) {
		f.Close()
		if err == nil {
			err = errors.New("not a rewind capture: --follow reads captures being recorded by rewind record (for tcpdump, pipe tcpdump -U -w - into rewind analyze -)")
		}
		return nil, err
	}
	rd, err := capture.NewReader(br)
	if err != nil {
		f.Close()
		return nil, err
	}
	src := &followSource{rd: rd, events: make(chan followed, 4096), idle: 200 * time.Millisecond,
		quit: make(chan struct{}), exited: make(chan struct{})}
	go src.read()
	return &Input{
		Source: src,
		Info:   &CaptureInfo{Path: filepath.ToSlash(path), Format: "rewind", Header: rd.Header()},
		close: func() error {
			close(src.quit)
			tail.stop()
			<-src.exited
			rd.Close()
			return f.Close()
		},
	}, nil
}

// tailReader reads a file that is still growing: at its end it polls for
// more until ctx is done or it is stopped, and only then reports io.EOF.
type tailReader struct {
	f        *os.File
	ctx      context.Context
	poll     time.Duration
	quit     chan struct{}
	stopOnce sync.Once
}

func (t *tailReader) stop() { t.stopOnce.Do(func() { close(t.quit) }) }

func (t *tailReader) Read(p []byte) (int, error) {
	for {
		n, err := t.f.Read(p)
		if n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return n, err
		}
		select {
		case <-t.ctx.Done():
			return 0, io.EOF
		case <-t.quit:
			return 0, io.EOF
		case <-time.After(t.poll):
		}
	}
}

// followed is one event read ahead, with whether it belongs to the
// snapshot section.
type followed struct {
	ev       capture.Event
	snapshot bool
}

// followSource reads the capture on a goroutine of its own, so that Next
// can say it is waiting instead of blocking inside a read.
type followSource struct {
	rd       *capture.Reader
	events   chan followed
	idle     time.Duration
	quit     chan struct{}
	exited   chan struct{}
	err      error // read after events is closed
	snapshot bool  // of the last event returned
	timer    *time.Timer
}

func (s *followSource) read() {
	defer close(s.exited)
	defer close(s.events)
	for {
		ev, err := s.rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			return
		}
		select {
		case s.events <- followed{capture.Clone(ev), s.rd.InSnapshot()}:
		case <-s.quit:
			return
		}
	}
}

// Next returns the next event, [ErrWaiting] when none has come for a
// moment, or io.EOF once the recording is closed (or following stopped).
func (s *followSource) Next() (capture.Event, error) {
	var f followed
	var ok bool
	select {
	case f, ok = <-s.events:
	default:
		if s.timer == nil {
			s.timer = time.NewTimer(s.idle)
		} else {
			s.timer.Reset(s.idle)
		}
		select {
		case f, ok = <-s.events:
			s.timer.Stop()
		case <-s.timer.C:
			return nil, ErrWaiting
		}
	}
	if !ok {
		if s.err != nil {
			return nil, fmt.Errorf("following the capture: %w", s.err)
		}
		return nil, io.EOF
	}
	s.snapshot = f.snapshot
	return f.ev, nil
}

// InSnapshot reports whether the last event returned is a snapshot entry.
func (s *followSource) InSnapshot() bool { return s.snapshot }

// Stats returns what the reader recovered; complete once Next has
// returned io.EOF.
//
// A followed file ends inside a chunk only when following stopped (the
// tail reader waits for the rest otherwise): that chunk is the one the
// recorder was writing, part of a recording in progress, not damage. It
// is not counted as skipped; chunks missing before it still are.
func (s *followSource) Stats() *capture.Stats {
	st := s.rd.Stats()
	if st.CleanClose || !st.Truncated || len(st.Damage) == 0 {
		return st
	}
	last := st.Damage[len(st.Damage)-1]
	if !last.Cut {
		// The region began with real damage before the cut.
		return st
	}
	c := *st
	c.Truncated = false
	c.ChunksSkipped--
	c.BytesSkipped -= last.Length
	c.Damage = slices.Clone(st.Damage[:len(st.Damage)-1])
	if last.Chunks > 1 {
		c.Damage = append(c.Damage, capture.Damage{Offset: last.Offset, Chunks: last.Chunks - 1,
			Reason: "chunks missing from the sequence"})
	}
	return &c
}
