package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/internal/agent"
	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/delivery"
	"github.com/dso-dev/dso/internal/docker"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/all"
)

// Check statuses, in the order of severity.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
	checkSkip = "skip"
)

// Thresholds of the doctor checks.
const (
	// providerTimeout bounds one store's local Validate (agent down).
	providerTimeout = 5 * time.Second
	// dockerTimeout bounds each Docker call of doctor.
	dockerTimeout = 5 * time.Second
	// stateFreeWarn: warn below this share of free space in state.dir.
	stateFreeWarn = 10.0
	// cacheHitWarn and cacheMinLookups: the guide's "cache hit rate <80%"
	// symptom, judged only once there were enough lookups to mean anything.
	cacheHitWarn    = 80.0
	cacheMinLookups = 20
)

// doctorDocker is the part of the Docker adapter doctor uses.
type doctorDocker interface {
	Version(ctx context.Context) (apiVersion, engineVersion string, err error)
	List(ctx context.Context, labels map[string]string) ([]container.Summary, error)
	Close() error
}

// The host probes of doctor; tests replace them so that the checks' logic
// is tested independently of the machine's Docker, /proc and mounts.
var (
	newDoctorDocker = func() (doctorDocker, error) { return docker.NewClient() }
	isTmpfs         = delivery.IsTmpfs
	diskUsage       = statfsUsage
	procUsage       = readProcUsage
	canWrite        = func(dir string) error { return unix.Access(dir, unix.W_OK) }
)

// doctorReport is `doctor --json`.
type doctorReport struct {
	Verdict string      `json:"verdict"`
	Checks  []api.Check `json:"checks"`
}

