package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/config"
)

// agentTimeout bounds every call of an operator command to the agent except
// the rotate stream: the agent answers from memory, so a slow answer means a
// wedged agent, and the operator should hear that rather than wait forever.
const agentTimeout = 15 * time.Second

// now is the clock of the operator commands' human output (ages, "ago").
// Tests replace it so that golden files stay stable.
var now = time.Now

// agentTarget is what an operator command needs to reach the agent: the
// client for its socket and the config it was resolved from.
type agentTarget struct {
	client *api.Client
	socket string
	// path is the config file that was resolved ("" for built-in defaults).
	path string
	// bundle is the loaded config; nil when it could not be loaded.
	bundle *config.Bundle
	// loadErr is why the config could not be loaded (doctor reports it).
	loadErr error
}

// resolveAgent finds the agent's socket the way the agent itself does:
// resolve the config file, load it, read agent.api.socket. A config that
// does not load is not fatal here: the socket falls back to what the file
// still says or to the default, because an operator debugging a broken
// config still wants `status` to reach a running agent (doctor reports the
// load error itself).
func resolveAgent(cmd *cobra.Command) (*agentTarget, error) {
	path, _, err := resolveConfig(cmd)
	if err != nil {
		return nil, err
	}
	t := &agentTarget{path: path}
	b, err := config.Load(path)
	if err != nil {
		t.loadErr = err
	} else {
		t.bundle = b
	}
	t.socket = v1alpha1.DefaultAPISocket
	if b != nil && b.Agent.Spec.Agent.API.Socket != "" {
		t.socket = b.Agent.Spec.Agent.API.Socket
	}
	t.client = api.NewClient(t.socket)
	return t, nil
}

// callCtx is the context of one request to the agent.
func callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, agentTimeout)
}

// wrapAgentErr prefixes an agent error with what was being done, except
// "the agent is not running", which is the whole story and reads best as is.
func wrapAgentErr(err error, doing string) error {
	if errors.Is(err, api.ErrAgentDown) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, err)
}
