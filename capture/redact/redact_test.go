package redact

import (
	"regexp"
	"strings"
	"testing"
)

func TestMaskerEverySplit(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cr3t\r\ncookie: a=1; b=2\r\nX-Cookie-Note: keep\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nSet-Cookie: sid=xyz; HttpOnly\r\nContent-Length: 2\r\n\r\nok"
	want := "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: *************\r\ncookie: ********\r\nX-Cookie-Note: keep\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nSet-Cookie: *****************\r\nContent-Length: 2\r\n\r\nok"
	for split := 0; split <= len(in); split++ {
		b := []byte(in)
		m := NewMasker(Default())
		n := m.Mask(b[:split]) + m.Mask(b[split:])
		if string(b) != want {
			t.Fatalf("split %d:\n%q\nwant\n%q", split, b, want)
		}
		if n != 13+8+17 {
			t.Fatalf("split %d: masked %d bytes", split, n)
		}
	}
}

func TestPolicyValues(t *testing.T) {
	p := NewPolicy(append(DefaultHeaders, "X-Api-Key"), []*regexp.Regexp{regexp.MustCompile(`password=[^&\s]*`)})
	if v, ok := p.Value("x-api-key", "abc"); v != Replacement || !ok {
		t.Errorf("x-api-key: %q", v)
	}
	if v, ok := p.Value("Accept", "text/html"); v != "text/html" || ok {
		t.Errorf("accept: %q", v)
	}
	body, ok := p.Body([]byte("user=a&password=hunter2&x=1"))
	if string(body) != "user=a&"+Replacement+"&x=1" || !ok {
		t.Errorf("body %q", body)
	}
	if name, ok := p.Find([]byte("GET / HTTP/1.1\r\nAuthorization: Basic Zm9v\r\n\r\n")); !ok || name != "Authorization" {
		t.Errorf("find: %q %v", name, ok)
	}
	if _, ok := p.Find([]byte("GET / HTTP/1.1\r\nAuthorization: ********\r\n\r\n")); ok {
		t.Error("find reported a masked value")
	}
}

func TestSensitiveNames(t *testing.T) {
	p := Default()
	for name, want := range map[string]bool{
		"Authorization": true, "AUTHORIZATION": true, "authorization": true, "Cookie": true,
		"set-COOKIE": true, "Proxy-Authorization": true,
		// same lengths as sensitive names
		"Accept": false, "Server": false, "Connection": false, "User-Agent": false,
		"Last-Modified": false, "Cache-Control": false, "Cookiex": false, "": false,
	} {
		if got := p.Sensitive(name); got != want {
			t.Errorf("Sensitive(%q) = %v", name, got)
		}
		if p.Untouched(len(name)) && want {
			t.Errorf("Untouched(%d) for sensitive %q", len(name), name)
		}
	}
	if !p.Untouched(len("Host")) || p.Untouched(len("Cookie")) {
		t.Error("Untouched by length is wrong")
	}
	withPattern := NewPolicy(nil, []*regexp.Regexp{regexp.MustCompile(`x`)})
	if withPattern.Untouched(4) {
		t.Error("a policy with patterns touches every value")
	}
	long := NewPolicy([]string{strings.Repeat("X", 70)}, nil)
	if !long.Sensitive(strings.Repeat("x", 70)) || long.Sensitive(strings.Repeat("x", 71)) {
		t.Error("names of 64 bytes or more")
	}
}

func FuzzMasker(f *testing.F) {
	f.Add([]byte("Cookie: a\r\nX: y\r\n"), 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		orig := string(b)
		m := NewMasker(Default())
		if split < 0 || split > len(b) {
			split = len(b) / 2
		}
		m.Mask(b[:split])
		m.Mask(b[split:])
		if len(b) != len(orig) {
			t.Fatal("length changed")
		}
		for i := range b {
			if b[i] != orig[i] && (b[i] != '*' || orig[i] == '\n' || orig[i] == '\r') {
				t.Fatalf("byte %d changed from %q to %q", i, orig[i], b[i])
			}
		}
		_ = strings.ToLower(orig)
	})
}
