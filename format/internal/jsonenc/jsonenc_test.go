package jsonenc

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
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

// TestIntMatchesStrconv: Int and Uint write what strconv does, at every
// digit count and its edges, after existing bytes and with and without
// spare capacity.
func TestIntMatchesStrconv(t *testing.T) {
	var vs []uint64
	for p := uint64(1); ; p *= 10 {
		vs = append(vs, p-1, p, p+1, p*7/3)
		if p > math.MaxUint64/10 {
			break
		}
	}
	vs = append(vs, 0, 9, 10, 99, 100, math.MaxUint64, math.MaxUint64-1, math.MaxInt64, math.MaxInt64+1)
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vs = append(vs, r.Uint64()>>r.UintN(64))
	}
	for _, v := range vs {
		for _, prefix := range [][]byte{nil, []byte("x:"), append(make([]byte, 0, 64), 'y')} {
			pre := string(prefix)
			if got, want := string(Uint(prefix, v)), pre+strconv.FormatUint(v, 10); got != want {
				t.Fatalf("Uint(%q, %d) = %q, want %q", pre, v, got, want)
			}
			for _, i := range []int64{int64(v), -int64(v)} {
				if got, want := string(Int(prefix, i)), pre+strconv.FormatInt(i, 10); got != want {
					t.Fatalf("Int(%q, %d) = %q, want %q", pre, i, got, want)
				}
			}
		}
	}
}
