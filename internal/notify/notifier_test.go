package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/testutil"
	"github.com/dso-dev/dso/internal/version"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// signingKey is the HMAC key every test sink uses. It must never show up in
// a body, a header other than as an HMAC, a log line or an error.
const signingKey = "test-signing-key-Zq81"

// logBuf collects log lines from several goroutines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuf) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		b.lines = append(b.lines, prefix+" "+args)
		b.mu.Unlock()
	}, funcr.Options{Verbosity: 1})
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

func (b *logBuf) count(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if strings.Contains(l, `"msg"="`+msg+`"`) {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, 2*time.Millisecond, what, cond)
}

// sleeps records requested waits and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

func resolveKey(v v1alpha1.ValueSource) ([]byte, error) {
	if v.FromEnv == "MISSING" {
		return nil, errors.New("environment variable MISSING is not set")
	}
	return []byte(signingKey), nil
}

func sinkFor(name, url string, events ...string) v1alpha1.NotificationSink {
	return v1alpha1.NotificationSink{Name: name, URL: url, Events: events, Secret: &v1alpha1.ValueSource{FromEnv: "K"}}
}

// start runs n until the test ends.
func start(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

type received struct {
	header http.Header
	body   []byte
}

// recorder is an httptest server answering with the statuses in script (the
// last one repeats) and recording every request.
type recorder struct {
	mu     sync.Mutex
	reqs   []received
	script []func(w http.ResponseWriter)
	srv    *httptest.Server
}

func newRecorder(t *testing.T, script ...func(w http.ResponseWriter)) *recorder {
	r := &recorder{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := len(r.reqs)
		r.reqs = append(r.reqs, received{req.Header.Clone(), b})
		r.mu.Unlock()
		if len(r.script) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		r.script[min(i, len(r.script)-1)](w)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func status(code int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
	}
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func failedRotation() *containerswap.Rotation {
	return &containerswap.Rotation{
		TraceID: "tr-1", Target: "api", Bindings: []string{"api-db", "api-tls"}, Strategy: "rolling",
		Started: t0, Finished: t0.Add(1234 * time.Millisecond), Result: "rolled-back",
		Reason: "health gate failed: exit code 1",
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestDeliveryHeadersAndSignature checks the wire contract: the body, the
// signature a receiver recomputes, and the other headers.
func TestDeliveryHeadersAndSignature(t *testing.T) {
	rec := newRecorder(t)
	var logs logBuf
	n, err := New([]v1alpha1.NotificationSink{sinkFor("ops", rec.srv.URL)}, resolveKey, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Observer().RotationFinished(failedRotation())
	waitFor(t, "the delivery", func() bool { return len(rec.got()) == 1 })

	r := rec.got()[0]
	want := `{"type":"rotation_failed","time":"2025-03-04T05:06:08Z","binding":["api-db","api-tls"],"target":"api","traceId":"tr-1","strategy":"rolling","durationMs":1234,"reason":"health gate failed: exit code 1"}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
	sig := r.header.Get("X-DSO-Signature")
	if !Verify([]byte(signingKey), r.body, sig) {
		t.Errorf("X-DSO-Signature %q does not verify under the sink's key", sig)
	}
	if Verify([]byte("another key"), r.body, sig) || Verify([]byte(signingKey), append(r.body, ' '), sig) {
		t.Error("the signature verifies under a wrong key or a changed body")
	}
	for h, want := range map[string]string{
		"X-DSO-Event": "rotation_failed", "User-Agent": "dso/" + version.Version, "Content-Type": "application/json",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if id := r.header.Get("X-DSO-Delivery"); !uuidRE.MatchString(id) {
		t.Errorf("X-DSO-Delivery %q is not a version 4 UUID", id)
	}
	waitFor(t, "the delivered log line", func() bool { return logs.count(MsgDelivered) == 1 })
}

// TestEventMapping covers the observer: which rotation results and recovery
// actions become which event type, and the recovery body.
func TestEventMapping(t *testing.T) {
	tests := []struct {
		name     string
		ev       Event
		wantType string
		wantBody string // checked when set
	}{
		{"succeeded", RotationEvent(&containerswap.Rotation{Result: "succeeded", Started: t0, Finished: t0}), v1alpha1.EventRotationSucceeded, ""},
		{"failed", RotationEvent(&containerswap.Rotation{Result: "failed"}), v1alpha1.EventRotationFailed, ""},
		{"rolled back", RotationEvent(&containerswap.Rotation{Result: "rolled-back"}), v1alpha1.EventRotationFailed, ""},
		{"unknown result counts as failed", RotationEvent(&containerswap.Rotation{Result: ""}), v1alpha1.EventRotationFailed, ""},
		{"recovery ok", RecoveryEvent(containerswap.RecoveryAction{Time: t0, Target: "api", TraceID: "tr-2", Action: "finished-cutover", Detail: "renamed candidate to api"}),
			v1alpha1.EventRecoverySucceeded,
			`{"type":"recovery_succeeded","time":"2025-03-04T05:06:07Z","binding":[],"target":"api","traceId":"tr-2","durationMs":0,"reason":"renamed candidate to api","action":"finished-cutover"}`},
		{"recovery error", RecoveryEvent(containerswap.RecoveryAction{Time: t0, Target: "api", Action: "restored-old", Detail: "starting api", Error: "start failed: port in use"}),
			v1alpha1.EventRecoveryFailed,
			`{"type":"recovery_failed","time":"2025-03-04T05:06:07Z","binding":[],"target":"api","durationMs":0,"reason":"start failed: port in use","action":"restored-old"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ev.Type != tt.wantType {
				t.Errorf("type %q, want %q", tt.ev.Type, tt.wantType)
			}
			b, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantBody != "" && string(b) != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", b, tt.wantBody)
			}
		})
	}
}

// TestRetries drives one event against scripted receivers with an
// injected sleeper and clock, and checks attempts, waits and the outcome.
func TestRetries(t *testing.T) {
	now := t0
	tests := []struct {
		name      string
		script    []func(http.ResponseWriter)
		wantCalls int
		wantWaits []time.Duration
		wantMsg   string // MsgDelivered or MsgGaveUp
	}{
		{"500 then success", []func(http.ResponseWriter){status(500, ""), status(500, ""), status(200, "")},
			3, []time.Duration{time.Second, 2 * time.Second}, MsgDelivered},
		{"Retry-After seconds honoured", []func(http.ResponseWriter){status(503, "7"), status(202, "")},
			2, []time.Duration{7 * time.Second}, MsgDelivered},
		{"Retry-After date honoured", []func(http.ResponseWriter){status(429, now.Add(30*time.Second).Format(http.TimeFormat)), status(200, "")},
			2, []time.Duration{30 * time.Second}, MsgDelivered},
		{"Retry-After capped at 5m", []func(http.ResponseWriter){status(429, "86400"), status(200, "")},
			2, []time.Duration{5 * time.Minute}, MsgDelivered},
		{"429 without Retry-After backs off", []func(http.ResponseWriter){status(429, ""), status(200, "")},
			2, []time.Duration{time.Second}, MsgDelivered},
		{"gives up after 8 attempts", []func(http.ResponseWriter){status(500, "")},
			8, []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second}, MsgGaveUp},
		{"400 is not retried", []func(http.ResponseWriter){status(400, "")}, 1, nil, MsgGaveUp},
		{"redirect is not followed or retried", []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		}}, 1, nil, MsgGaveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, tt.script...)
			var logs logBuf
			var sl sleeps
			n, err := New([]v1alpha1.NotificationSink{sinkFor("ops", rec.srv.URL)}, resolveKey, logs.logger(),
				WithSleep(sl.sleep), WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			start(t, n)
			n.Notify(RotationEvent(failedRotation()))
			waitFor(t, tt.wantMsg, func() bool { return logs.count(MsgDelivered)+logs.count(MsgGaveUp) > 0 })
			if logs.count(tt.wantMsg) != 1 {
				t.Errorf("want one %q log line; log:\n%s", tt.wantMsg, logs.String())
			}
			reqs := rec.got()
			if len(reqs) != tt.wantCalls {
				t.Errorf("%d attempts, want %d", len(reqs), tt.wantCalls)
			}
			if got := sl.got(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits %v, want %v", got, tt.wantWaits)
			}
			// Retries repeat the same delivery, so receivers can deduplicate.
			for _, r := range reqs[1:] {
				if r.header.Get("X-DSO-Delivery") != reqs[0].header.Get("X-DSO-Delivery") {
					t.Error("a retry carries a different X-DSO-Delivery id")
				}
			}
		})
	}
}

