// Command vaultdev runs a real, in-process HashiCorp Vault 1.14.1 dev server
// for dso's tests. No Vault binary can be downloaded on the machines dso is
// built on, but Vault's own Go module (MPL-2.0 up to 1.14.x) contains the
// test helpers Vault uses for its own HTTP tests; this program wires them
// into a small server:
//
//   - an unsealed in-memory core with the real KV plugin as "kv" and the
//     AppRole auth method as "approle";
//   - secret/ as KV version 2 (the Vault default), kv1/ as KV version 1,
//     auth/approle/ enabled;
//   - the real HTTP handler on a loopback listener (-listen, default
//     127.0.0.1:0 picks a free port).
//
// When it is ready it prints exactly one JSON line to stdout,
// {"address":"http://127.0.0.1:PORT","token":"<root token>"}, and it exits
// cleanly on SIGINT or SIGTERM. It lives in its own Go module so that the
// Vault server's large dependency tree never enters dso's go.mod.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	log "github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	credAppRole "github.com/hashicorp/vault/builtin/credential/approle"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
	"github.com/mitchellh/go-testing-interface"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to serve the Vault HTTP API on")
	logLevel := flag.String("log-level", "warn", "Vault server log level (trace, debug, info, warn, error)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen %q is not host:port: %w", *listen, err)
	}
	// This server has a well-known root token and no TLS: it must never be
	// reachable from another machine.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback IP addresses are allowed (e.g. 127.0.0.1:0)", *listen)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	addr := "http://" + ln.Addr().String()

	logger := log.New(&log.LoggerOptions{Name: "vaultdev", Level: log.LevelFromString(*logLevel), Output: os.Stderr})

	// RuntimeT turns the helpers' t.Fatal into a panic, which is what we want
	// here: a dev server that cannot start should crash loudly.
	core, _, rootToken := vault.TestCoreUnsealedWithConfig(&testing.RuntimeT{}, &vault.CoreConfig{
		Logger:             logger,
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": credAppRole.Factory},
	})

	srv := &http.Server{
		Handler:           vaulthttp.Handler.Handler(&vault.HandlerProperties{Core: core, ListenerConfig: nil}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	if err := setup(addr, rootToken); err != nil {
		_ = srv.Close()
		return err
	}

	line, err := json.Marshal(struct {
		Address string `json:"address"`
		Token   string `json:"token"`
	}{addr, rootToken})
	if err != nil {
		return err
	}
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = core.Shutdown()
	return nil
}

// setup shapes the mounts the way a `vault server -dev` has them (secret/ is
// KV v2) plus what dso's tests need (a KV v1 mount and AppRole). It goes
// through the HTTP API like any client, so the handler is exercised too.
func setup(addr, token string) error {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	c.SetToken(token)
	sys := c.Sys()

	// The test core mounts secret/ as KV v1; a fresh v2 mount is ready at
	// once, whereas tuning v1 -> v2 runs an asynchronous upgrade.
	if err := sys.Unmount("secret"); err != nil {
		return fmt.Errorf("unmounting secret/: %w", err)
	}
	if err := sys.Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mounting secret/ as KV v2: %w", err)
	}
	if err := sys.Mount("kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		return fmt.Errorf("mounting kv1/ as KV v1: %w", err)
	}
	if err := sys.EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return fmt.Errorf("enabling approle auth: %w", err)
	}

	// A KV v2 mount answers reads only after its first internal upgrade
	// check; wait until a write succeeds so callers never race it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Logical().Write("secret/data/vaultdev-ready", map[string]any{"data": map[string]any{"ok": "1"}})
		if err == nil {
			_, err = c.Logical().Delete("secret/metadata/vaultdev-ready")
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("secret/ (KV v2) did not become ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