func newDoctorCommand(s Streams) *cobra.Command {
	var level string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the host, the agent, the stores and the containers; one-line verdict first",
		Long: `Run named checks and print a one-line verdict, then one line per check:
status (ok, warn, fail, skip), id, name and a short detail.

  docker           Docker engine reachable, API version
  agent            agent answers on its socket; socket permissions
  config           the config file loads
  provider:<store> each store reachable and authenticated
  tmpfs            agent.delivery.dir is a tmpfs (secrets never on disk)
  state            state.dir writable, free space
  bindings         each binding selects at least one running container
  containers       managed containers healthy
  cache            cache hit rate

The checks work with the agent down: stores are then checked from this
process ("checked locally, agent down"). --level full adds details under
each check (connection details, container health, cache effectiveness, the
agent's memory and CPU time) and a remediation line for every failing one.
Exit status 0 when no check fails, 1 otherwise.`,
		Example: `  dso doctor
  dso doctor --level full
  dso doctor | grep -A 2 provider
  dso doctor --json | jq '.checks[] | select(.status == "fail")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if level != "basic" && level != "full" {
				return fmt.Errorf("--level %q: use basic or full", level)
			}
			t, err := resolveAgent(cmd)
			if err != nil {
				return err
			}
			checks := runDoctor(cmd.Context(), t)
			verdict, failing := doctorVerdict(checks)
			if asJSON {
				if err := writeJSON(s.Out, doctorReport{Verdict: verdict, Checks: checks}); err != nil {
					return err
				}
			} else if err := writeDoctor(s.Out, verdict, checks, level == "full"); err != nil {
				return err
			}
			if failing > 0 {
				return fmt.Errorf("%s failing", plural(failing, "check"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&level, "level", "basic", "basic, or full for details and remediation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict and checks as JSON")
	return cmd
}

// doctorEnv is what the checks share.
type doctorEnv struct {
	t        *agentTarget
	agentUp  bool
	status   api.Status
	agentErr error
	docker   doctorDocker
	dockerOK bool
}

// runDoctor runs every check. Checks that the agent can answer better
// (provider:*, tmpfs and state, which it sees as the user it runs as) come
// from its /v1/doctor when it is up; the rest run here so that doctor is
// useful precisely when the agent is not.
func runDoctor(ctx context.Context, t *agentTarget) []api.Check {
	if ctx == nil {
		ctx = context.Background()
	}
	env := &doctorEnv{t: t}
	cctx, cancel := context.WithTimeout(ctx, agentTimeout)
	env.status, env.agentErr = t.client.Status(cctx)
	cancel()
	env.agentUp = env.agentErr == nil
	var agentChecks []api.Check
	if env.agentUp {
		cctx, cancel := context.WithTimeout(ctx, agentTimeout)
		agentChecks, _ = t.client.Doctor(cctx) // missing agent checks fall back to the local ones
		cancel()
	}
	fromAgent := map[string]api.Check{}
	for _, c := range agentChecks {
		fromAgent[c.ID] = c
	}
	prefer := func(id string, local func() api.Check) api.Check {
		if c, ok := fromAgent[id]; ok {
			delete(fromAgent, id)
			return c
		}
		return local()
	}

	checks := []api.Check{env.checkDocker(ctx), env.checkAgent(), env.checkConfig()}
	for _, st := range storesOf(t) {
		id := "provider:" + st.Name
		checks = append(checks, env.enrichProvider(prefer(id, func() api.Check { return env.checkProviderLocally(ctx, st) }), st))
	}
	checks = append(checks,
		prefer("tmpfs", env.checkTmpfs),
		prefer("state", env.checkState),
		env.checkBindings(ctx),
		env.checkContainers(ctx),
		env.checkCache(),
	)
	// Agent checks this CLI does not know (added later) are shown too, in
	// the agent's order.
	for _, c := range agentChecks {
		if _, left := fromAgent[c.ID]; left {
			checks = append(checks, c)
		}
	}
	if env.docker != nil {
		_ = env.docker.Close()
	}
	for i := range checks {
		if checks[i].Status == checkFail && checks[i].Remediation == "" {
			checks[i].Remediation = "see the detail above, then run 'dso doctor' again"
		}
	}
	return checks
}

// storesOf lists the stores of the config file. Stores applied to a
// running agent are covered by its own provider:* checks, which runDoctor
// appends.
func storesOf(t *agentTarget) []v1alpha1.SecretStore {
	if t.bundle == nil {
		return nil
	}
	return t.bundle.Stores
}

func (e *doctorEnv) checkDocker(ctx context.Context) api.Check {
	c := api.Check{ID: "docker", Name: "docker engine", Extra: map[string]string{}}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock (default)"
	}
	c.Extra["host"] = host
	d, err := newDoctorDocker()
	if err != nil {
		c.Status, c.Detail = checkFail, err.Error()
		c.Remediation = "check DOCKER_HOST and that the docker CLI works as this user"
		return c
	}
	e.docker = d
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	apiV, engineV, err := d.Version(cctx)
	if err != nil {
		c.Status, c.Detail = checkFail, "unreachable: "+err.Error()
		c.Remediation = "start the Docker engine (systemctl start docker) or fix DOCKER_HOST; run 'docker version' to see the same error"
		return c
	}
	e.dockerOK = true
	c.Extra["api version"], c.Extra["engine version"] = apiV, engineV
	c.Status, c.Detail = checkOK, fmt.Sprintf("reachable, engine %s, API %s", engineV, apiV)
	return c
}

func (e *doctorEnv) checkAgent() api.Check {
	c := api.Check{ID: "agent", Name: "dso agent", Extra: map[string]string{"socket": e.t.socket}}
	perm, permOK := socketPermissions(e.t.socket)
	if perm != "" {
		c.Extra["socket permissions"] = perm
	}
	if !e.agentUp {
		c.Status = checkFail
		switch {
		case errors.Is(e.agentErr, api.ErrAgentDown):
			c.Detail = "not running: nothing answers on " + e.t.socket
			c.Remediation = "start it with 'dso system enable' (or 'systemctl start dso-agent'), then check 'dso system logs -n 30'"
		default:
			c.Detail = e.agentErr.Error()
			c.Remediation = "add your user to the dso group (sudo usermod -aG dso $USER) or check 'dso system logs -p err'"
		}
		return c
	}
	r := e.status.Runtime
	c.Extra["pid"] = strconv.Itoa(r.PID)
	c.Extra["version"] = r.Version
	c.Extra["uptime"] = shortDuration(time.Duration(r.UptimeSeconds * float64(time.Second)))
	if r.PID > 0 {
		if rss, cpu, err := procUsage(r.PID); err == nil {
			c.Extra["memory (VmRSS)"] = rss
			c.Extra["cpu time"] = cpu
		}
	}
	c.Detail = fmt.Sprintf("running (pid %d, %s), socket %s", r.PID, orDash(r.Version), orDash(perm))
	c.Status = checkOK
	if !permOK {
		c.Status = checkWarn
		c.Detail += ": want mode 0660 and group " + api.GroupName
		c.Remediation = "restart the agent ('dso system restart'): it creates the socket 0660 root:" + api.GroupName
	}
	return c
}

// socketPermissions describes the socket's mode and group ("0660 root:dso")
// and whether they are what the agent creates: 0660, group dso when that
// group exists.
func socketPermissions(path string) (string, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	mode := st.Mode().Perm()
	owner, group := "?", "?"
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner, group = strconv.Itoa(int(sys.Uid)), strconv.Itoa(int(sys.Gid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
	}
	ok := mode == 0o660
	if _, err := user.LookupGroup(api.GroupName); err == nil && group != api.GroupName {
		ok = false
	}
	return fmt.Sprintf("%04o %s:%s", mode, owner, group), ok
}

func (e *doctorEnv) checkConfig() api.Check {
	c := api.Check{ID: "config", Name: "configuration", Extra: map[string]string{}}
	path := e.t.path
	if path == "" {
		path = "none (built-in defaults)"
	}
	c.Extra["file"] = path
	if e.t.loadErr != nil {
		n := len(configErrors(e.t.loadErr))
		if n == 0 {
			n = 1
		}
		c.Status, c.Detail = checkFail, fmt.Sprintf("%s has %s: %v", path, plural(n, "error"), firstLine(e.t.loadErr.Error()))
		c.Remediation = "run 'dso config validate' to see every error with its file:line"
		return c
	}
	b := e.t.bundle
	c.Status, c.Detail = checkOK, fmt.Sprintf("%s valid (%s, %s)", path, plural(len(b.Stores), "store"), plural(len(b.Bindings), "binding"))
	return c
}

// checkProviderLocally builds the store's client like the agent would and
// asks it to validate (connect and authenticate), bounded by 5 s.
func (e *doctorEnv) checkProviderLocally(ctx context.Context, st v1alpha1.SecretStore) api.Check {
	c := api.Check{ID: "provider:" + st.Name, Name: "provider " + st.Name, Extra: map[string]string{}}
	suffix := ""
	if !e.agentUp {
		suffix = " (checked locally, agent down)"
	}
	cctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	cl, err := all.Registry().NewClient(cctx, &st)
	if err == nil {
		err = cl.Validate(cctx)
		_ = cl.Close()
	}
	if err != nil {
		word := "unavailable"
		switch providers.KindOf(err) {
		case providers.KindPermissionDenied, providers.KindInvalidConfig:
			word = "unhealthy"
		}
		c.Status, c.Detail = checkFail, word+": "+err.Error()+suffix
		c.Remediation = providerRemediation(providers.KindOf(err))
		return c
	}
	c.Status, c.Detail = checkOK, "reachable and authenticated"+suffix
	return c
}

func providerRemediation(k providers.Kind) string {
	switch k {
	case providers.KindPermissionDenied:
		return "check the store's credentials (fromEnv/fromFile) and their policy in the provider"
	case providers.KindInvalidConfig:
		return "fix the store's spec ('dso config validate') and its credential sources"
	default:
		return "check DNS, firewall and the provider's address ('dso config show | grep -A 5 providers'); then 'dso system restart'"
	}
}

// enrichProvider adds connection details from the spec and, when the agent
// is up, what its cache measured (latency, circuit breaker).
func (e *doctorEnv) enrichProvider(c api.Check, st v1alpha1.SecretStore) api.Check {
	if c.Extra == nil {
		c.Extra = map[string]string{}
	}
	name, _ := providers.ProviderName(&st)
	if _, ok := c.Extra["provider"]; !ok { // the agent's checks may say it already
		c.Extra["type"] = orDash(name)
	}
	if addr := storeAddress(st.Spec); addr != "" {
		c.Extra["address"] = addr
	}
	for _, p := range e.status.Providers {
		if p.Store != st.Name {
			continue
		}
		c.Extra["health"] = p.Health
		c.Extra["circuit"] = p.Circuit
		c.Extra["latency min/avg/max"] = fmt.Sprintf("%s/%s/%s", millis(p.LatencyMs.Min), millis(p.LatencyMs.Avg), millis(p.LatencyMs.Max))
		c.Extra["calls/errors"] = fmt.Sprintf("%d/%d", p.Calls, p.Errors)
	}
	return c
}

// storeAddress is where a store lives, for "connection details".
func storeAddress(s v1alpha1.SecretStoreSpec) string {
	switch {
	case s.Vault != nil:
		return s.Vault.Address
	case s.AWS != nil:
		if s.AWS.Endpoint != "" {
			return s.AWS.Endpoint + " (" + s.AWS.Region + ")"
		}
		return "region " + s.AWS.Region
	case s.Azure != nil:
		return s.Azure.VaultURL
	case s.Local != nil:
		return s.Local.Path
	case s.File != nil:
		return s.File.Dir
	case s.Env != nil:
		return "environment, prefix " + orDash(s.Env.Prefix)
	}
	return ""
}

func (e *doctorEnv) agentSpec() v1alpha1.AgentConfig {
	if e.t.bundle != nil {
		return e.t.bundle.Agent
	}
	var a v1alpha1.AgentConfig
	a.Default()
	return a
}

func (e *doctorEnv) checkTmpfs() api.Check {
	dir := e.agentSpec().Spec.Agent.Delivery.Dir
	c := api.Check{ID: "tmpfs", Name: "secrets tmpfs", Extra: map[string]string{"dir": dir}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if !e.agentUp {
			c.Status, c.Detail = checkWarn, dir+" does not exist yet: the agent mounts it when it starts"
			return c
		}
		c.Status, c.Detail = checkFail, dir+" does not exist although the agent runs"
		c.Remediation = "check 'dso system logs -p err' for the mount error; the agent needs root or CAP_SYS_ADMIN to mount it"
		return c
	}
	ok, err := isTmpfs(dir)
	switch {
	case err != nil:
		c.Status, c.Detail = checkFail, err.Error()
		c.Remediation = "make " + dir + " readable by this user, or run doctor as root"
	case !ok:
		c.Status, c.Detail = checkFail, dir+" is not a tmpfs: secret files would be written to disk"
		c.Remediation = "mount a tmpfs there (mount -t tmpfs -o mode=0755,size=64m tmpfs " + dir + ") or let the agent mount it: restart it as root"
	default:
		c.Status, c.Detail = checkOK, dir+" is a tmpfs"
	}
	return c
}

func (e *doctorEnv) checkState() api.Check {
	dir := e.agentSpec().Spec.State.Dir
	c := api.Check{ID: "state", Name: "state directory", Extra: map[string]string{"dir": dir}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		c.Status, c.Detail = checkWarn, dir+" does not exist yet: the agent creates it when it starts"
		return c
	}
	free, total, err := diskUsage(dir)
	if err != nil {
		c.Status, c.Detail = checkFail, err.Error()
		c.Remediation = "check that " + dir + " is a directory this user can read"
		return c
	}
	pct := 100.0
	if total > 0 {
		pct = float64(free) * 100 / float64(total)
	}
	c.Extra["free"] = fmt.Sprintf("%s of %s (%s)", bytesIEC(clampInt64(free)), bytesIEC(clampInt64(total)), percent(pct))
	detail := fmt.Sprintf("%s writable, %s free", dir, percent(pct))
	status := checkOK
	if werr := canWrite(dir); werr != nil {
		if os.Geteuid() == 0 {
			c.Status, c.Detail = checkFail, dir+" is not writable: "+werr.Error()
			c.Remediation = "check the mount (read-only?) and ownership of " + dir
			return c
		}
		// The agent runs as root; an operator's shell usually cannot write
		// there, and that is fine.
		detail = fmt.Sprintf("%s not writable by uid %d (the agent runs as root; run doctor as root to check), %s free", dir, os.Geteuid(), percent(pct))
		status = checkWarn
	}
	if pct < stateFreeWarn {
		status = checkWarn
		detail += ": less than 10% free"
		c.Remediation = "free space on the file system of " + dir + " (df -h " + dir + ")"
	}
	c.Status, c.Detail = status, detail
	return c
}

func (e *doctorEnv) checkBindings(ctx context.Context) api.Check {
	c := api.Check{ID: "bindings", Name: "bindings select containers", Extra: map[string]string{}}
	type sel struct {
		name string
		sel  v1alpha1.Selector
	}
	var bindings []sel
	if e.agentUp {
		cctx, cancel := context.WithTimeout(ctx, agentTimeout)
		views, err := e.t.client.Bindings(cctx)
		cancel()
		if err != nil {
			c.Status, c.Detail = checkSkip, "listing the agent's bindings failed: "+err.Error()
			return c
		}
		for _, v := range views {
			bindings = append(bindings, sel{v.Name, v.Spec.Target.Selector})
		}
	} else if e.t.bundle != nil {
		for _, b := range e.t.bundle.Bindings {
			bindings = append(bindings, sel{b.Name, b.Spec.Target.Selector})
		}
	}
	if len(bindings) == 0 {
		c.Status, c.Detail = checkOK, "no bindings declared"
		return c
	}
	if !e.dockerOK {
		c.Status, c.Detail = checkSkip, "docker unreachable"
		return c
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	list, err := e.docker.List(cctx, nil)
	if err != nil {
		c.Status, c.Detail = checkSkip, "listing containers failed: "+err.Error()
		return c
	}
	var empty []string
	for _, b := range bindings {
		if sw := b.sel.Swarm; sw != nil {
			// A Swarm binding selects a service, not containers; its
			// status (dso describe) says whether the service is there.
			c.Extra[b.name] = "Swarm service " + sw.Service
			continue
		}
		var names []string
		for _, ct := range list {
			if ct.State != "running" {
				continue
			}
			if agent.Matches(b.sel, containerName(ct), ct.Labels) {
				names = append(names, containerName(ct))
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			empty = append(empty, b.name)
			c.Extra[b.name] = "no running container"
		} else {
			c.Extra[b.name] = strings.Join(names, ", ")
		}
	}
	if len(empty) > 0 {
		c.Status = checkWarn
		c.Detail = fmt.Sprintf("%d of %s select no running container: %s", len(empty), plural(len(bindings), "binding"), strings.Join(empty, ", "))
		c.Remediation = "check the selectors ('dso describe binding NAME') against 'docker ps'"
		return c
	}
	c.Status, c.Detail = checkOK, fmt.Sprintf("%s, each selects a running container", plural(len(bindings), "binding"))
	return c
}

func containerName(ct container.Summary) string {
	if len(ct.Names) > 0 {
		return strings.TrimPrefix(ct.Names[0], "/")
	}
	return shortHash(ct.ID)
}

// containerHealth reads the health from a container list entry: the list's
// Status ("Up 3 minutes (healthy)") is the only health field API 1.41 has.
func containerHealth(ct container.Summary) string {
	switch {
	case ct.State != "running":
		return ct.State
	case strings.Contains(ct.Status, "(unhealthy)"):
		return "unhealthy"
	case strings.Contains(ct.Status, "(health: starting)"):
		return "starting"
	case strings.Contains(ct.Status, "(healthy)"):
		return "healthy"
	}
	return "running, no healthcheck"
}

func (e *doctorEnv) checkContainers(ctx context.Context) api.Check {
	c := api.Check{ID: "containers", Name: "managed containers", Extra: map[string]string{}}
	if !e.dockerOK {
		c.Status, c.Detail = checkSkip, "docker unreachable"
		return c
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	list, err := e.docker.List(cctx, map[string]string{docker.LabelManaged: "true"})
	if err != nil {
		c.Status, c.Detail = checkSkip, "listing containers failed: "+err.Error()
		return c
	}
	if len(list) == 0 {
		c.Status, c.Detail = checkOK, "no managed containers"
		return c
	}
	var bad, stopped []string
	healthy, targets := 0, 0
	for _, ct := range list {
		h := containerHealth(ct)
		// A candidate of a swap in progress (it carries the id it
		// replaces) is judged by that swap's health gate, not here: a
		// created-not-started or still-starting candidate is normal.
		if ct.Labels[docker.LabelReplaces] != "" {
			c.Extra[containerName(ct)] = h + " (candidate of a rotation in progress)"
			continue
		}
		targets++
		c.Extra[containerName(ct)] = h
		switch h {
		case "healthy", "running, no healthcheck", "starting":
			healthy++
		case "exited", "created", "paused":
			stopped = append(stopped, containerName(ct)+" "+h)
		default: // unhealthy, restarting, dead
			bad = append(bad, containerName(ct)+" "+h)
		}
	}
	sort.Strings(bad)
	sort.Strings(stopped)
	switch {
	case len(bad) > 0:
		c.Status = checkFail
		c.Detail = fmt.Sprintf("%d of %d managed containers unhealthy: %s", len(bad), targets, strings.Join(bad, ", "))
		c.Remediation = "docker ps --filter health=unhealthy; docker inspect NAME --format '{{json .State.Health}}'; 'dso history' for failed rotations"
	case len(stopped) > 0:
		c.Status = checkWarn
		c.Detail = fmt.Sprintf("%d of %d managed containers not running: %s", len(stopped), targets, strings.Join(stopped, ", "))
		c.Remediation = "start them (docker start NAME) or remove them if they are no longer wanted"
	default:
		c.Status, c.Detail = checkOK, fmt.Sprintf("%d of %d managed containers healthy or running", healthy, targets)
	}
	return c
}

func (e *doctorEnv) checkCache() api.Check {
	c := api.Check{ID: "cache", Name: "secret cache", Extra: map[string]string{}}
	if !e.agentUp {
		c.Status, c.Detail = checkSkip, "agent down"
		return c
	}
	cs := e.status.Cache
	lookups := cs.Hits + cs.Misses
	c.Extra["entries"] = strconv.Itoa(cs.Entries)
	c.Extra["size"] = fmt.Sprintf("%s of %s (%s)", bytesIEC(cs.Bytes), bytesIEC(cs.MaxBytes), percent(cs.Utilization))
	c.Extra["hits/misses"] = fmt.Sprintf("%d/%d", cs.Hits, cs.Misses)
	switch {
	case lookups < cacheMinLookups:
		c.Status, c.Detail = checkOK, fmt.Sprintf("hit rate not judged yet (%d lookups, needs %d)", lookups, cacheMinLookups)
	case cs.HitRate < cacheHitWarn:
		c.Status, c.Detail = checkWarn, fmt.Sprintf("hit rate %s over %d lookups, below %s", percent(cs.HitRate), lookups, percent(cacheHitWarn))
		c.Remediation = "raise agent.cache.ttl (e.g. 1h -> 4h) or agent.cache.max_size in the config file, then 'dso system restart'"
	default:
		c.Status, c.Detail = checkOK, fmt.Sprintf("hit rate %s over %d lookups", percent(cs.HitRate), lookups)
	}
	return c
}

// doctorVerdict is the first line: `dso: healthy (9 checks ok)` or
// `dso: unhealthy: 2 failing (provider:vault-prod, tmpfs), 1 warning`.
func doctorVerdict(checks []api.Check) (string, int) {
	var fail, warn []string
	ok, skip := 0, 0
	for _, c := range checks {
		switch c.Status {
		case checkFail:
			fail = append(fail, c.ID)
		case checkWarn:
			warn = append(warn, c.ID)
		case checkSkip:
			skip++
		default:
			ok++
		}
	}
	var extra []string
	if len(warn) > 0 {
		extra = append(extra, fmt.Sprintf("%s (%s)", plural(len(warn), "warning"), strings.Join(warn, ", ")))
	}
	if skip > 0 {
		extra = append(extra, fmt.Sprintf("%d skipped", skip))
	}
	if len(fail) > 0 {
		v := fmt.Sprintf("dso: unhealthy: %d failing (%s)", len(fail), strings.Join(fail, ", "))
		if len(extra) > 0 {
			v += ", " + strings.Join(extra, ", ")
		}
		return v, len(fail)
	}
	v := fmt.Sprintf("dso: healthy (%s ok", plural(ok, "check"))
	if len(extra) > 0 {
		v += ", " + strings.Join(extra, ", ")
	}
	return v + ")", 0
}

func writeDoctor(w io.Writer, verdict string, checks []api.Check, full bool) error {
	var out strings.Builder
	out.WriteString(verdict + "\n")
	if !full {
		t := newTable(&out)
		for _, c := range checks {
			t.row(c.Status, c.ID, c.Name, c.Detail)
		}
		if err := t.flush(); err != nil {
			return err
		}
		_, err := io.WriteString(w, out.String())
		return err
	}
	// Full: a blank line between checks, details indented under each; not
	// a table, so that `grep -A 3 provider` yields a check's own lines.
	for _, c := range checks {
		fmt.Fprintf(&out, "%s %s %s: %s\n", c.Status, c.ID, c.Name, c.Detail)
		keys := make([]string, 0, len(c.Extra))
		for k := range c.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&out, "    %s: %s\n", k, c.Extra[k])
		}
		if c.Remediation != "" && c.Status != checkOK {
			fmt.Fprintf(&out, "    remediation: %s\n", c.Remediation)
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// statfsUsage returns free (for unprivileged users) and total bytes.
func statfsUsage(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Bsize <= 0 {
		return 0, 0, fmt.Errorf("statfs %s: block size %d", dir, st.Bsize)
	}
	bs := uint64(st.Bsize) // positive, checked above
	return st.Bavail * bs, st.Blocks * bs, nil
}

// clampInt64 converts a byte count for display, saturating at MaxInt64.
func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// readProcUsage reads a process's resident memory (VmRSS of
// /proc/PID/status) and CPU time (utime+stime of /proc/PID/stat, in clock
// ticks of 1/100 s, the value Linux uses for USER_HZ everywhere).
func readProcUsage(pid int) (rss, cpu string, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.Join(strings.Fields(v), " ")
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", err
	}
	// The command name (field 2) may contain spaces; fields after its
	// closing parenthesis are positional: utime is field 14, stime 15.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return "", "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	stt, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ticks := clampInt64(ut + stt)
	cpu = (time.Duration(ticks) * 10 * time.Millisecond).String()
	return orDash(rss), cpu, nil
}