// TestSlowSinkNeverBlocks calls Notify 10,000 times while the only sink hangs
// on its first request: every call must return at once and the queue stay
// within its bound, with the drops logged as a count, not per event.
func TestSlowSinkNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var hits sync.WaitGroup
	hits.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(hits.Done)
		<-release
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, so the handler returns

	var logs logBuf
	const bound = 100
	n, err := New([]v1alpha1.NotificationSink{sinkFor("slow", srv.URL)}, resolveKey, logs.logger(),
		WithQueueSize(bound), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(RotationEvent(failedRotation()))
	hits.Wait() // the worker is now stuck in its first request

	const calls = 10_000
	ev := RotationEvent(failedRotation())
	began := time.Now()
	var slowest time.Duration
	for range calls {
		s := time.Now()
		n.Notify(ev)
		slowest = max(slowest, time.Since(s))
	}
	total := time.Since(began)
	t.Logf("%d Notify calls against a hung sink: %v total, %v per call, slowest %v", calls, total, total/calls, slowest)
	if total > 2*time.Second || slowest > 100*time.Millisecond {
		t.Errorf("Notify blocked: %v for %d calls, slowest %v", total, calls, slowest)
	}
	if q := n.QueueLen("slow"); q != bound {
		t.Errorf("queue holds %d events, want the bound %d", q, bound)
	}
	// The clock stands still, so the drops are logged once (the first),
	// not 9,900 times.
	if c := logs.count(MsgQueueFull); c != 1 {
		t.Errorf("%d queue-full log lines, want 1 (rate-limited); log:\n%s", c, logs.String())
	}
}

