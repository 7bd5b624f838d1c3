package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/version"
)

// Delivery policy. Eight attempts with backoff doubling from 1 s leave a
// receiver about two minutes to come back (1+2+4+...+64 s) before an event
// is given up, and no wait is ever longer than five minutes, even when the
// receiver's Retry-After asks for more: one sink's queue must keep moving.
// There is no jitter: a host has a handful of sinks, so there is no herd.
const (
	DefaultQueueSize   = 1000
	DefaultMaxAttempts = 8
	DefaultTimeout     = 10 * time.Second
	minBackoff         = time.Second
	maxBackoff         = 5 * time.Minute
	// dropLogInterval bounds how often a full queue is logged: a burst of
	// thousands of drops is one log line with a count, not thousands.
	dropLogInterval = 10 * time.Second
	// maxResponseDrain is how much of a response body is read (and
	// discarded) so the connection can be reused.
	maxResponseDrain = 4 << 10
)

// Log messages (stable, for `system logs | grep`).
const (
	MsgDelivered = "notification delivered"
	MsgRetrying  = "notification delivery failed, retrying"
	MsgGaveUp    = "notification dropped: delivery failed"
	MsgQueueFull = "notification queue full: dropped oldest events"
)

// Option adjusts a Notifier; tests use them to avoid real waits.
type Option func(*Notifier)

// WithHTTPClient replaces the HTTP client (default: one with no client-wide
// timeout; each attempt is bounded by the sink's timeout).
func WithHTTPClient(c *http.Client) Option { return func(n *Notifier) { n.client = c } }

// WithSleep replaces the wait between attempts. It must return early with
// ctx's error when ctx ends.
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(n *Notifier) { n.sleep = f }
}

// WithClock replaces time.Now (Retry-After dates, drop-log pacing).
func WithClock(f func() time.Time) Option { return func(n *Notifier) { n.now = f } }

// WithQueueSize sets the per-sink queue bound (default 1000).
func WithQueueSize(size int) Option { return func(n *Notifier) { n.queueSize = max(size, 1) } }

// WithMaxAttempts sets the attempts per event (default 8).
func WithMaxAttempts(k int) Option { return func(n *Notifier) { n.maxAttempts = max(k, 1) } }

// Notifier fans events out to the configured sinks. Create it with New, run
// Start (a controllers Runnable) and feed it with Notify or Observer.
type Notifier struct {
	sinks       []*sink
	log         logr.Logger
	client      *http.Client
	sleep       func(context.Context, time.Duration) error
	now         func() time.Time
	queueSize   int
	maxAttempts int

	mu      sync.Mutex
	started bool
	closed  bool
	stop    context.CancelFunc // cancels Start's workers; set by Start
	done    chan struct{}      // closed when Start's workers have exited
}

// delivery is one queued event for one sink. The id stays the same across
// retries so receivers can deduplicate.
type delivery struct {
	id   string
	typ  string
	body []byte
}

type sink struct {
	name    string
	url     string
	events  []string // nil: all
	key     []byte
	timeout time.Duration

	mu sync.Mutex
	// ring is a fixed ring buffer of queueSize entries; head is the oldest,
	// count how many are queued. Dropping the oldest is then O(1), which
	// matters because a hung sink makes every Notify a drop.
	ring    []delivery
	head    int
	count   int
	dropped int // drops not yet logged
	lastLog time.Time
	wake    chan struct{} // capacity 1: "the queue is not empty"
}

// New builds a Notifier for sinks (already validated by the config loader).
// resolve reads each sink's signing secret (fromEnv/fromFile) once, here, so
// that a missing secret fails agent start-up instead of every delivery.
func New(sinks []v1alpha1.NotificationSink, resolve func(v1alpha1.ValueSource) ([]byte, error), log logr.Logger, opts ...Option) (*Notifier, error) {
	n := &Notifier{
		log:         log,
		client:      &http.Client{CheckRedirect: noRedirects},
		sleep:       sleepCtx,
		now:         time.Now,
		queueSize:   DefaultQueueSize,
		maxAttempts: DefaultMaxAttempts,
	}
	for _, o := range opts {
		o(n)
	}
	for i, s := range sinks {
		if s.Secret == nil {
			return nil, fmt.Errorf("notifications[%d] (%s): a signing secret is required: set secret: {fromEnv: NAME} or {fromFile: PATH}", i, s.Name)
		}
		key, err := resolve(*s.Secret)
		if err != nil {
			return nil, fmt.Errorf("notifications[%d] (%s): reading the signing secret: %w", i, s.Name, err)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("notifications[%d] (%s): the signing secret is empty: put a random key of at least 32 bytes in it", i, s.Name)
		}
		if _, err := url.Parse(s.URL); err != nil {
			// The URL itself stays out of the message: it may hold a token.
			return nil, fmt.Errorf("notifications[%d] (%s): the url does not parse: fix spec.notifications[%d].url", i, s.Name, i)
		}
		sk := &sink{
			name: s.Name, url: s.URL, key: key, timeout: DefaultTimeout,
			wake: make(chan struct{}, 1),
		}
		if len(s.Events) > 0 {
			sk.events = slices.Clone(s.Events)
		}
		if s.Timeout != nil && s.Timeout.D() > 0 {
			sk.timeout = s.Timeout.D()
		}
		n.sinks = append(n.sinks, sk)
	}
	return n, nil
}

