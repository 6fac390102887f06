package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// chromiumPath finds Debian's chromium, which scripts/test-setup.sh installs.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	bpftest.Unavailable(t, "chromium is not installed (scripts/test-setup.sh installs it)")
	return ""
}

// headless runs chromium on page with extra arguments and returns its
// stdout and stderr.
func headless(t *testing.T, chromium, page string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), "file://"+page)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

// TestHTMLReportInBrowser renders the HTML report of a fixed capture in
// headless chromium: the page must load without script errors or console
// errors, and its charts must paint (the screenshot has the charts'
// colours and is far from blank).
func TestHTMLReportInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	code, _, errOut := runCLI(t, "analyze", "../../testdata/sample.rwd", "--quiet", "--report", "html", "-o", page,
		"--slo", "availability>=99%,p99<1s")
	if code != 3 {
		t.Fatalf("analyze: exit %d, want 3 (availability objective violated): %s", code, errOut)
	}
	html, _ := os.ReadFile(page)
	for _, remote := range []string{"http://", "https://", "//cdn"} {
		if i := bytes.Index(html, []byte(remote)); i >= 0 && !bytes.Contains(html[max(i-30, 0):i], []byte("xmlns")) {
			t.Errorf("page refers to %s: not self-contained", remote)
		}
	}

	dom, logs := headless(t, chromium, page, "--dump-dom")
	if !strings.Contains(dom, `data-ready="1"`) {
		t.Errorf("page script did not run to the end; DOM:\n%.2000s", dom)
	}
	if strings.Contains(dom, "data-error=") {
		t.Errorf("page raised a script error: %.500s", dom[strings.Index(dom, "data-error="):])
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("console: %s", line)
		}
	}
	if n := strings.Count(dom, "<svg"); n < 10 {
		t.Errorf("%d svg charts in the DOM, want ≥10", n)
	}

	shot := filepath.Join(dir, "shot.png")
	headless(t, chromium, page, "--screenshot="+shot, "--window-size=1400,2400")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding screenshot: %v", err)
	}
	checkPainted(t, img)
}

// checkPainted requires a screenshot with content and the charts' colours.
func checkPainted(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	colours := map[uint32]bool{}
	nonWhite, total := 0, 0
	chart := map[string]int{"#4e79a7": 0, "#76b7b2": 0, "#e15759": 0}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			total++
			colours[r<<16|g<<8|bl] = true
			if r < 245 || g < 245 || bl < 245 {
				nonWhite++
			}
			for hex := range chart {
				if near(r, g, bl, hex) {
					chart[hex]++
				}
			}
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d distinct colours: blank?", len(colours))
	}
	if share := float64(nonWhite) / float64(total); share < 0.03 {
		t.Errorf("screenshot is %.1f%% non-white: blank?", share*100)
	}
	for hex, n := range chart {
		if n < 200 {
			t.Errorf("chart colour %s painted on %d pixels: charts did not render", hex, n)
		}
	}
}

func near(r, g, b uint32, hex string) bool {
	var want [3]uint32
	for i := range want {
		for _, c := range hex[1+2*i : 3+2*i] {
			want[i] = want[i]*16 + uint32(strings.IndexRune("0123456789abcdef", c))
		}
	}
	d := func(a, b uint32) uint32 {
		if a > b {
			return a - b
		}
		return b - a
	}
	return d(r, want[0]) <= 6 && d(g, want[1]) <= 6 && d(b, want[2]) <= 6
}

// TestHTMLReportLayout renders HTML reports in headless chromium at 1400
// CSS pixels with every details element open, and checks the layout rules
// of #20 item 8 with the DOM (testdata/layout-check.js): no horizontal
// scrolling, no text overflowing its box, no chart text outside its chart
// or over another label. It also checks what the page says: a short
// capture gets buckets of its own scale, and a partial last bucket is
// marked as one.
func TestHTMLReportLayout(t *testing.T) {
	chromium := chromiumPath(t)
	check, err := os.ReadFile("testdata/layout-check.js")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A capture of 2.05 s whose last exchange falls in a bucket the
	// capture only partly spans.
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	for i := range 42 {
		c := srv.Accept(int32(10+i), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 41000+i))
		c.Read(fmt.Sprintf("GET /very/long/path/segment/that/goes/on/and/on/item-%d HTTP/1.1\r\nHost: h\r\n\r\n", i%3))
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		b.Advance(50 * time.Millisecond)
	}
	long := filepath.Join(dir, "long.rwd")
	b.WriteFile(t, long)
	for _, in := range []string{"../../testdata/sample.rwd", "../../testdata/curl-nginx.rwd", long} {
		page := filepath.Join(dir, filepath.Base(in)+".html")
		if code, _, errOut := runCLI(t, "analyze", in, "-q", "--report", "html", "-o", page); code != exitOK {
			t.Fatalf("analyze %s: exit %d %s", in, code, errOut)
		}
		html, _ := os.ReadFile(page)
		if in == long && !bytes.Contains(html, []byte("partial bucket")) {
			t.Errorf("%s: the partial last bucket is not marked", in)
		}
		if in == "../../testdata/sample.rwd" && !bytes.Contains(html, []byte("1.00ms buckets")) {
			t.Errorf("%s: an 84 ms capture should get 1 ms buckets", in)
		}
		probe := filepath.Join(dir, "probe.html")
		os.WriteFile(probe, bytes.Replace(html, []byte("</body>"), append(append([]byte("<script>"), check...), "</script></body>"...), 1), 0o600)
		dom, _ := headless(t, chromium, probe, "--dump-dom", "--window-size=1400,1000")
		i := strings.Index(dom, `data-layout="`)
		if i < 0 {
			t.Fatalf("%s: the layout check did not run:\n%.1500s", in, dom)
		}
		got := dom[i+len(`data-layout="`):]
		got = strings.ReplaceAll(got[:strings.IndexByte(got, '"')], "&quot;", `"`)
		if got != "[]" {
			t.Errorf("%s at 1400 px: %s", in, got)
		}
	}
}
