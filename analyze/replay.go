package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/redact"
)

// Options tune a replay. The zero value is ready to use.
type Options struct {
	// MaxBodyCapture is how many bytes of each body are kept on exchanges
	// (default 64 KiB; negative keeps none). Lengths are always exact.
	MaxBodyCapture int
	// ReorderWindow is the reorder window in ns (default
	// DefaultReorderWindow).
	ReorderWindow uint64
	// Filter, when set, keeps only exchanges it returns true for. It sees
	// exchanges before sinks do.
	Filter func(*Exchange) bool
	// Redact, when set, removes credentials from exchanges before sinks see
	// them (header values, and pattern matches in targets and bodies).
	Redact *redact.Policy
	// DiscardBodies says no sink needs body bytes: HTTP/1.x and HTTP/2
	// bodies are measured (BodyBytes stays exact) but not kept, so Body is nil. Set it
	// when no output shows bodies (the CLI does unless --har is given): it
	// saves a copy of every body.
	DiscardBodies bool
}

// EventSource yields capture events in file order, like [capture.Reader].
type EventSource interface {
	Next() (capture.Event, error)
}

// orderedSource is implemented by sources whose events already come in the
// order to replay them (a packet capture: file order, which its TCP
// reassembly followed). Their events skip the reorder window: each is
// handled as it is read, with no copy.
type orderedSource interface {
	InOrder() bool
}

// statsSource is implemented by sources that know what they recovered.
type statsSource interface {
	Stats() *capture.Stats
}

// Replay runs the pipeline over src and feeds every sink in one pass. info is
// passed to the sinks' Begin. It returns the summary also given to End.
// Damage in the capture is not an error: it is counted and reported in the
// summary's warnings.
func Replay(ctx context.Context, src EventSource, info *CaptureInfo, opts Options, sinks ...Sink) (*Summary, error) {
	if opts.MaxBodyCapture == 0 {
		opts.MaxBodyCapture = 64 << 10
	}
	if opts.MaxBodyCapture < 0 {
		opts.MaxBodyCapture = 0
	}
	if opts.ReorderWindow == 0 {
		opts.ReorderWindow = DefaultReorderWindow
	}
	for _, s := range sinks {
		if err := s.Begin(info); err != nil {
			return nil, fmt.Errorf("starting output: %w", err)
		}
	}
	t := newTracker(opts, sinks)
	t.expectAcks = info != nil && info.Header.Options.Packets
	if info != nil {
		t.hostNS = info.Header.NetNS
	}
	t.delivery = newDelivery(t)
	defer t.closeDelivery()
	ro := newReorderer(opts.ReorderWindow)
	release := t.handle
	os, ordered := src.(orderedSource)
	ordered = ordered && os.InOrder()
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ev, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrWaiting) {
			// A capture being recorded has no more yet: show what is
			// complete.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ro.flush(release)
			if err := t.flushOutputs(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if t.err != nil {
			return nil, t.err
		}
		if ordered || ev.Time() == 0 || isSnapshot(src) {
			// Snapshot entries describe the start state: apply them at once.
			t.handle(ev)
			continue
		}
		ro.push(ev, release)
	}
	ro.flush(release)
	t.finish()
	if err := t.closeDelivery(); err != nil && t.err == nil {
		t.err = err
	}
	if t.err != nil {
		return nil, t.err
	}
	sum := t.summary()
	if ss, ok := src.(statsSource); ok {
		sum.Stats = *ss.Stats()
		sum.Lost = sum.Stats.Lost
		sum.Salvaged = sum.Stats.Salvaged()
	}
	sum.Warnings = warnings(sum, ro.late, info != nil && info.Format != "" && info.Format != "rewind")
	for _, s := range sinks {
		if err := s.End(sum); err != nil {
			return nil, fmt.Errorf("finishing output: %w", err)
		}
	}
	return sum, nil
}

type snapshotSource interface{ InSnapshot() bool }

func isSnapshot(src EventSource) bool {
	s, ok := src.(snapshotSource)
	return ok && s.InSnapshot()
}

