package vault

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/dso-dev/dso/providers"
)

// lease is what Vault said about the current token: the answer of an
// AppRole login, or of a lookup-self of a token from spec.vault.auth.token.
type lease struct {
	token string
	gen   uint64 // the generation of token (see Client.gen)
	// issued is when ttl was last reported; renewAt is when the renewer
	// acts next (renewFraction of ttl, minus jitter).
	issued  time.Time
	renewAt time.Time
	ttl     time.Duration // 0: the token never expires, nothing to renew
	// renewable is Vault's flag. A token source's token that is not
	// renewable (or has no TTL, like a root token) is left alone.
	renewable bool
	// requested is the TTL of the login, or the creation TTL of a token
	// source's token, and the increment asked for at renewal; a renewal that
	// returns much less is hitting the token's max TTL, and the next step is
	// a fresh login (AppRole) or nothing (token source: only its owner can
	// issue a new token).
	requested time.Duration
	nearMax   bool
	// done: the renewer has nothing more to do for this token (token source
	// only) although renewable says otherwise: it reached its max TTL, or
	// Vault refused its lookup or renewal.
	done bool
}

// setTTL records a TTL Vault just reported and schedules the next renewal.
func (l *lease) setTTL(ttl time.Duration) {
	l.issued, l.ttl = time.Now(), ttl
	if ttl > 0 {
		at := time.Duration(float64(ttl) * renewFraction)
		// Up to renewJitter of the TTL earlier, so that stores (and agents)
		// whose tokens were issued together do not renew in lockstep.
		at -= time.Duration(rand.Int64N(int64(float64(ttl)*renewJitter) + 1)) //nolint:gosec // G404: timing jitter, not a secret
		l.renewAt = l.issued.Add(at)
	}
}

// renewFraction is how far into its TTL a token is renewed: early enough
// that one failed attempt (Vault restarting) still leaves time to retry.
const renewFraction = 2.0 / 3.0

// renewJitter is the largest fraction of the TTL by which a renewal is
// moved earlier than renewFraction.
const renewJitter = 0.1

// renewRetry is the first wait after a failed renewal, lookup or login in
// the background; each further failure doubles it, up to renewRetryMax.
const (
	renewRetry    = 2 * time.Second
	renewRetryMax = time.Minute
)

