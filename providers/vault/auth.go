package vault

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/dso-dev/dso/providers"
)

// lease is what Vault said about the current AppRole token.
type lease struct {
	token     string
	issued    time.Time
	ttl       time.Duration // 0: the token never expires, nothing to renew
	renewable bool
	// requested is the TTL of the login; a renewal that returns much less is
	// hitting the token's max TTL, and the next step is a fresh login.
	requested time.Duration
	nearMax   bool
}

// renewFraction is how far into its TTL a token is renewed: early enough
// that one failed attempt (Vault restarting) still leaves time to retry.
const renewFraction = 2.0 / 3.0

// renewRetry is the wait after a failed renewal or login in the background.
const renewRetry = 2 * time.Second

// currentToken returns the token to use and its generation, logging in
// first when AppRole has no token yet.
func (c *Client) currentToken(ctx context.Context, key string) (string, uint64, error) {
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
	c.lease = lease{token: ar2.Auth.ClientToken, issued: time.Now(), ttl: ttl, renewable: ar2.Auth.Renewable, requested: ttl}
	c.mu.Unlock()
	c.logins.Add(1)

	c.renewOnce.Do(func() {
		c.renewWG.Add(1)
		go c.renewLoop()
	})
	select {
	case c.renewNotify <- struct{}{}:
	default:
	}
	return nil
}

// renewLoop keeps the AppRole token valid: at renewFraction of its TTL it
// renews the token, or logs in again when the token cannot be renewed or
// renewal is running into the max TTL. Requests that still meet an expired
// or revoked token log in again on their 403 (see do).
func (c *Client) renewLoop() {
	defer c.renewWG.Done()
	for {
		c.mu.RLock()
		l := c.lease
		c.mu.RUnlock()

		var fire <-chan time.Time
		var t *time.Timer
		if l.ttl > 0 {
			t = time.NewTimer(time.Until(l.issued.Add(time.Duration(float64(l.ttl) * renewFraction))))
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
			continue
		case <-fire:
		}

		ctx, cancel := context.WithTimeout(c.bg, requestTimeout)
		err := c.renewOrLogin(ctx, l)
		cancel()
		if err != nil {
			// Vault may be restarting; try again shortly. Until the token
			// expires requests keep working; after that they log in on 403.
			select {
			case <-c.bg.Done():
				return
			case <-time.After(renewRetry):
			}
		}
	}
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
					c.mu.Lock()
					if c.lease.token == l.token { // not replaced by a login meanwhile
						c.lease.issued, c.lease.ttl = time.Now(), ttl
						// Less than asked for: the max TTL is near, so the
						// next step is a login, not another renewal.
						c.lease.nearMax = ttl < l.requested*9/10
					}
					c.mu.Unlock()
					c.renewals.Add(1)
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
