// Package jsonenc appends JSON tokens to byte slices without allocating, for
// the streaming writers in package format whose per-exchange cost must stay
// far below a microsecond. It produces the same escaping as encoding/json
// except that it does not escape <, > and &.
package jsonenc

import (
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

const hex = "0123456789abcdef"

// plain marks the bytes copied as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// String appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, control
// characters and U+2028/U+2029 are escaped.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Bytes appends p, taken as text, as a JSON string (see [String]).
func Bytes(b []byte, p []byte) []byte {
	// String only reads its argument and keeps no reference to it, so
	// viewing p as a string without a copy is safe.
	return String(b, unsafe.String(unsafe.SliceData(p), len(p)))
}

// Key appends a quoted object key followed by a colon. Keys are the
// writers' own constants and need no escaping.
func Key(b []byte, k string) []byte {
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

// Strings appends ss as a JSON array of strings.
func Strings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// Int appends an integer.
func Int(b []byte, v int64) []byte {
	if v < 0 {
		// -v overflows for the smallest int64, whose bits are then its
		// magnitude as a uint64.
		return Uint(append(b, '-'), uint64(-v))
	}
	return Uint(b, uint64(v))
}

// Uint appends an unsigned integer, as strconv.AppendUint does in base 10.
// The digits are written in place, two at a time, rather than formatted in
// a buffer and copied: the writers append several numbers per exchange,
// and the copy's call cost as much as the formatting.
func Uint(b []byte, v uint64) []byte {
	// The digit count from the bit length (1233/4096 is about log10 2),
	// then one comparison, rather than a comparison per digit.
	n := bits.Len64(v|1) * 1233 >> 12
	if v|1 >= pow10[n] {
		n++
	}
	b = slices.Grow(b, n)
	b = b[:len(b)+n]
	i := len(b)
	for v >= 100 {
		q := v / 100
		r := v - q*100
		i -= 2
		b[i], b[i+1] = digitPairs[2*r], digitPairs[2*r+1]
		v = q
	}
	if v >= 10 {
		b[i-2], b[i-1] = digitPairs[2*v], digitPairs[2*v+1]
	} else {
		b[i-1] = byte('0' + v)
	}
	return b
}

// pow10[n] is 10ⁿ, up to the largest that fits a uint64.
var pow10 = func() (t [20]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// Bool appends true or false.
func Bool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// Millis appends a nanosecond duration as milliseconds with microsecond
// precision ("12.345"), the unit HAR uses for timings.
func Millis(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	us := (ns + 500) / 1000
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	// Trim trailing zeros so 1.5 ms reads "1.5", not "1.500".
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	return b
}
