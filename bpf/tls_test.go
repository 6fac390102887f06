//go:build linux

package bpf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/bpf/tlsprobe"
)

// TestTLSLinks records one curl → nginx HTTPS request with the TLS probes
// attached by uprobe_multi links (where the kernel has them) and with one
// link per probe, and checks that both see the same plaintext on both
// sides.
func TestTLSLinks(t *testing.T) {
	bpftest.RequireRoot(t)
	if err := TLSProbesSupported(); err != nil {
		t.Skip(err)
	}
	curl := lookTool(t, "curl")
	port, nginxPID := startNginxTLS(t, lookTool(t, "nginx"))
	multi := features.HaveBPFLinkUprobeMulti() == nil
	if !multi {
		t.Log("no uprobe_multi links on this kernel: both runs use one link per probe")
	}

	got := map[bool]string{}
	for _, noMulti := range []bool{false, true} {
		tr, err := Load(Options{TLS: true, Comms: []string{"curl", "nginx"}, Ports: []uint16{uint16(port)}, NoUprobeMulti: noMulti})
		if err != nil {
			t.Fatal(err)
		}
		kind := "" // "uprobe:FILE:…", "uretprobe:FILE:…"
		if multi && !noMulti {
			kind = ".multi"
		}
		var tlsProbes int
		for _, p := range tr.Probes() {
			if !strings.HasPrefix(p, "uprobe") && !strings.HasPrefix(p, "uretprobe") {
				continue
			}
			tlsProbes++
			if !strings.HasPrefix(p, "uprobe"+kind+":") && !strings.HasPrefix(p, "uretprobe"+kind+":") {
				t.Errorf("NoUprobeMulti=%v: probe %s, want uprobe%s:…", noMulti, p, kind)
			}
		}
		if tlsProbes == 0 {
			tr.Close()
			t.Fatalf("NoUprobeMulti=%v: no TLS probes attached: %v", noMulti, tr.Probes())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, curl, "-sSk", "--http1.1", fmt.Sprintf("https://127.0.0.1:%d/page.txt", port)).CombinedOutput()
		cancel()
		if err != nil {
			tr.Close()
			t.Fatalf("curl: %v\n%s", err, out)
		}
		got[noMulti] = tlsPlaintext(t, tr, uint32(nginxPID))
		tr.Close()
		t.Logf("NoUprobeMulti=%v: %d TLS probes", noMulti, tlsProbes)
	}
	for _, noMulti := range []bool{false, true} {
		for _, want := range []string{
			"client >: GET /page.txt HTTP/1.1",
			"server <: GET /page.txt HTTP/1.1",
			"client <: HTTP/1.1 200 OK",
			"server >: HTTP/1.1 200 OK",
			"client <: " + pageText,
			"server >: " + pageText,
		} {
			if !strings.Contains(got[noMulti], want+"\n") {
				t.Errorf("NoUprobeMulti=%v: no %q in the plaintext", noMulti, want)
			}
		}
	}
	if got[false] != got[true] {
		t.Errorf("the plaintext differs:\nmulti links:\n%s\none link per probe:\n%s", got[false], got[true])
	}
}

// TestStubMultiPrograms checks that the loader's fallback replaces exactly
// the uprobe_multi programs, the ones a kernel before 6.6 refuses.
func TestStubMultiPrograms(t *testing.T) {
	spec, err := loadRewind()
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for name, ps := range spec.Programs {
		before[name] = len(ps.Instructions)
	}
	stubMultiPrograms(spec)
	var stubbed []string
	for name, ps := range spec.Programs {
		if len(ps.Instructions) != before[name] {
			stubbed = append(stubbed, name)
			if ps.AttachType != ebpf.AttachNone || len(ps.Instructions) != 2 {
				t.Errorf("%s: stub with attach type %v and %d instructions", name, ps.AttachType, len(ps.Instructions))
			}
		}
	}
	slices.Sort(stubbed)
	want := []string{"go_tls_enter_multi", "go_tls_ret_multi", "tls_enter_multi", "tls_exit_multi"}
	if !slices.Equal(stubbed, want) {
		t.Errorf("stubbed %v, want %v", stubbed, want)
	}
}

const pageText = "a page served over TLS"

// tlsPlaintext reads tr's records until the ring has been empty for a
// while and renders the TLS plaintext, one line per line of payload: the
// server's (process server) "server DIR: LINE" (> sent, < received), then
// the client's, the Date header left out.
func tlsPlaintext(t *testing.T, tr *Tracer, server uint32) string {
	t.Helper()
	var srv, cli strings.Builder
	var rec Record
	idle := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(idle) {
		tr.SetDeadline(time.Now().Add(50 * time.Millisecond))
		err := tr.Read(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idle = time.Now().Add(300 * time.Millisecond)
		if rec.Type != EventData || rec.Data.Source < uint8(tlsprobe.OpenSSL) {
			continue
		}
		b, side := &cli, "client"
		if rec.Data.Pid == server {
			b, side = &srv, "server"
		}
		dir := ">"
		if rec.Data.Dir == DirIngress {
			dir = "<"
		}
		for _, line := range strings.Split(strings.TrimRight(string(rec.Payload), "\r\n"), "\n") {
			line = strings.TrimRight(line, "\r")
			if !strings.HasPrefix(line, "Date: ") {
				fmt.Fprintf(b, "%s %s: %s\n", side, dir, line)
			}
		}
	}
	return srv.String() + cli.String()
}

// lookTool finds a program the test needs, or skips.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		bpftest.Unavailable(t, fmt.Sprintf("this test needs %s", name))
	}
	return p
}

// startNginxTLS starts nginx (one process, so it reads what root can)
// serving page.txt over HTTPS on a free port of 127.0.0.1, and returns the
// port and nginx's pid.
func startNginxTLS(t *testing.T, bin string) (port, pid int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "page.txt"), []byte(pageText+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeCert(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s; scgi_temp_path %[1]s; default_type text/plain;
  server { listen 127.0.0.1:%[2]d ssl; root %[1]s;
    ssl_certificate %[1]s/cert.pem; ssl_certificate_key %[1]s/key.pem; }
}
`, dir, port)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port, cmd.Process.Pid
		}
		if i == 250 {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir (cert.pem, key.pem).
func writeCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kpem := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), kpem, 0o600); err != nil {
		t.Fatal(err)
	}
}