// currentToken returns the token to use and its generation, logging in
// first when AppRole has no token yet. With a token source it also starts
// the renewer, which looks the token up and renews it if it can be renewed.
func (c *Client) currentToken(ctx context.Context, key string) (string, uint64, error) {
	if c.s.tokenSrc != nil {
		// Started on first use, not in NewClient, which must not contact
		// Vault (see Provider.NewClient).
		c.startRenewer()
	}
	c.mu.RLock()
	tok, gen := c.token, c.gen
	c.mu.RUnlock()
	if tok != "" {
		return tok, gen, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.RLock()
	tok, gen = c.token, c.gen
	c.mu.RUnlock()
	if tok != "" {
		return tok, gen, nil
	}
	if err := c.loginLocked(ctx, key); err != nil {
		return "", 0, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token, c.gen, nil
}

// refreshToken is called after a 403 with the token of generation gen. It
// reports whether a different token is now available, so the request is
// worth repeating once. With AppRole it logs in again (the token may have
// been revoked or expired); with a token source it reads the source again
// (a Vault Agent sink file may hold a newer token).
func (c *Client) refreshToken(ctx context.Context, key string, gen uint64) bool {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.RLock()
	cur, old := c.gen, c.token
	c.mu.RUnlock()
	if cur != gen {
		return true // someone else already got a new token
	}
	if c.s.appRole != nil {
		return c.loginLocked(ctx, key) == nil
	}
	tok, err := resolveValue(c.s.store, "spec.vault.auth.token", *c.s.tokenSrc)
	if err != nil || tok == old {
		return false
	}
	c.mu.Lock()
	c.token, c.gen = tok, c.gen+1
	c.mu.Unlock()
	c.notifyRenewer() // the renewer looks the new token up
	return true
}

// authResponse is the part of a login or renew answer dso uses.
type authResponse struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// loginLocked performs an AppRole login; c.loginMu must be held. The role
// and secret ids are read from their sources at every login, so a rotated
// secret id file is picked up without restarting the agent.
func (c *Client) loginLocked(ctx context.Context, key string) error {
	ar := c.s.appRole
	roleID, err := resolveValue(c.s.store, "spec.vault.auth.appRole.roleID", ar.roleID)
	if err != nil {
		return err
	}
	secretID, err := resolveValue(c.s.store, "spec.vault.auth.appRole.secretID", ar.secretID)
	if err != nil {
		return err
	}
	path := "auth/" + ar.path + "/login"
	body := map[string]string{"role_id": roleID, "secret_id": secretID}
	// No token on a login request: a stale one must not decide the outcome.
	status, b, err := c.send(ctx, key, http.MethodPut, "/v1/"+path, nil, body, "")
	if err != nil {
		return err
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusForbidden || status == http.StatusUnauthorized:
		return providers.Errorf(providers.KindPermissionDenied, c.s.store, key,
			"AppRole login at %s was refused (%d): check spec.vault.auth.appRole roleID and secretID, and that the secret id has not expired or run out of uses", path, status)
	case status == http.StatusNotFound:
		return providers.Errorf(providers.KindInvalidConfig, c.s.store, key, "no AppRole auth method at %s: check spec.vault.auth.appRole.path", path)
	case status < 200 || status >= 300:
		return c.statusError(key, status, path)
	}
	var ar2 authResponse
	if err := json.Unmarshal(b, &ar2); err != nil || ar2.Auth == nil || ar2.Auth.ClientToken == "" {
		return providers.Errorf(providers.KindUnavailable, c.s.store, key, "AppRole login at %s answered without a token", path)
	}
	ttl := time.Duration(ar2.Auth.LeaseDuration) * time.Second
	c.mu.Lock()
	c.token, c.gen = ar2.Auth.ClientToken, c.gen+1
	c.lease = lease{token: ar2.Auth.ClientToken, gen: c.gen, renewable: ar2.Auth.Renewable, requested: ttl}
	c.lease.setTTL(ttl)
	c.mu.Unlock()
	c.logins.Add(1)

	c.startRenewer()
	c.notifyRenewer()
	return nil
}

// startRenewer starts the renewer once; it runs until Close.
func (c *Client) startRenewer() {
	c.renewOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.bg.Err() != nil {
			return // closed: see Close
		}
		c.renewWG.Add(1)
		go c.renewLoop()
	})
}

// notifyRenewer tells the renewer that the token changed.
func (c *Client) notifyRenewer() {
	select {
	case c.renewNotify <- struct{}{}:
	default:
	}
}

