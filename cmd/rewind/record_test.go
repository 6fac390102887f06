package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"16KiB": 16 << 10, "1GiB": 1 << 30, "2MiB": 2 << 20, "100": 100, "10B": 10,
		"1.5KiB": 1536, "1MB": 1000000, "4k": 4096, "1 GiB": 1 << 30,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "12XB", "-1", "1e3"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}
