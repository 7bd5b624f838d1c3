package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// probeURL turns the serve mode's listen address into the URL the HEALTHCHECK
// asks. The probe runs inside the container, so it always talks to loopback.
func probeURL(listen string) string {
	port := "8080"
	if listen != "" {
		if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
			port = p
		}
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
}

// probeMain is the image's HEALTHCHECK. Its timeout stays below the
// HEALTHCHECK's 2s so Docker records our message rather than "timed out".
func probeMain(listen string, stderr io.Writer) int {
	c := &http.Client{Timeout: 1500 * time.Millisecond}
	resp, err := c.Get(probeURL(listen))
	if err != nil {
		say(stderr, "probe: %v\n", err)
		return 1
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		say(stderr, "probe: healthz answered %d: %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
		return 1
	}
	return 0
}

// getMain lets a test make a request from inside a container (docker exec),
// for containers that publish no port and sit on a test network.
func getMain(url string, stdout, stderr io.Writer) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		say(stderr, "get: %v\n", err)
		return 1
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		say(stderr, "get: reading the body: %v\n", err)
		return 1
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		say(stderr, "get: %s answered %d\n", url, resp.StatusCode)
		return 1
	}
	return 0
}

// clientReport is what `testapp client` prints when it is stopped. Bodies
// counts distinct response bodies of successful requests (the testapp only
// serves hashes, so this is how a traffic test sees when the new value
// started being served); MaxLatencyMS exposes stalls that are not failures.
type clientReport struct {
	OK           int            `json:"ok"`
	Failed       int            `json:"failed"`
	MaxLatencyMS int64          `json:"max_latency_ms"`
	Bodies       map[string]int `json:"bodies"`
	LastError    string         `json:"last_error,omitempty"`
}

// maxDistinctBodies bounds the report when the URL serves changing content.
const maxDistinctBodies = 32

// clientLoop sends one GET at a time until ctx ends. Requests are sequential
// on purpose: a stall then delays the next request and shows up in
// MaxLatencyMS instead of being hidden by concurrency.
func clientLoop(ctx context.Context, url string, interval time.Duration, c *http.Client) clientReport {
	rep := clientReport{Bodies: map[string]int{}}
	for {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			rep.Failed++
			rep.LastError = err.Error()
			return rep
		}
		resp, err := c.Do(req)
		if ctx.Err() != nil {
			// A request cut short by the stop signal is neither ok nor failed.
			if resp != nil {
				_ = resp.Body.Close()
			}
			return rep
		}
		if lat := time.Since(start).Milliseconds(); lat > rep.MaxLatencyMS {
			rep.MaxLatencyMS = lat
		}
		switch {
		case err != nil:
			rep.Failed++
			rep.LastError = err.Error()
		default:
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 256))
			_ = resp.Body.Close()
			if rerr != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
				rep.Failed++
				rep.LastError = fmt.Sprintf("status %d", resp.StatusCode)
				break
			}
			rep.OK++
			key := strings.TrimSpace(string(body))
			if _, seen := rep.Bodies[key]; seen || len(rep.Bodies) < maxDistinctBodies {
				rep.Bodies[key]++
			}
		}
		select {
		case <-ctx.Done():
			return rep
		case <-time.After(interval):
		}
	}
}

func clientMain(url, intervalText string, stdout, stderr io.Writer) int {
	interval := 100 * time.Millisecond
	if intervalText != "" {
		d, err := time.ParseDuration(intervalText)
		if err != nil || d <= 0 {
			say(stderr, "client: TESTAPP_CLIENT_INTERVAL must be a positive Go duration such as 100ms, got %q\n", intervalText)
			return 2
		}
		interval = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Keep-alives are off by default: each request dials anew and resolves
	// the name again, so alias changes during a rotation are observed.
	// TESTAPP_CLIENT_KEEPALIVE=1 models clients that hold connections open.
	keepAlive := os.Getenv("TESTAPP_CLIENT_KEEPALIVE") == "1"
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
	rep := clientLoop(ctx, url, interval, c)
	if err := json.NewEncoder(stdout).Encode(rep); err != nil {
		say(stderr, "client: writing the report: %v\n", err)
		return 1
	}
	return 0
}