// TestEventFiltering sends one event of each type to a sink that wants all
// of them and to one that wants only failures.
func TestEventFiltering(t *testing.T) {
	all, failures := newRecorder(t), newRecorder(t)
	var logs logBuf
	n, err := New([]v1alpha1.NotificationSink{
		sinkFor("all", all.srv.URL),
		sinkFor("failures", failures.srv.URL, v1alpha1.EventRotationFailed, v1alpha1.EventRecoveryFailed),
	}, resolveKey, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	for _, typ := range v1alpha1.NotificationEvents {
		n.Notify(Event{Type: typ, Time: t0, Target: "api"})
	}
	types := func(r *recorder) []string {
		var out []string
		for _, q := range r.got() {
			out = append(out, q.header.Get("X-DSO-Event"))
		}
		return out
	}
	waitFor(t, "deliveries", func() bool { return len(all.got()) == 4 && len(failures.got()) == 2 })
	time.Sleep(20 * time.Millisecond) // room for a wrongly routed extra delivery
	if got := types(all); !slices.Equal(got, v1alpha1.NotificationEvents) {
		t.Errorf("sink all got %v, want %v in order", got, v1alpha1.NotificationEvents)
	}
	if got, want := types(failures), []string{v1alpha1.EventRotationFailed, v1alpha1.EventRecoveryFailed}; !slices.Equal(got, want) {
		t.Errorf("sink failures got %v, want %v", got, want)
	}
}

// TestNoSecretsLeak fills every rotation field that could plausibly carry a
// value (hashes, health output) with a sentinel, gives the sink a URL with a
// token and no receiver, and greps bodies, headers and logs for the
// sentinel, the signing key and the token.
func TestNoSecretsLeak(t *testing.T) {
	const value = "s3cr3t-VALUE-0042"
	rec := newRecorder(t)
	// A port nothing listens on: attempts fail with a connection error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/hook?token=url-token-77"
	_ = l.Close()

	var logs logBuf
	var sl sleeps
	n, err := New([]v1alpha1.NotificationSink{sinkFor("ok", rec.srv.URL), sinkFor("dead", dead)}, resolveKey, logs.logger(),
		WithSleep(sl.sleep), WithMaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	r := failedRotation()
	r.FromHash, r.ToHash, r.OldID, r.NewID = value, value, value, value
	r.Health = []containerswap.HealthProbe{{Time: t0, ExitCode: 1, Output: "DB_PASSWORD=" + value}}
	r.Steps = []containerswap.StepTiming{{Step: "health", Duration: time.Second, Error: value}}
	n.Observer().RotationFinished(r)
	waitFor(t, "delivery and give-up", func() bool { return len(rec.got()) == 1 && logs.count(MsgGaveUp) == 1 })

	var seen strings.Builder
	for _, q := range rec.got() {
		seen.Write(q.body)
		for k, v := range q.header {
			seen.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	seen.WriteString(logs.String())
	for _, s := range []string{value, signingKey, "url-token-77"} {
		if strings.Contains(seen.String(), s) {
			t.Errorf("%q leaked into a body, header or log line:\n%s", s, seen.String())
		}
	}
	if !strings.Contains(logs.String(), `"sink"="dead"`) {
		t.Errorf("the give-up line should name the sink; log:\n%s", logs.String())
	}
}

// TestNew covers construction errors: each names the sink and what to fix,
// wraps the resolver's error, and never contains the key.
func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		sink    v1alpha1.NotificationSink
		resolve func(v1alpha1.ValueSource) ([]byte, error)
		want    string // substring of the error; "" = no error
	}{
		{"ok", sinkFor("ops", "https://hooks.example/x"), resolveKey, ""},
		{"no secret", v1alpha1.NotificationSink{Name: "ops", URL: "https://hooks.example/x"}, resolveKey,
			"notifications[0] (ops): a signing secret is required"},
		{"resolve fails", v1alpha1.NotificationSink{Name: "ops", URL: "https://h/x", Secret: &v1alpha1.ValueSource{FromEnv: "MISSING"}}, resolveKey,
			"notifications[0] (ops): reading the signing secret: environment variable MISSING is not set"},
		{"empty key", sinkFor("ops", "https://h/x"), func(v1alpha1.ValueSource) ([]byte, error) { return nil, nil },
			"notifications[0] (ops): the signing secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]v1alpha1.NotificationSink{tt.sink}, tt.resolve, logr.Discard())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), signingKey):
				t.Fatalf("error contains the key: %v", err)
			}
		})
	}
}

// TestLifecycle: Close without Start, Notify after Close, Start twice.
func TestLifecycle(t *testing.T) {
	rec := newRecorder(t)
	n, err := New([]v1alpha1.NotificationSink{sinkFor("ops", rec.srv.URL)}, resolveKey, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- n.Start(ctx) }()
	waitFor(t, "Start", func() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.started })
	if err := n.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Start after Close: %v", err)
	}
	n.Notify(Event{Type: v1alpha1.EventRotationFailed})
	if q := n.QueueLen("ops"); q != 0 {
		t.Errorf("Notify after Close queued %d events", q)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	unstarted, _ := New(nil, resolveKey, logr.Discard())
	if err := unstarted.Close(); err != nil {
		t.Errorf("Close without Start: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"12", 12 * time.Second},
		{"99999999999", maxBackoff},
		{t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{t0.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, t0); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