// warnings lists, in a fixed order, what a reader of any report must know.
// packets says the input is a pcap or pcapng, whose damage is told in
// records rather than chunks.
func warnings(s *Summary, late uint64, packets bool) []string {
	var w []string
	st := &s.Stats
	switch {
	case packets:
		w = packetDamage(w, st)
	case !st.CleanClose && st.ChunksRecovered > 0:
		w = append(w, "the capture was not closed cleanly (the recording was cut off, or is still going): exchanges at its end may be incomplete")
	}
	if !packets && (st.ChunksSkipped > 0 || st.BytesSkipped > 0) {
		w = append(w, fmt.Sprintf("the capture is damaged: %s (%s) %s skipped; exchanges in them are missing",
			plural(st.ChunksSkipped, "chunk"), plural(st.BytesSkipped, "byte"), were(st.ChunksSkipped)))
	}
	if !packets && st.StreamError != "" {
		w = append(w, fmt.Sprintf("the input is damaged: %s; the events before it were read, nothing after it", st.StreamError))
	}
	if st.Lost > 0 {
		w = append(w, fmt.Sprintf("the recorder lost %s (ring buffer full): some exchanges are missing or incomplete", plural(st.Lost, "event")))
	}
	if st.UnknownKinds > 0 {
		w = append(w, fmt.Sprintf("%s of kinds this rewind does not know %s skipped: upgrade rewind", plural(st.UnknownKinds, "event"), were(st.UnknownKinds)))
	}
	if st.BadRecords > 0 {
		w = append(w, fmt.Sprintf("%s %s skipped", plural(st.BadRecords, "undecodable record"), were(st.BadRecords)))
	}
	if late > 0 {
		w = append(w, fmt.Sprintf("%s arrived later than the reorder window and %s replayed out of order", plural(late, "event"), were(late)))
	}
	if n := s.ByFlag["desynced"]; n > 0 {
		w = append(w, fmt.Sprintf("%s %s parsed after the parser lost its place in the stream (desynced)", plural(n, "exchange"), were(n)))
	}
	if n := s.SessionExchanges; n > 0 {
		w = append(w, fmt.Sprintf("%s of TLS sessions whose socket could not be found (a library that encrypts into memory, such as Node.js's, with no socket call beside it) %s no addresses", plural(n, "exchange"), have(n)))
	}
	for r := range noNetReasons {
		if n := s.NoNetwork[r.String()]; n > 0 {
			w = append(w, fmt.Sprintf("%s without network time: %s", plural(n, "exchange"), r))
		}
	}
	return w
}

// packetDamage adds the warnings for a damaged pcap or pcapng: the regions
// passed over (the first named), then the damage that stopped the reading,
// if any (it is the last region listed).
func packetDamage(w []string, st *capture.Stats) []string {
	regions, bytes, list := st.DamageRegions, st.BytesSkipped, st.Damage
	var stop *capture.Damage
	if st.Truncated && len(list) > 0 {
		stop = &list[len(list)-1]
		list = list[:len(list)-1]
		regions--
		bytes -= stop.Length
	}
	if regions > 0 && len(list) > 0 {
		places := "1 place"
		if regions > 1 {
			places = fmt.Sprintf("%d places", regions)
		}
		w = append(w, fmt.Sprintf("the input is damaged in %s (%d bytes passed over; first at byte %d: %s); the packets there are missing",
			places, bytes, list[0].Offset, list[0].Reason))
	}
	if st.Truncated {
		reason := "the file ends inside a record"
		if stop != nil && stop.Reason != "" {
			reason = stop.Reason
		}
		w = append(w, fmt.Sprintf("the input is damaged: %s; the packets before it were read, nothing after it", reason))
	}
	return w
}

func (t *tracker) summary() *Summary {
	s := &Summary{
		Exchanges:  t.exchanges,
		ByFlag:     map[string]int{},
		Conns:      t.connsSeen,
		HTTPConns:  t.httpConns,
		OtherConns: t.otherConns,
		First:      t.first,
		Last:       t.last,

		SessionExchanges: t.sessionExchanges,
	}
	for name, n := range t.byFlag {
		s.ByFlag[name] = n
	}
	for r, n := range t.noNetwork {
		if n > 0 {
			if s.NoNetwork == nil {
				s.NoNetwork = map[string]int{}
			}
			s.NoNetwork[noNetwork(r).String()] = n
		}
	}
	return s
}

// sortedKeys returns m's keys in order, for deterministic iteration.
func sortedKeys[V any](m map[connKey]V) []connKey {
	keys := make([]connKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

// plural counts n things: "1 chunk", "3 chunks".
func plural[N int | int64 | uint64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprint(n) + " " + noun + "s"
}

// were is the verb "to be" in the past for n things.
func were[N int | uint64](n N) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// have is "to have" for n things.
func have(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func connID(n int) string { return "c" + strconv.Itoa(n) }