// Notify queues ev for every sink that wants its type. It never blocks and
// never performs I/O: a full queue drops its oldest entry (the newest state
// is what a receiver most needs), counted and logged at most every 10 s.
// After Close it does nothing.
func (n *Notifier) Notify(ev Event) {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed || len(n.sinks) == 0 {
		return
	}
	var payload []byte
	for _, s := range n.sinks {
		if s.events != nil && !slices.Contains(s.events, ev.Type) {
			continue
		}
		if payload == nil {
			b, err := json.Marshal(ev)
			if err != nil { // cannot happen for strings and numbers; never drop silently
				n.log.Error(err, "notification not sent: encoding the event failed", "event", ev.Type)
				return
			}
			payload = b
		}
		s.enqueue(n, delivery{id: newUUID(), typ: ev.Type, body: payload})
	}
}

func (s *sink) enqueue(n *Notifier, d delivery) {
	s.mu.Lock()
	if s.ring == nil {
		s.ring = make([]delivery, n.queueSize)
	}
	if s.count == len(s.ring) {
		s.head = (s.head + 1) % len(s.ring) // overwrite the oldest
		s.count--
		s.dropped++
	}
	s.ring[(s.head+s.count)%len(s.ring)] = d
	s.count++
	var logDrops int
	if s.dropped > 0 {
		if now := n.now(); now.Sub(s.lastLog) >= dropLogInterval {
			logDrops, s.dropped, s.lastLog = s.dropped, 0, now
		}
	}
	s.mu.Unlock()
	if logDrops > 0 {
		n.log.Info(MsgQueueFull, "sink", s.name, "dropped", logDrops, "queueSize", n.queueSize)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// QueueLen reports how many events wait for a sink (status, tests).
func (n *Notifier) QueueLen(sinkName string) int {
	for _, s := range n.sinks {
		if s.name == sinkName {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.count
		}
	}
	return 0
}

func (s *sink) pop() (delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == 0 {
		return delivery{}, false
	}
	d := s.ring[s.head]
	s.ring[s.head] = delivery{}
	s.head = (s.head + 1) % len(s.ring)
	s.count--
	return d, true
}

// Start runs one delivery worker per sink until ctx ends or Close is called.
// Events still queued then are not delivered (they are logged as a count).
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("notifier already started: Start may be called once")
	}
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.started = true
	ctx, n.stop = context.WithCancel(ctx)
	n.done = make(chan struct{})
	n.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range n.sinks {
		wg.Go(func() { n.work(ctx, s) })
	}
	<-ctx.Done()
	wg.Wait()
	for _, s := range n.sinks {
		s.mu.Lock()
		left := s.count
		s.mu.Unlock()
		if left > 0 {
			n.log.Info("notifications not delivered at shutdown", "sink", s.name, "queued", left)
		}
	}
	close(n.done)
	return nil
}

// Close stops accepting events, stops the workers (aborting an attempt in
// flight) and waits for them. It is safe to call more than once, and
// without Start.
func (n *Notifier) Close() error {
	n.mu.Lock()
	n.closed = true
	stop, done := n.stop, n.done
	n.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}

func (n *Notifier) work(ctx context.Context, s *sink) {
	for {
		d, ok := s.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		n.deliver(ctx, s, d)
		if ctx.Err() != nil {
			return
		}
	}
}

// deliver tries one event up to maxAttempts times.
func (n *Notifier) deliver(ctx context.Context, s *sink, d delivery) {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := n.attempt(ctx, s, d)
		if err == nil {
			n.log.V(1).Info(MsgDelivered, "sink", s.name, "event", d.typ, "delivery", d.id, "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		// A 3xx or a 4xx other than "timeout", "too early" and "too many
		// requests" will not change by asking again: the url or the
		// receiver's configuration is wrong, and retrying only delays the
		// events queued behind this one.
		permanent := status >= 300 && status < 400 || status >= 400 && status < 500 && status != http.StatusRequestTimeout &&
			status != http.StatusTooEarly && status != http.StatusTooManyRequests
		if permanent || attempt >= n.maxAttempts {
			n.log.Error(err, MsgGaveUp, "sink", s.name, "event", d.typ, "delivery", d.id, "attempts", attempt, "status", status)
			return
		}
		wait := backoff
		if retryAfter > 0 {
			wait = retryAfter
		}
		wait = min(wait, maxBackoff)
		n.log.Info(MsgRetrying, "sink", s.name, "event", d.typ, "delivery", d.id, "attempt", attempt, "status", status, "retryIn", wait.String(), "error", err.Error())
		if n.sleep(ctx, wait) != nil {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// attempt makes one POST. It returns the HTTP status (0 when there was no
// response), the Retry-After the receiver asked for, and an error unless
// the receiver answered 2xx. Errors never contain the URL.
func (n *Notifier) attempt(ctx context.Context, s *sink, d delivery) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, errors.New("building the request failed: check the sink's url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dso/"+version.Version)
	req.Header.Set("X-DSO-Event", d.typ)
	req.Header.Set("X-DSO-Delivery", d.id)
	req.Header.Set("X-DSO-Signature", Sign(s.key, d.body))
	resp, err := n.client.Do(req)
	if err != nil {
		// *url.Error's text quotes the URL, which may embed a token: keep
		// only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, 0, fmt.Errorf("no answer within %s: raise the sink's timeout or check the receiver", s.timeout)
		}
		return 0, 0, fmt.Errorf("sending failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), n.now()),
		fmt.Errorf("the receiver answered %s", resp.Status)
}

// Sign returns the X-DSO-Signature header value for body under key:
// "sha256=" and the hex HMAC-SHA256. Receivers compute the same over the raw
// body and compare in constant time (see Verify).
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under key, comparing in
// constant time. It is what a Go receiver would call.
func Verify(key, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(key, body)))
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent,
// unparseable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int(maxBackoff/time.Second) { // also keeps huge values from overflowing
			return maxBackoff
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// noRedirects stops the client following redirects: a 301/302 would turn
// the POST into a GET without the body, silently losing the event.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newUUID returns a random (version 4) UUID for X-DSO-Delivery.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
