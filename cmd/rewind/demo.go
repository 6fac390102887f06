package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture/record"
	"github.com/rewind-tools/rewind/format/report"
)

// sampleCapture is testdata/sample.rwd, recorded from the demo workload; a
// test keeps the two identical.
//
//go:embed sample.rwd
var sampleCapture []byte

func newDemoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "show what rewind does: as root, record a built-in workload and analyze it; otherwise analyze the bundled sample",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "keep the demo capture in `FILE`"},
			&cli.BoolFlag{Name: "sample", Usage: "analyze the bundled sample even when root"},
			&cli.IntFlag{Name: "requests", Value: 300, Usage: "`N` requests the demo workload sends"},
		},
		Action: runDemo,
	}
}

func newDemoWorkloadCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo-workload",
		Hidden: true,
		Usage:  "the HTTP server and client that 'rewind demo' records",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "requests", Value: 300},
		},
		Action: func(c *cli.Context) error {
			return demoWorkload(c.Context, os.Stdin, os.Stdout, c.Int("requests"))
		},
	}
}

func runDemo(c *cli.Context) error {
	out := c.App.Writer
	unavailable := record.Available()
	if unavailable != nil || os.Geteuid() != 0 || c.Bool("sample") {
		switch {
		case unavailable != nil:
			fmt.Fprintf(os.Stderr, "rewind: %v: analyzing the bundled sample capture (testdata/sample.rwd)\n", unavailable)
		case os.Geteuid() != 0:
			fmt.Fprintln(os.Stderr, "rewind: not root, so nothing is recorded: analyzing the bundled sample capture (testdata/sample.rwd)")
		}
		in, err := analyze.OpenReader(bytes.NewReader(sampleCapture), "sample.rwd")
		if err != nil {
			return fmt.Errorf("bundled sample: %w", err)
		}
		defer in.Close()
		_, err = analyze.Replay(c.Context, in.Source, in.Info, analyze.Options{},
			report.NewWriter(out, report.Text, sli.Options{}))
		return err
	}
	path := c.String("output")
	if path == "" {
		dir, err := os.MkdirTemp("", "rewind-demo")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "demo.rwd")
	}
	if err := recordDemo(c.Context, path, c.Int("requests")); err != nil {
		return err
	}
	in, err := analyze.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	sum, err := analyze.Replay(c.Context, in.Source, in.Info, analyze.Options{},
		report.NewWriter(out, report.Text, sli.Options{}))
	if err != nil {
		return err
	}
	for _, w := range sum.Warnings {
		fmt.Fprintf(os.Stderr, "rewind: warning: %s\n", w)
	}
	if c.IsSet("output") {
		fmt.Fprintf(os.Stderr, "rewind: capture kept in %s (rewind info %s)\n", path, path)
	}
	return nil
}

// recordDemo starts the demo workload as a child process, records it, and
// lets it run its requests once every probe is attached.
func recordDemo(ctx context.Context, path string, requests int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "demo-workload", "--requests", strconv.Itoa(requests))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the demo workload: %w", err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "listening ") {
		return errors.New("the demo workload did not start its server")
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	var res *record.Result
	var recErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, recErr = record.ToFile(rctx, record.Options{
			PIDs:     []int{cmd.Process.Pid},
			TLS:      true,
			Packets:  true,
			Duration: 30 * time.Second,
			Version:  version,
			Log:      os.Stderr,
			Ready:    func([]string) { close(ready) },
		}, path)
	}()
	select {
	case <-ready:
	case <-done:
		return fmt.Errorf("recording the demo: %w", recErr)
	}
	fmt.Fprintf(os.Stderr, "rewind: recording the demo workload (pid %d): %d requests on 127.0.0.1\n", cmd.Process.Pid, requests)
	io.WriteString(stdin, "go\n")
	for lines.Scan() {
		if lines.Text() == "done" {
			break
		}
	}
	// Let the last events drain before stopping.
	time.Sleep(200 * time.Millisecond)
	stop()
	<-done
	cmd.Wait()
	if recErr != nil {
		return fmt.Errorf("recording the demo: %w", recErr)
	}
	fmt.Fprintf(os.Stderr, "rewind: recorded %d events (%s), %d lost\n", res.Events, report.Bytes(res.Bytes), res.Lost)
	return nil
}

// demoWorkload serves a small JSON API on 127.0.0.1 and, once told "go" on
// in, sends it requests over keep-alive and fresh connections: a mix of
// endpoints, statuses, sizes and latencies for the report to show.
func demoWorkload(ctx context.Context, in io.Reader, out io.Writer, requests int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		if id%10 == 7 {
			http.Error(w, `{"error":"no such user"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%d,"name":"user %d","plan":"pro"}`, id, id)
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(time.Duration(2+len(body)%5) * time.Millisecond)
		if len(body)%13 == 0 {
			http.Error(w, `{"error":"payment backend unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"order":%d,"status":"created"}`, len(body))
	})
	mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"results":[`+strings.Repeat(`{"id":1,"title":"a result"},`, 200)+`{}]}`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "listening %s\n", ln.Addr())

	if !bufio.NewScanner(in).Scan() {
		return nil
	}
	base := "http://" + ln.Addr().String()
	rng := rand.New(rand.NewPCG(7, 7))
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < requests; i++ {
		client := keep
		if i%10 == 9 {
			client = fresh
		}
		var req *http.Request
		switch n := rng.IntN(100); {
		case n < 55:
			req, _ = http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/users/%d", base, rng.IntN(1000)), nil)
		case n < 80:
			body := strings.Repeat("x", 20+rng.IntN(200))
			req, _ = http.NewRequestWithContext(ctx, "POST", base+"/api/orders", strings.NewReader(`{"item":"`+body+`"}`))
			req.Header.Set("Content-Type", "application/json")
		case n < 90:
			req, _ = http.NewRequestWithContext(ctx, "GET", base+"/api/search?q=rewind", nil)
		default:
			req, _ = http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	keep.CloseIdleConnections()
	fmt.Fprintln(out, "done")
	return nil
}
