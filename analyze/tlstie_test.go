package analyze_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// record is n bytes that start like a TLS application_data record.
func record(n int) string { return "\x17\x03\x03" + strings.Repeat("\x00", n-3) }

// TestTLSSessionTiedToSocket replays a process whose TLS library works
// between memory buffers (fd -1 for every plaintext call), as Node.js does:
// a server session and a client session are tied to their sockets by the
// socket calls next to the library calls; a session with no such call stays
// a connection of its own; two sessions are never merged.
func TestTLSSessionTiedToSocket(t *testing.T) {
	b := capturetest.New()
	p := b.Process(7, "node")
	srv := p.Accept(10, "127.0.0.1:8443", "127.0.0.1:50000")
	cli := p.Connect(11, "127.0.0.1:50001", "127.0.0.1:9443")
	a := p.Session(0xa, capture.SourceOpenSSL)
	bb := p.Session(0xb, capture.SourceOpenSSL)
	c := p.Session(0xc, capture.SourceOpenSSL)
	cli2 := p.Connect(12, "127.0.0.1:50002", "127.0.0.1:9443")
	d := p.Session(0xd, capture.SourceOpenSSL)

	// Server: records read, then decrypted; response encrypted, then sent.
	req := "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	srv.Read(record(len(req) + 22))
	a.Read(req)
	a.Write(resp)
	srv.Write(record(len(resp) + 22))
	// Client: the other way round.
	req = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	bb.Write(req)
	cli.Write(record(len(req) + 22))
	cli.Read(record(len(resp) + 22))
	bb.Read(resp)
	// A client whose records went out with no write seen after its
	// SSL_write: the answer's read ties it, and the request stays first.
	req = "GET /d HTTP/1.1\r\nHost: h\r\n\r\n"
	d.Write(req)
	cli2.Read(record(len(resp) + 22))
	d.Read(resp)
	// A session with no socket call near it: no addresses, but its own
	// connection.
	b.Advance(50 * time.Millisecond)
	c.Write("GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
	b.Advance(50 * time.Millisecond)
	c.Read(resp)

	got := replay(t, b, analyze.Options{})
	lines := map[string]*analyze.Exchange{}
	for _, e := range got.exs {
		lines[e.Request.Path] = e
	}
	if len(got.exs) != 4 || len(lines) != 4 {
		for _, e := range got.exs {
			t.Log(line(e))
		}
		t.Fatalf("%d exchanges, want /a, /b, /c and /d", len(got.exs))
	}
	for path, want := range map[string]struct {
		role          capture.Role
		local, remote string
		fd            int32
	}{
		"/a": {capture.RoleServer, "127.0.0.1:8443", "127.0.0.1:50000", 10},
		"/b": {capture.RoleClient, "127.0.0.1:50001", "127.0.0.1:9443", 11},
		"/c": {capture.RoleClient, "invalid AddrPort", "invalid AddrPort", -1},
		"/d": {capture.RoleClient, "127.0.0.1:50002", "127.0.0.1:9443", 12},
	} {
		e := lines[path]
		if e.Conn.Role != want.role || e.Conn.Local.String() != want.local || e.Conn.Remote.String() != want.remote ||
			e.Conn.FD != want.fd || e.Conn.TLS != "openssl" || e.Response.Status != 200 || e.Flags != 0 {
			t.Errorf("%s: %s fd %d %v → %v tls %s, want %v fd %d %s → %s", path, line(e), e.Conn.FD,
				e.Conn.Local, e.Conn.Remote, e.Conn.TLS, want.role, want.fd, want.local, want.remote)
		}
	}
	if lines["/a"].Conn.ID == lines["/b"].Conn.ID || lines["/b"].Conn.ID == lines["/c"].Conn.ID {
		t.Errorf("sessions merged: /a %v, /b %v, /c %v", lines["/a"].Conn.ID, lines["/b"].Conn.ID, lines["/c"].Conn.ID)
	}
	if got.sum.HTTPConns != 4 || got.sum.OtherConns != 0 {
		t.Errorf("connections: %d HTTP, %d other; want 4 and 0 (the sockets' records belong to their sessions)",
			got.sum.HTTPConns, got.sum.OtherConns)
	}
	// The one exchange without addresses is said so.
	warned := false
	for _, w := range got.sum.Warnings {
		warned = warned || strings.HasPrefix(w, "1 exchange of TLS sessions whose socket could not be found")
	}
	if got.sum.SessionExchanges != 1 || !warned {
		t.Errorf("SessionExchanges %d, warnings %q; want 1 and a warning", got.sum.SessionExchanges, got.sum.Warnings)
	}
}
