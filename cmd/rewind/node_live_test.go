//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// nodeBoth is one Node.js process that is both an HTTPS server (node:https
// and node:http2 over TLS) and their client: 10 HTTP/1.1 requests (GETs and
// POSTs with bodies) over one keep-alive connection, then 10 HTTP/2 GETs
// over one session. Node's OpenSSL works between memory BIOs, so no syscall
// runs inside SSL_read or SSL_write.
const nodeBoth = `
const https = require('https'), http2 = require('http2'), fs = require('fs');
const cert = fs.readFileSync(process.argv[2]), key = fs.readFileSync(process.argv[3]);
const num = (url) => Number(new URL(url, 'https://x').searchParams.get('i'));
const h1 = https.createServer({cert, key}, (req, res) => {
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  req.on('end', () => { res.writeHead(200, {'content-type': 'text/plain'}); res.end('x'.repeat(100 + n)); });
});
const h2 = http2.createSecureServer({cert, key}, (req, res) => {
  res.writeHead(200, {'content-type': 'text/plain'});
  res.end('y'.repeat(200 + num(req.url)));
});
const listen = (s) => new Promise((ok) => s.listen(0, '127.0.0.1', () => ok(s.address().port)));
(async () => {
  const p1 = await listen(h1), p2 = await listen(h2);
  console.log('ready');
  await new Promise((ok) => process.stdin.once('data', ok));
  const agent = new https.Agent({keepAlive: true, maxSockets: 1, rejectUnauthorized: false});
  for (let i = 0; i < 10; i++) {
    const body = i % 2 ? 'b'.repeat(i * 1000) : '';
    await new Promise((ok, fail) => {
      const req = https.request({host: '127.0.0.1', port: p1, path: '/h1?i=' + i, agent,
        method: body ? 'POST' : 'GET', headers: body ? {'content-length': body.length} : {}}, (res) => {
        res.on('data', () => {}); res.on('end', ok);
      });
      req.on('error', fail);
      req.end(body);
    });
  }
  agent.destroy();
  const s = http2.connect('https://127.0.0.1:' + p2, {rejectUnauthorized: false});
  for (let i = 0; i < 10; i++) {
    await new Promise((ok, fail) => {
      const r = s.request({':path': '/h2?i=' + i});
      r.on('data', () => {}); r.on('end', ok); r.on('error', fail);
    });
  }
  await new Promise((ok) => s.close(ok));
  h1.close(); h2.close();
  console.log('done');
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestLiveNodeTLS records a Node.js process that is both HTTPS server and
// client (HTTP/1.1 and HTTP/2). Node's TLS plaintext has no socket (fd -1):
// each TLS session must still be its own connection, tied to its socket by
// the socket calls next to the library calls, so both sides' exchanges are
// exact, with addresses and roles.
func TestLiveNodeTLS(t *testing.T) {
	bpftest.RequireRoot(t)
	node := needTool(t, "node")
	cert, key := makeCert(t)
	script := filepath.Join(t.TempDir(), "both.js")
	if err := os.WriteFile(script, []byte(nodeBoth), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, cert, key)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	waitLine := func(want string) {
		t.Helper()
		got := make(chan bool, 1)
		go func() { got <- lines.Scan() && lines.Text() == want }()
		select {
		case ok := <-got:
			if !ok {
				t.Fatalf("node did not print %q", want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node did not print %q within 30s", want)
		}
	}
	waitLine("ready")
	rec := startRecording(t, record.Options{PIDs: []int{cmd.Process.Pid}, TLS: true})
	io.WriteString(stdin, "go\n")
	waitLine("done")
	rec.stop()
	exs, sum := replayFile(t, rec.path)

	var want []string
	for i := range 10 {
		if i%2 == 1 {
			want = append(want, fmt.Sprintf("POST /h1?i=%d 200 %d", i, 100+i*1000))
		} else {
			want = append(want, fmt.Sprintf("GET /h1?i=%d 200 100", i))
		}
		want = append(want, fmt.Sprintf("GET /h2?i=%d 200 %d", i, 200+i))
	}
	slices.Sort(want)
	bySide := map[capture.Role][]*analyze.Exchange{}
	for _, e := range exs {
		bySide[e.Conn.Role] = append(bySide[e.Conn.Role], e)
	}
	for _, side := range []capture.Role{capture.RoleServer, capture.RoleClient} {
		got := bySide[side]
		if lines := sortedLines(got); !slices.Equal(lines, want) {
			t.Errorf("%v exchanges:\n%s\nwant:\n%s\n(all %d exchanges, warnings %v)", side,
				strings.Join(lines, "\n"), strings.Join(want, "\n"), len(exs), sum.Warnings)
			continue
		}
		checkTLS(t, side.String(), got, "openssl")
		// One connection per protocol, each tied to its socket.
		conns := map[string]*analyze.Conn{}
		for _, e := range got {
			if e.Flags != 0 {
				t.Errorf("%v %s: flags %v", side, exchangeLine(e), e.Flags)
			}
			proto := strings.SplitN(e.Request.Path, "?", 2)[0]
			if c, ok := conns[proto]; ok && c.ID != e.Conn.ID {
				t.Errorf("%v %s: connection %v, the other %s exchanges are on %v", side, proto, e.Conn.ID, proto, c.ID)
			}
			conns[proto] = e.Conn
			if e.Conn.FD < 0 || !e.Conn.Local.IsValid() || !e.Conn.Remote.IsValid() {
				t.Errorf("%v %s: not tied to its socket: fd %d, %v → %v", side, exchangeLine(e), e.Conn.FD, e.Conn.Local, e.Conn.Remote)
			}
		}
		if len(conns) == 2 && conns["/h1"].ID == conns["/h2"].ID {
			t.Errorf("%v: HTTP/1 and HTTP/2 exchanges share connection %v", side, conns["/h1"].ID)
		}
	}
	// The server's and the client's ends of a connection are two
	// connections, with mirrored addresses.
	for _, s := range bySide[capture.RoleServer] {
		for _, c := range bySide[capture.RoleClient] {
			if s.Conn.ID == c.Conn.ID {
				t.Fatalf("server and client exchanges share connection %v", s.Conn.ID)
			}
			if s.Request.Path == c.Request.Path && (s.Conn.Local != c.Conn.Remote || s.Conn.Remote != c.Conn.Local) {
				t.Errorf("%s: server %v → %v, client %v → %v", exchangeLine(s), s.Conn.Local, s.Conn.Remote, c.Conn.Local, c.Conn.Remote)
			}
		}
	}
}
