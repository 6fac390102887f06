package analyze

import (
	"cmp"
	"slices"

	"github.com/rewind-tools/rewind/capture"
)

// Tying TLS sessions to sockets.
//
// Libraries that encrypt into memory buffers (Node.js puts OpenSSL between
// two memory BIOs; libuv moves the records later) make no syscall inside
// SSL_read or SSL_write, so the recorder cannot name the socket of their
// plaintext (fd -1). The thread that holds the session does move its
// records, though, right next to the library call:
//
//   - ingress: the socket read that brought the records returns just
//     before the SSL_read that decrypts them, on the same thread;
//   - egress: the socket write that sends the records follows the
//     SSL_write that made them, on the same thread, and is at least as long
//     as the plaintext plus a record header.
//
// The tracker watches for those pairs (TLS record headers in the socket's
// bytes, within tieWindow) and, on the first one, makes the session's
// plaintext the TLS layer of that socket's connection: addresses, role and
// the socket's lifetime come from the syscalls, as for a library whose fd is
// known. A session with no such pair stays a connection of its own, keyed by
// its library object, without addresses.
//
// A session's egress plaintext waits (at most tieWindow of replay time)
// for the write that follows it, so that it lands in the right connection
// from its first byte. The pairing uses only recorded events, in replay
// order, so it is deterministic.

// tieWindow bounds the time between a library call and the socket call
// that moved its records.
const tieWindow = 10_000_000 // 10 ms

// sessKey names a TLS session of a process: its library connection object.
type sessKey struct {
	pid uint32
	obj uint64
}

// pidTID names a thread.
type pidTID struct{ pid, tid uint32 }

// tlsTie is the tracker's state for tying sessions to sockets.
type tlsTie struct {
	// tied maps a session to the connection of its socket.
	tied map[sessKey]connKey
	// lastIn is, per thread, the latest socket read that carried TLS
	// records.
	lastIn map[pidTID]sockRead
	// held keeps, per thread, egress plaintext of untied sessions until
	// the socket write that follows it; heldSince is the oldest time held.
	held      map[pidTID][]*capture.Data
	heldSince uint64
}

type sockRead struct {
	k  connKey
	ts uint64
}

// looksTLS reports whether p starts with a TLS record header (content type
// change_cipher_spec, alert, handshake or application_data; major version 3).
func looksTLS(p []byte) bool {
	return len(p) >= 5 && p[0] >= 20 && p[0] <= 23 && p[1] == 3
}

// untiedTLS reports whether e is TLS plaintext whose socket is unknown.
func untiedTLS(e *capture.Data) bool { return e.FD < 0 && e.Source.IsTLS() }

// tieable reports whether the connection under k can take a session: it
// is a socket connection that has no TLS plaintext of its own.
func (t *tracker) tieable(k connKey) (*connState, bool) {
	cs, ok := t.conns[k]
	if !ok || cs.layers[layerTLS] != nil || cs.sess != (sessKey{}) {
		return nil, false
	}
	return cs, true
}

// tie makes s the TLS layer of the connection under k.
func (t *tracker) tie(s sessKey, k connKey, cs *connState) {
	if t.ties.tied == nil {
		t.ties.tied = map[sessKey]connKey{}
	}
	t.ties.tied[s] = k
	cs.sess = s
}

// untie forgets the session of a connection that ended.
func (t *tracker) untie(cs *connState) {
	if cs.sess != (sessKey{}) {
		delete(t.ties.tied, cs.sess)
	}
}

// tlsData routes TLS plaintext whose socket is unknown. It returns false
// when the event is held for now.
func (t *tracker) tlsData(e *capture.Data) bool {
	s := sessKey{e.PID, e.TLSConn}
	if _, ok := t.ties.tied[s]; ok {
		return true
	}
	th := pidTID{e.PID, e.TID}
	if e.Dir == capture.Ingress {
		if r, ok := t.ties.lastIn[th]; ok && e.Timestamp-r.ts <= tieWindow {
			delete(t.ties.lastIn, th)
			if cs, ok := t.tieable(r.k); ok {
				t.tie(s, r.k, cs)
			}
		}
		if len(t.ties.held[th]) != 0 {
			t.release(th) // what the thread wrote before this comes first
		}
		return true
	}
	if t.ties.held == nil {
		t.ties.held = map[pidTID][]*capture.Data{}
	}
	cp := *e
	cp.Payload = append([]byte(nil), e.Payload...)
	if len(t.ties.held) == 0 {
		t.ties.heldSince = e.Timestamp
	}
	t.ties.held[th] = append(t.ties.held[th], &cp)
	return false
}

// sockData watches socket calls for the records of untied sessions. k is
// the connection of e.
func (t *tracker) sockData(e *capture.Data, k connKey) {
	th := pidTID{e.PID, e.TID}
	if e.Dir == capture.Ingress {
		if e.Offset == 0 && looksTLS(e.Payload) {
			if t.ties.lastIn == nil {
				t.ties.lastIn = map[pidTID]sockRead{}
			}
			t.ties.lastIn[th] = sockRead{k, e.Timestamp}
		}
		return
	}
	if len(t.ties.held) == 0 {
		return
	}
	h := t.ties.held[th]
	if len(h) == 0 {
		return
	}
	if e.Offset == 0 && looksTLS(e.Payload) && e.Start-h[0].Timestamp <= tieWindow && e.Len >= h[0].Len+5 {
		if cs, ok := t.tieable(k); ok {
			t.tie(sessKey{h[0].PID, h[0].TLSConn}, k, cs)
		}
	}
	t.release(th)
}

// release replays the plaintext held for a thread.
func (t *tracker) release(th pidTID) {
	h := t.ties.held[th]
	delete(t.ties.held, th)
	for _, e := range h {
		t.route(e)
	}
}

// releaseOld replays held plaintext older than tieWindow before an event
// at ts, and all of it when ts is 0 (the end).
func (t *tracker) releaseOld(ts uint64) {
	if len(t.ties.held) == 0 || (ts != 0 && ts-t.ties.heldSince <= tieWindow) {
		return
	}
	var ths []pidTID
	for th := range t.ties.held {
		ths = append(ths, th)
	}
	sortThreads(ths)
	oldest := uint64(0)
	for _, th := range ths {
		h := t.ties.held[th]
		if ts == 0 || ts-h[0].Timestamp > tieWindow {
			t.release(th)
		} else if oldest == 0 || h[0].Timestamp < oldest {
			oldest = h[0].Timestamp
		}
	}
	t.ties.heldSince = oldest
}

func sortThreads(ths []pidTID) {
	slices.SortFunc(ths, func(a, b pidTID) int {
		if c := cmp.Compare(a.pid, b.pid); c != 0 {
			return c
		}
		return cmp.Compare(a.tid, b.tid)
	})
}
