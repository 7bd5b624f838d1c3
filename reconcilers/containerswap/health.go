package containerswap

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
)

// gate waits until the container is healthy, or fails. With a HEALTHCHECK
// it also runs the check command itself through exec at a short interval,
// because Docker runs the first check only after a whole interval (and
// start_interval needs API 1.44). Without one, healthy means running and
// not restarted for StablePeriod. The probes seen are returned either way:
// they are the health diagnostics of history and status.
func (r *Reconciler) gate(ctx context.Context, id string, timeout time.Duration) ([]HealthProbe, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var probes []HealthProbe
	var stableSince time.Time
	lastDockerLog := 0
	for {
		c, err := r.Engine.Inspect(ctx, id)
		if err != nil {
			return probes, fmt.Errorf("inspect candidate: %w", err)
		}
		st := c.State
		if st == nil {
			return probes, fmt.Errorf("candidate has no state")
		}
		if st.Health != nil {
			for _, l := range st.Health.Log[min(lastDockerLog, len(st.Health.Log)):] {
				probes = appendProbe(probes, HealthProbe{Time: l.End, ExitCode: l.ExitCode, Output: l.Output, Source: "docker"})
			}
			lastDockerLog = len(st.Health.Log)
		}
		switch {
		case !st.Running && !st.Restarting:
			probes = appendProbe(probes, HealthProbe{Time: r.now(), ExitCode: st.ExitCode, Output: fmt.Sprintf("container exited with code %d %s", st.ExitCode, st.Error), Source: "state"})
			return probes, fmt.Errorf("candidate exited with code %d", st.ExitCode)
		case st.Restarting:
			return probes, fmt.Errorf("candidate is restarting")
		case st.Health != nil && st.Health.Status == container.Unhealthy:
			return probes, fmt.Errorf("candidate is unhealthy")
		case st.Health != nil && st.Health.Status == container.Healthy:
			return probes, nil
		case hasHealthcheck(c):
			code, out, err := r.Engine.Exec(ctx, id, execCommand(c.Config.Healthcheck.Test))
			if err == nil {
				probes = appendProbe(probes, HealthProbe{Time: r.now(), ExitCode: code, Output: out, Source: "exec"})
				if code == 0 {
					return probes, nil
				}
			}
		default:
			if stableSince.IsZero() {
				stableSince = r.now()
			}
			if r.now().Sub(stableSince) >= r.stablePeriod() {
				return probes, nil
			}
		}
		select {
		case <-ctx.Done():
			return probes, fmt.Errorf("candidate not healthy within %s", timeout)
		case <-time.After(r.pollInterval()):
		}
	}
}

func appendProbe(ps []HealthProbe, p HealthProbe) []HealthProbe {
	if len(p.Output) > 512 {
		p.Output = p.Output[:512]
	}
	ps = append(ps, p)
	if len(ps) > 10 {
		ps = ps[len(ps)-10:]
	}
	return ps
}

func hasHealthcheck(c container.InspectResponse) bool {
	hc := c.Config.Healthcheck
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// execCommand turns a HEALTHCHECK test into an exec argv.
func execCommand(test []string) []string {
	switch test[0] {
	case "CMD":
		return test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", test[1]}
	}
	return test
}