// renewLoop is the one renewer of both auth methods. It acts on the lease
// of the current token:
//   - AppRole: at renewFraction of the TTL it renews the token, or logs in
//     again when the token cannot be renewed or renewal is running into the
//     max TTL.
//   - Token source: it first looks the token up (lookup-self); a renewable
//     token with a TTL is renewed at renewFraction of it; a token that is
//     not renewable, has no TTL (root) or reached its max TTL is left
//     alone. After the token is re-read from its source (refreshToken) it
//     starts over with the new token.
//
// A failed attempt is logged and retried after renewRetry, doubling up to
// renewRetryMax. Requests that still meet an expired or revoked token get a
// new one on their 403 (see do).
func (c *Client) renewLoop() {
	defer c.renewWG.Done()
	failures := 0
	for {
		c.mu.RLock()
		l, gen := c.lease, c.gen
		c.mu.RUnlock()

		// What to do for this token, and when; wait < 0: nothing until the
		// token changes.
		var wait time.Duration = -1
		lookup := c.s.appRole == nil && l.gen != gen
		switch {
		case lookup:
			wait = 0
		case c.s.appRole == nil && (l.done || !l.renewable || l.nearMax || l.ttl <= 0):
		case l.ttl > 0:
			wait = max(0, time.Until(l.renewAt)) // 0 when overdue
		}
		if failures > 0 && wait >= 0 {
			wait = retryDelay(c.retryBase, failures)
		}

		var fire <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			fire = t.C
		}
		stopTimer := func() {
			if t != nil {
				t.Stop()
			}
		}
		select {
		case <-c.bg.Done():
			stopTimer()
			return
		case <-c.renewNotify:
			stopTimer()
			failures = 0 // a new token: start afresh
			continue
		case <-fire:
		}

		ctx, cancel := context.WithTimeout(c.bg, requestTimeout)
		var err error
		switch {
		case c.s.appRole != nil:
			err = c.renewOrLogin(ctx, l)
		case lookup:
			err = c.lookupToken(ctx, gen)
		default:
			err = c.renewToken(ctx, l)
		}
		cancel()
		if err == nil {
			failures = 0
			continue
		}
		if c.bg.Err() != nil {
			return // closed while the request was in flight
		}
		failures++
		// Vault may be restarting. Until the token expires requests keep
		// working; after that they get a new token on their 403.
		// err is a providers error: it names the path, never the token.
		c.log.Error(err, "Vault token renewal failed; retrying",
			"attempt", failures, "retryIn", retryDelay(c.retryBase, failures).String())
	}
}

// retryDelay is the wait before retry number n (1, 2, ...).
func retryDelay(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < renewRetryMax; i++ {
		d *= 2
	}
	return min(d, renewRetryMax)
}

