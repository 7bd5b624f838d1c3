package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ErrAgentDown means nothing answers on the socket.
var ErrAgentDown = errors.New("the dso agent is not running")

// Client talks to the agent over its unix socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 2,
	}
	return &Client{Socket: socket, hc: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dso"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if isDown(err) {
			return nil, fmt.Errorf("%w (nothing answers on %s): start it with `docker dso system enable`", ErrAgentDown, c.Socket)
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("permission denied on %s: add your user to the dso group (sudo usermod -aG dso $USER), then log in again", c.Socket)
		}
		return nil, fmt.Errorf("agent API: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer func() { _ = resp.Body.Close() }()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &StatusError{Code: resp.StatusCode, Msg: e.Error}
		}
		return nil, &StatusError{Code: resp.StatusCode, Msg: http.StatusText(resp.StatusCode)}
	}
	return resp, nil
}

// StatusError is an error answer of the agent.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// IsNotFound reports a 404 answer.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

func isDown(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.getJSON(ctx, "/v1/status", &s)
}

// Stores lists the stores.
func (c *Client) Stores(ctx context.Context) ([]StoreView, error) {
	var s []StoreView
	return s, c.getJSON(ctx, "/v1/stores", &s)
}

// Store returns one store.
func (c *Client) Store(ctx context.Context, name string) (StoreView, error) {
	var s StoreView
	return s, c.getJSON(ctx, "/v1/stores/"+url.PathEscape(name), &s)
}

// Bindings lists the bindings.
func (c *Client) Bindings(ctx context.Context) ([]BindingView, error) {
	var b []BindingView
	return b, c.getJSON(ctx, "/v1/bindings", &b)
}

// Binding returns one binding with its events and rotations.
func (c *Client) Binding(ctx context.Context, name string) (BindingView, error) {
	var b BindingView
	return b, c.getJSON(ctx, "/v1/bindings/"+url.PathEscape(name), &b)
}

// Apply stores objects in the agent (or, with DryRun, computes the diff).
func (c *Client) Apply(ctx context.Context, req ApplyRequest) (ApplyResult, error) {
	var r ApplyResult
	return r, c.sendJSON(ctx, http.MethodPost, "/v1/apply", req, &r)
}

// Delete removes an applied object. kind is "stores" or "bindings".
func (c *Client) Delete(ctx context.Context, kind, name string) (DeleteResult, error) {
	var r DeleteResult
	return r, c.sendJSON(ctx, http.MethodDelete, "/v1/"+kind+"/"+url.PathEscape(name), nil, &r)
}

// History returns rotation records, newest first.
func (c *Client) History(ctx context.Context, binding string, limit int) ([]Rotation, error) {
	q := url.Values{}
	if binding != "" {
		q.Set("binding", binding)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var r []Rotation
	return r, c.getJSON(ctx, "/v1/history?"+q.Encode(), &r)
}

// Doctor runs the agent-side checks.
func (c *Client) Doctor(ctx context.Context) ([]Check, error) {
	var r []Check
	return r, c.getJSON(ctx, "/v1/doctor", &r)
}

// Rotate forces a fetch and a rollout of binding; progress is called for
// every line of the stream until the agent says done (or ctx ends).
func (c *Client) Rotate(ctx context.Context, binding string, wait bool, progress func(RotateProgress)) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/rotate/"+url.PathEscape(binding), RotateRequest{Wait: wait})
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var p RotateProgress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("rotate stream: %w", err)
		}
		if progress != nil {
			progress(p)
		}
		if p.Phase == "done" {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the agent ended the rotate stream early")
}

// Backup writes a consistent copy of the agent's state store to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	return io.Copy(w, resp.Body)
}

// Ping reports whether the agent answers within d.
func (c *Client) Ping(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := c.Status(ctx)
	return err
}
