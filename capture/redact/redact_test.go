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