func (c *Client) renewOrLogin(ctx context.Context, l lease) error {
	if l.renewable && !l.nearMax {
		body := map[string]int64{"increment": int64(l.requested / time.Second)}
		status, b, err := c.send(ctx, "", http.MethodPut, "/v1/auth/token/renew-self", nil, body, l.token)
		if err == nil && status == http.StatusOK {
			var ar authResponse
			if json.Unmarshal(b, &ar) == nil && ar.Auth != nil {
				ttl := time.Duration(ar.Auth.LeaseDuration) * time.Second
				if ttl > 0 {
					c.extendLease(l, ttl)
					return nil
				}
				// A 0 TTL means the token is at its max TTL: log in now.
			}
		}
		// Renewal refused (revoked, past max TTL): fall through to a login.
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked(ctx, "")
}

// extendLease records a successful renewal of l's token with the new ttl,
// unless the token was replaced meanwhile.
func (c *Client) extendLease(l lease, ttl time.Duration) {
	c.mu.Lock()
	if c.lease.token == l.token && c.lease.gen == l.gen {
		c.lease.setTTL(ttl)
		// Less than asked for: the max TTL is near, so the next step is a
		// login (AppRole) or nothing more (token source), not another
		// renewal.
		c.lease.nearMax = ttl < l.requested*9/10
	}
	nearMax := c.lease.nearMax
	c.mu.Unlock()
	c.renewals.Add(1)
	c.log.V(1).Info("Vault token renewed", "ttl", ttl.String())
	if nearMax && c.s.appRole == nil {
		c.log.Info("Vault token is near its max TTL and is not renewed any more: the token source must provide a new token before it expires", "ttl", ttl.String())
	}
}

// lookupResponse is the part of a lookup-self answer dso uses. The answer
// also holds the token itself (data.id): it is never logged or kept.
type lookupResponse struct {
	Data *struct {
		TTL         int64 `json:"ttl"`
		CreationTTL int64 `json:"creation_ttl"`
		Renewable   bool  `json:"renewable"`
	} `json:"data"`
}

// lookupToken looks up the token source's token of generation gen and
// records its lease, so the renewer knows whether and when to renew it.
func (c *Client) lookupToken(ctx context.Context, gen uint64) error {
	c.mu.RLock()
	tok, cur := c.token, c.gen
	c.mu.RUnlock()
	if cur != gen {
		return nil // replaced meanwhile; the loop starts over
	}
	status, b, err := c.send(ctx, "", http.MethodGet, "/v1/auth/token/lookup-self", nil, nil, tok)
	if err != nil {
		return err
	}
	defer clear(b) // the answer holds the token
	if status != http.StatusOK {
		return c.tokenRefused(ctx, lease{token: tok, gen: gen}, status, "auth/token/lookup-self")
	}
	var lr lookupResponse
	if err := json.Unmarshal(b, &lr); err != nil || lr.Data == nil {
		return providers.Errorf(providers.KindUnavailable, c.s.store, "", "Vault's answer to auth/token/lookup-self is not a token lookup")
	}
	ttl := time.Duration(lr.Data.TTL) * time.Second
	requested := time.Duration(lr.Data.CreationTTL) * time.Second
	if requested <= 0 {
		requested = ttl
	}
	l := lease{token: tok, gen: gen, renewable: lr.Data.Renewable, requested: requested}
	l.setTTL(ttl)
	switch {
	case ttl <= 0:
		c.log.V(1).Info("Vault token has no TTL (never expires): not renewed")
	case !l.renewable:
		c.log.Info("Vault token is not renewable: dso does not renew it; the token source must provide a new token before it expires", "ttl", ttl.String())
	default:
		c.log.V(1).Info("Vault token will be renewed", "ttl", ttl.String(), "increment", requested.String())
	}
	c.mu.Lock()
	if c.gen == gen {
		c.lease = l
	}
	c.mu.Unlock()
	return nil
}

// renewToken renews the token source's token of lease l.
func (c *Client) renewToken(ctx context.Context, l lease) error {
	body := map[string]int64{"increment": int64(l.requested / time.Second)}
	status, b, err := c.send(ctx, "", http.MethodPut, "/v1/auth/token/renew-self", nil, body, l.token)
	if err != nil {
		return err
	}
	defer clear(b) // the answer holds the token
	if status != http.StatusOK {
		return c.tokenRefused(ctx, l, status, "auth/token/renew-self")
	}
	var ar authResponse
	if err := json.Unmarshal(b, &ar); err != nil || ar.Auth == nil {
		return providers.Errorf(providers.KindUnavailable, c.s.store, "", "Vault's answer to auth/token/renew-self is not a token renewal")
	}
	ttl := time.Duration(ar.Auth.LeaseDuration) * time.Second
	if ttl <= 0 {
		c.finishLease(l)
		c.log.Info("Vault token reached its max TTL and cannot be renewed: the token source must provide a new token")
		return nil
	}
	c.extendLease(l, ttl)
	return nil
}

// tokenRefused handles a non-200 answer to the renewer's lookup or renewal
// of a token source's token. Statuses worth retrying (5xx, 429) are
// returned as errors. Any other refusal means the token is revoked or
// expired, or its policy lacks the path: the source is read again (a Vault
// Agent sink may hold a new token, which the renewer then follows);
// otherwise the token is left alone until a request's 403 brings a new one.
func (c *Client) tokenRefused(ctx context.Context, l lease, status int, path string) error {
	if status >= 500 || status == http.StatusTooManyRequests {
		return c.statusError("", status, path)
	}
	if c.refreshToken(ctx, "", l.gen) {
		return nil
	}
	c.finishLease(l)
	c.log.Info("Vault refused the token's "+path+": it is not renewed (revoked or expired, or its policy lacks the default policy's "+path+")", "status", status)
	return nil
}

// finishLease marks l's token as one the renewer leaves alone.
func (c *Client) finishLease(l lease) {
	c.mu.Lock()
	if c.gen == l.gen {
		c.lease = l
		c.lease.done = true
	}
	c.mu.Unlock()
}
