package jsonenc

import (
	"encoding/json"
	"testing"
)

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "nl\n\r\t", "\x00\x1f\x7f", "é漢字", "bad\xff\xfeutf8", "\u2028\u2029", "<a&b>"} {
		got := String(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip %q, want %q", s, back, wantBack)
		}
	}
}

func TestMillis(t *testing.T) {
	for ns, want := range map[int64]string{0: "0", 1_500_000: "1.5", 12_345_678: "12.346", 999: "0.001", 2_000_000_000: "2000", -1_000_000: "-1"} {
		if got := string(Millis(nil, ns)); got != want {
			t.Errorf("Millis(%d) = %s, want %s", ns, got, want)
		}
	}
}

func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = String(buf[:0], "/api/v1/users/12345/orders?limit=10&offset=20")
	}
}
