package v1alpha1

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation never puts the offending value into an error: a field may hold
// something sensitive (a pasted token, a URL with credentials), and errors
// end up in logs and terminals. Every error therefore carries a Detail that
// says what is wanted, and FieldErrorMessage renders "<path>: <detail>"
// instead of field.Error's own Error(), which prints the value.

// FieldErrorMessage renders a validation error as "<path>: <detail>".
func FieldErrorMessage(e *field.Error) string {
	if e.Field == "" || e.Field == "<nil>" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// omitted is the BadValue of every error built here, so that even code that
// calls field.Error.Error() cannot leak a value.
const omitted = "(value omitted)"

func invalid(p *field.Path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeInvalid, Field: p.String(), BadValue: omitted, Detail: detail}
}

func required(p *field.Path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeRequired, Field: p.String(), BadValue: omitted, Detail: detail}
}

func duplicate(p *field.Path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeDuplicate, Field: p.String(), BadValue: omitted, Detail: detail}
}

func forbidden(p *field.Path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeForbidden, Field: p.String(), BadValue: omitted, Detail: detail}
}

func notSupported(p *field.Path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeNotSupported, Field: p.String(), BadValue: omitted, Detail: detail}
}

var (
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	signalRE   = regexp.MustCompile(`^SIG[A-Z0-9]+(\+[0-9]+)?$`)
	octalRE    = regexp.MustCompile(`^0?[0-7]{1,4}$`)
	// swarmNameRE is what Swarm accepts as a service name.
	swarmNameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$`)
)

// LogLevels and LogFormats are the accepted logging settings.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"json", "console"}
)

// forbiddenFileRoots are kernel filesystems of the container: writing a
// secret there is never what someone meant, and a bind mount over them
// breaks the container.
var forbiddenFileRoots = []string{"/proc", "/sys", "/dev"}

// shadowedDirs are directories that must not be a secret file's parent. File
// delivery bind-mounts the file's directory (a single-file mount pins the
// inode, so atomic updates would never reach the container), which hides
// whatever the image has in that directory.
var shadowedDirs = []string{"/", "/bin", "/boot", "/etc", "/lib", "/lib64", "/sbin", "/usr", "/var", "/tmp", "/home", "/root", "/run"}

// Validate checks an AgentConfig after defaulting. Unset (nil) tunables are
// skipped: Default fills them before the agent uses the config.
func (c *AgentConfig) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.Name != "" {
		errs = append(errs, validateName(field.NewPath("metadata", "name"), c.Name)...)
	}
	sp := field.NewPath("spec")
	ap := sp.Child("agent")
	a := &c.Spec.Agent
	errs = append(errs, positiveDuration(ap.Child("cache", "ttl"), a.Cache.TTL)...)
	if s := a.Cache.MaxSize; s != nil && *s <= 0 {
		errs = append(errs, invalid(ap.Child("cache", "max_size"), "must be a positive size, e.g. 500Mi or 1Gi"))
	}
	errs = append(errs, positiveDuration(ap.Child("rotation", "timeout"), a.Rotation.Timeout)...)
	if p := a.Rotation.Parallelism; p != nil && *p <= 0 {
		errs = append(errs, invalid(ap.Child("rotation", "parallelism"), "must be at least 1 (the number of rotations run at once)"))
	}
	wp := ap.Child("watch")
	errs = append(errs, positiveDuration(wp.Child("polling_interval"), a.Watch.PollingInterval)...)
	errs = append(errs, positiveDuration(wp.Child("debounce_window"), a.Watch.DebounceWindow)...)
	hp := wp.Child("webhook")
	if a.Watch.Webhook.Listen != "" {
		errs = append(errs, validateListen(hp.Child("listen"), a.Watch.Webhook.Listen)...)
	}
	if a.Watch.Webhook.Token != nil {
		errs = append(errs, validateValueSource(hp.Child("token"), a.Watch.Webhook.Token)...)
	} else if a.Watch.Webhook.Enabled {
		errs = append(errs, required(hp.Child("token"), "an enabled webhook needs a bearer token: set token: {fromEnv: NAME} or {fromFile: PATH}"))
	}
	if a.API.Socket != "" {
		errs = append(errs, absolutePath(ap.Child("api", "socket"), a.API.Socket)...)
	}
	if a.Metrics.Listen != "" {
		errs = append(errs, validateListen(ap.Child("metrics", "listen"), a.Metrics.Listen)...)
	}
	if a.Delivery.Dir != "" {
		errs = append(errs, absolutePath(ap.Child("delivery", "dir"), a.Delivery.Dir)...)
	}

	lp := sp.Child("logging")
	if l := c.Spec.Logging.Level; l != "" && !contains(LogLevels, l) {
		errs = append(errs, notSupported(lp.Child("level"), "must be one of "+strings.Join(LogLevels, ", ")))
	}
	if f := c.Spec.Logging.Format; f != "" && !contains(LogFormats, f) {
		errs = append(errs, notSupported(lp.Child("format"), "must be one of "+strings.Join(LogFormats, ", ")))
	}
	if f := c.Spec.Logging.File; f != "" {
		errs = append(errs, absolutePath(lp.Child("file"), f)...)
	}
	if d := c.Spec.State.Dir; d != "" {
		errs = append(errs, absolutePath(sp.Child("state", "dir"), d)...)
	}
	seen := map[string]int{}
	for i, d := range c.Spec.Bindings.Dirs {
		p := sp.Child("bindings", "dirs").Index(i)
		if d == "" {
			errs = append(errs, required(p, "must be an absolute directory path"))
			continue
		}
		errs = append(errs, absolutePath(p, d)...)
		if j, ok := seen[path.Clean(d)]; ok {
			errs = append(errs, duplicate(p, fmt.Sprintf("the same directory is already listed as dirs[%d]", j)))
		}
		seen[path.Clean(d)] = i
	}
	errs = append(errs, validateNotifications(sp.Child("notifications"), c.Spec.Notifications)...)
	return errs
}

// Validate checks a SecretStore after defaulting.
func (s *SecretStore) Validate() field.ErrorList {
	errs := validateName(field.NewPath("metadata", "name"), s.Name)
	sp := field.NewPath("spec")
	var set []string
	for _, p := range []struct {
		name string
		on   bool
	}{
		{"local", s.Spec.Local != nil}, {"vault", s.Spec.Vault != nil}, {"aws", s.Spec.AWS != nil},
		{"azure", s.Spec.Azure != nil}, {"file", s.Spec.File != nil}, {"env", s.Spec.Env != nil},
	} {
		if p.on {
			set = append(set, p.name)
		}
	}
	switch len(set) {
	case 0:
		errs = append(errs, required(sp, "exactly one provider is required: one of local, vault, aws, azure, file, env"))
	case 1:
	default:
		errs = append(errs, forbidden(sp, "exactly one provider may be set, found "+strings.Join(set, " and ")+": use one SecretStore per provider"))
	}
	if l := s.Spec.Local; l != nil {
		p := sp.Child("local")
		errs = append(errs, requiredAbsolute(p.Child("path"), l.Path)...)
		if l.KeyFile != "" {
			errs = append(errs, absolutePath(p.Child("keyFile"), l.KeyFile)...)
		}
	}
	if v := s.Spec.Vault; v != nil {
		errs = append(errs, validateVault(sp.Child("vault"), v)...)
	}
	if a := s.Spec.AWS; a != nil {
		errs = append(errs, validateAWS(sp.Child("aws"), a)...)
	}
	if a := s.Spec.Azure; a != nil {
		errs = append(errs, validateAzure(sp.Child("azure"), a)...)
	}
	if f := s.Spec.File; f != nil {
		errs = append(errs, requiredAbsolute(sp.Child("file", "dir"), f.Dir)...)
	}
	if e := s.Spec.Env; e != nil && e.Prefix != "" && !identRE.MatchString(e.Prefix) {
		errs = append(errs, invalid(sp.Child("env", "prefix"), "must start an environment variable name: letters, digits and '_', not starting with a digit"))
	}
	if r := s.Spec.RateLimit; r != nil {
		rp := sp.Child("rateLimit")
		if r.QPS <= 0 {
			errs = append(errs, invalid(rp.Child("qps"), "must be a positive number of calls per second"))
		}
		if r.Burst < 0 || (r.Burst == 0 && r.QPS > 0) {
			errs = append(errs, invalid(rp.Child("burst"), "must be at least 1"))
		}
	}
	errs = append(errs, refreshInterval(sp.Child("refreshInterval"), s.Spec.RefreshInterval)...)
	return errs
}

// IsLoopbackHost accepts loopback IP literals and "localhost" (the hosts
// plain http may go to without allowInsecureHTTP). Other names are not
// resolved: what a name resolves to can change after the check.
func IsLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validateVault(p *field.Path, v *VaultProvider) field.ErrorList {
	var errs field.ErrorList
	if v.Address == "" {
		errs = append(errs, required(p.Child("address"), "the Vault server's URL is required, e.g. https://vault.example:8200"))
	} else if u, err := url.Parse(v.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, invalid(p.Child("address"), "must be an http:// or https:// URL with a host, e.g. https://vault.example:8200"))
	} else if u.User != nil {
		errs = append(errs, forbidden(p.Child("address"), "must not contain credentials: use auth with fromEnv or fromFile"))
	} else if u.Scheme == "http" && !v.AllowInsecureHTTP && !IsLoopbackHost(u.Hostname()) {
		// The provider refuses it too; saying so here makes config
		// validate (and migrate's output check) catch it before a restart.
		errs = append(errs, forbidden(p.Child("address"), "plain http to a host that is not loopback would send the Vault token unencrypted: use https, or set allowInsecureHTTP: true if the network is trusted"))
	}
	if v.Mount == "" {
		errs = append(errs, required(p.Child("mount"), "the KV engine's mount path is required, e.g. secret"))
	}
	if v.KVVersion != 1 && v.KVVersion != 2 {
		errs = append(errs, notSupported(p.Child("kvVersion"), "must be 1 or 2"))
	}
	if v.CAFile != "" {
		errs = append(errs, absolutePath(p.Child("caFile"), v.CAFile)...)
	}
	ap := p.Child("auth")
	switch {
	case v.Auth.Token == nil && v.Auth.AppRole == nil:
		errs = append(errs, required(ap, "exactly one auth method is required: token or appRole"))
	case v.Auth.Token != nil && v.Auth.AppRole != nil:
		errs = append(errs, forbidden(ap, "exactly one auth method may be set, found token and appRole"))
	}
	if v.Auth.Token != nil {
		errs = append(errs, validateValueSource(ap.Child("token"), v.Auth.Token)...)
	}
	if r := v.Auth.AppRole; r != nil {
		rp := ap.Child("appRole")
		if r.Path == "" {
			errs = append(errs, required(rp.Child("path"), "the AppRole auth mount is required, e.g. approle"))
		}
		errs = append(errs, validateValueSource(rp.Child("roleID"), &r.RoleID)...)
		errs = append(errs, validateValueSource(rp.Child("secretID"), &r.SecretID)...)
	}
	return errs
}

func validateAWS(p *field.Path, a *AWSProvider) field.ErrorList {
	var errs field.ErrorList
	if a.Region == "" {
		errs = append(errs, required(p.Child("region"), "the AWS region is required, e.g. eu-west-1"))
	}
	if a.Endpoint != "" {
		if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, invalid(p.Child("endpoint"), "must be an http:// or https:// URL with a host"))
		}
	}
	ap := p.Child("auth")
	if a.Auth.Static != nil && a.Auth.Profile != "" {
		errs = append(errs, forbidden(ap, "at most one of static or profile may be set"))
	}
	if st := a.Auth.Static; st != nil {
		sp := ap.Child("static")
		errs = append(errs, validateValueSource(sp.Child("accessKeyID"), &st.AccessKeyID)...)
		errs = append(errs, validateValueSource(sp.Child("secretAccessKey"), &st.SecretAccessKey)...)
		if st.SessionToken != nil {
			errs = append(errs, validateValueSource(sp.Child("sessionToken"), st.SessionToken)...)
		}
	}
	return errs
}

func validateAzure(p *field.Path, a *AzureProvider) field.ErrorList {
	var errs field.ErrorList
	if a.VaultURL == "" {
		errs = append(errs, required(p.Child("vaultURL"), "the Key Vault URL is required, e.g. https://myvault.vault.azure.net/"))
	} else if u, err := url.Parse(a.VaultURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, invalid(p.Child("vaultURL"), "must be an https:// URL, e.g. https://myvault.vault.azure.net/"))
	}
	ap := p.Child("auth")
	if a.Auth.ClientSecret != nil && a.Auth.ManagedIdentity != nil {
		errs = append(errs, forbidden(ap, "at most one of clientSecret or managedIdentity may be set"))
	}
	if cs := a.Auth.ClientSecret; cs != nil {
		cp := ap.Child("clientSecret")
		if cs.TenantID == "" {
			errs = append(errs, required(cp.Child("tenantID"), "the directory (tenant) ID is required"))
		}
		if cs.ClientID == "" {
			errs = append(errs, required(cp.Child("clientID"), "the application (client) ID is required"))
		}
		errs = append(errs, validateValueSource(cp.Child("clientSecret"), &cs.ClientSecret)...)
	}
	return errs
}

// Validate checks a SecretBinding after defaulting.
func (b *SecretBinding) Validate() field.ErrorList {
	errs := validateName(field.NewPath("metadata", "name"), b.Name)
	sp := field.NewPath("spec")
	if b.Spec.StoreRef.Name == "" {
		errs = append(errs, required(sp.Child("storeRef", "name"), "must name the SecretStore the values come from"))
	} else {
		errs = append(errs, validateName(sp.Child("storeRef", "name"), b.Spec.StoreRef.Name)...)
	}
	errs = append(errs, validateSelector(sp.Child("target", "selector"), &b.Spec.Target.Selector)...)
	swarm := b.Spec.Target.Selector.Swarm != nil

	if len(b.Spec.Data) == 0 && len(b.Spec.DataFrom) == 0 {
		errs = append(errs, required(sp.Child("data"), "at least one data or dataFrom item is required"))
	}
	envs := map[string]string{}  // env name -> path of the item that writes it
	files := map[string]string{} // cleaned file path -> path of the item that writes it
	hasEnv := false
	for i := range b.Spec.Data {
		d := &b.Spec.Data[i]
		p := sp.Child("data").Index(i)
		errs = append(errs, validateRemoteRef(p.Child("remoteRef"), &d.RemoteRef)...)
		switch {
		case d.Env == "" && d.File == nil:
			errs = append(errs, required(p, "exactly one of env or file is required"))
		case d.Env != "" && d.File != nil:
			errs = append(errs, forbidden(p, "exactly one of env or file may be set: use two items to deliver the value both ways"))
		}
		if d.Env != "" && swarm {
			errs = append(errs, forbidden(p.Child("env"), swarmNoEnv))
		}
		if d.Env != "" {
			hasEnv = true
			ep := p.Child("env")
			if !identRE.MatchString(d.Env) {
				errs = append(errs, invalid(ep, "must be an environment variable name: letters, digits and '_', not starting with a digit"))
			} else if other, ok := envs[d.Env]; ok {
				errs = append(errs, duplicate(ep, "the same environment variable is already written by "+other))
			} else {
				envs[d.Env] = ep.String()
			}
		}
		if f := d.File; f != nil {
			fp := p.Child("file")
			pe := validateFilePath(fp.Child("path"), f.Path)
			if swarm {
				// Swarm mounts each secret as a file of its own, so no
				// directory is shadowed: only the kernel filesystems rule.
				pe = validateSwarmFilePath(fp.Child("path"), f.Path)
			}
			errs = append(errs, pe...)
			if len(pe) == 0 {
				c := path.Clean(f.Path)
				if other, ok := files[c]; ok {
					errs = append(errs, duplicate(fp.Child("path"), "the same file is already written by "+other))
				} else {
					files[c] = fp.Child("path").String()
				}
			}
			if f.Mode != "" {
				errs = append(errs, validateMode(fp.Child("mode"), f.Mode)...)
			}
			if f.UID != nil && *f.UID < 0 {
				errs = append(errs, invalid(fp.Child("uid"), "must be a user id of 0 or more"))
			}
			if f.GID != nil && *f.GID < 0 {
				errs = append(errs, invalid(fp.Child("gid"), "must be a group id of 0 or more"))
			}
		}
	}
	dirs := map[string]string{}
	for i := range b.Spec.DataFrom {
		d := &b.Spec.DataFrom[i]
		p := sp.Child("dataFrom").Index(i)
		errs = append(errs, validateRemoteRef(p.Child("remoteRef"), &d.RemoteRef)...)
		if d.Prefix != "" && !identRE.MatchString(d.Prefix) {
			errs = append(errs, invalid(p.Child("prefix"), "must start an environment variable name: letters, digits and '_', not starting with a digit"))
		}
		if d.Dir == "" {
			hasEnv = true
			if swarm {
				errs = append(errs, required(p.Child("dir"), "a binding that targets a Swarm service delivers files only: set dir (each field becomes a file in it); "+swarmNoEnvWhy))
			}
			continue
		}
		dp := p.Child("dir")
		if d.Prefix != "" {
			errs = append(errs, forbidden(p.Child("prefix"), "prefix names env vars and dir names files: set one of them"))
		}
		pe := validateDeliveryPath(dp, d.Dir, true)
		if swarm {
			pe = validateSwarmFilePath(dp, d.Dir)
		}
		errs = append(errs, pe...)
		if len(pe) > 0 {
			continue
		}
		c := path.Clean(d.Dir)
		if other, ok := dirs[c]; ok {
			errs = append(errs, duplicate(dp, "the same directory is already written by "+other))
			continue
		}
		dirs[c] = dp.String()
		// A dataFrom dir receives one file per field of the secret, whose
		// names are only known at runtime: a data file inside it could be
		// overwritten by (or overwrite) one of them.
		for _, fpath := range slices.Sorted(maps.Keys(files)) {
			if path.Dir(fpath) == c {
				errs = append(errs, duplicate(dp, "this directory also receives the file written by "+files[fpath]+": the two may write the same file"))
			}
		}
	}
	errs = append(errs, refreshInterval(sp.Child("refreshInterval"), b.Spec.RefreshInterval)...)

	rp := sp.Child("rotation")
	r := &b.Spec.Rotation
	if r.Strategy != "" && !containsStrategy(r.Strategy) {
		names := make([]string, len(RotationStrategies))
		for i, s := range RotationStrategies {
			names[i] = string(s)
		}
		errs = append(errs, notSupported(rp.Child("strategy"), "must be one of "+strings.Join(names, ", ")))
	}
	switch {
	case swarm && r.Strategy != "" && r.Strategy != RotationAuto && r.Strategy != RotationRolling:
		errs = append(errs, forbidden(rp.Child("strategy"), "a Swarm service is rotated by Swarm's own rolling service update (the service's update_config decides order, parallelism and failure action): leave strategy unset, auto or rolling"))
	case r.Strategy == RotationRestart || r.Strategy == RotationSignal || r.Strategy == RotationNone:
		// These strategies rewrite files in place; env vars are fixed when a
		// container is created, so they would never reach the container.
		if hasEnv {
			errs = append(errs, invalid(rp.Child("strategy"), "strategy "+string(r.Strategy)+" only updates files, but this binding delivers env vars: use auto, rolling or recreate"))
		}
	}
	if r.Signal != "" {
		if r.Strategy != RotationSignal {
			errs = append(errs, forbidden(rp.Child("signal"), "is only used with strategy signal"))
		} else if !signalRE.MatchString(r.Signal) {
			errs = append(errs, invalid(rp.Child("signal"), "must be a signal name such as SIGHUP or SIGUSR1"))
		}
	}
	errs = append(errs, positiveDuration(rp.Child("healthTimeout"), r.HealthTimeout)...)
	return errs
}

// swarmNoEnv is why a Swarm binding refuses env delivery.
const (
	swarmNoEnvWhy = "an env var would put the value into the service spec, readable by anyone who can run docker service inspect"
	swarmNoEnv    = "a binding that targets a Swarm service delivers files only (Docker secrets, mounted into each task): " + swarmNoEnvWhy + "; use file: {path: ...}"
)

func validateSelector(p *field.Path, s *Selector) field.ErrorList {
	var errs field.ErrorList
	if len(s.Containers) == 0 && s.Compose == nil && len(s.Labels) == 0 && s.Swarm == nil {
		return append(errs, required(p, "a target selector is required: set containers, compose, labels or swarm"))
	}
	if sw := s.Swarm; sw != nil {
		var also []string
		if len(s.Containers) > 0 {
			also = append(also, "containers")
		}
		if s.Compose != nil {
			also = append(also, "compose")
		}
		if len(s.Labels) > 0 {
			also = append(also, "labels")
		}
		if len(also) > 0 {
			errs = append(errs, forbidden(p.Child("swarm"), "a binding that targets a Swarm service selects no containers: remove "+strings.Join(also, " and ")+", or use a second binding for the containers"))
		}
		if sw.Service == "" {
			errs = append(errs, required(p.Child("swarm", "service"), "the Swarm service name is required (as in docker service ls)"))
		} else if !swarmNameRE.MatchString(sw.Service) {
			errs = append(errs, invalid(p.Child("swarm", "service"), "must be a Swarm service name: at most 63 letters, digits, '-' and '_', starting and ending with a letter or digit"))
		}
	}
	for i, c := range s.Containers {
		if strings.TrimSpace(c) == "" {
			errs = append(errs, required(p.Child("containers").Index(i), "must be a container name"))
		}
	}
	if c := s.Compose; c != nil && c.Project == "" {
		errs = append(errs, required(p.Child("compose", "project"), "the compose project name is required"))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, invalid(p.Child("labels"), "label names must not be empty"))
		}
	}
	return errs
}

func validateRemoteRef(p *field.Path, r *RemoteRef) field.ErrorList {
	if strings.TrimSpace(r.Key) == "" {
		return field.ErrorList{required(p.Child("key"), "the secret's key in the store is required, e.g. shop/db")}
	}
	return nil
}

// validateFilePath checks an absolute, clean path inside the container that
// dso may write to.
func validateFilePath(p *field.Path, v string) field.ErrorList {
	return validateDeliveryPath(p, v, false)
}

// validateDeliveryPath checks a file path (isDir false: its parent directory
// is what gets mounted) or a dataFrom directory (isDir true: the directory
// itself is mounted).
func validateDeliveryPath(p *field.Path, v string, isDir bool) field.ErrorList {
	c, errs := validateTargetPath(p, v, "container")
	if errs != nil {
		return errs
	}
	dir := path.Dir(c)
	if isDir {
		dir = c
	} else if strings.HasPrefix(path.Base(c), "..") {
		return field.ErrorList{invalid(p, "a file name beginning with '..' is reserved for dso's own links in the secrets directory")}
	}
	if contains(shadowedDirs, dir) {
		return field.ErrorList{forbidden(p, "its directory "+dir+" would be mounted over in the container, hiding the image's files: use a directory of its own, e.g. /run/secrets/app")}
	}
	return nil
}

// validateSwarmFilePath checks a secret's target inside a Swarm task: an
// absolute path (Swarm mounts each secret file there, on Linux) outside the
// kernel filesystems. Nothing is shadowed, so any other directory will do.
func validateSwarmFilePath(p *field.Path, v string) field.ErrorList {
	_, errs := validateTargetPath(p, v, "task")
	return errs
}

// validateTargetPath checks what every delivered path must be inside the
// container or task (where): absolute, without "..", not /, not under a
// kernel filesystem. It returns the cleaned path.
func validateTargetPath(p *field.Path, v, where string) (string, field.ErrorList) {
	if v == "" {
		return "", field.ErrorList{required(p, "an absolute path inside the "+where+" is required, e.g. /run/secrets/db")}
	}
	if !strings.HasPrefix(v, "/") {
		return "", field.ErrorList{invalid(p, "must be absolute")}
	}
	for _, part := range strings.Split(v, "/") {
		if part == ".." {
			return "", field.ErrorList{invalid(p, "must not contain '..'")}
		}
	}
	c := path.Clean(v)
	if c == "/" {
		return "", field.ErrorList{invalid(p, "must not be /")}
	}
	for _, root := range forbiddenFileRoots {
		if c == root || strings.HasPrefix(c, root+"/") {
			return "", field.ErrorList{forbidden(p, "must not be under "+root+": it is a kernel filesystem in the container")}
		}
	}
	return c, nil
}

func validateMode(p *field.Path, m string) field.ErrorList {
	if !octalRE.MatchString(m) {
		return field.ErrorList{invalid(p, `must be an octal file mode such as "0400" or "0440"`)}
	}
	n, err := strconv.ParseUint(m, 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return field.ErrorList{invalid(p, `must be an octal file mode between "0001" and "0777", such as "0400"`)}
	}
	return nil
}

func validateValueSource(p *field.Path, v *ValueSource) field.ErrorList {
	switch {
	case v.FromEnv == "" && v.FromFile == "":
		return field.ErrorList{required(p, "set exactly one of fromEnv (an environment variable name) or fromFile (an absolute path)")}
	case v.FromEnv != "" && v.FromFile != "":
		return field.ErrorList{forbidden(p, "set exactly one of fromEnv or fromFile, not both")}
	case v.FromEnv != "" && !identRE.MatchString(v.FromEnv):
		return field.ErrorList{invalid(p.Child("fromEnv"), "must be an environment variable name: letters, digits and '_', not starting with a digit")}
	case v.FromFile != "":
		return absolutePath(p.Child("fromFile"), v.FromFile)
	}
	return nil
}

func validateName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{required(p, "a name is required")}
	}
	if !dnsLabelRE.MatchString(name) {
		return field.ErrorList{invalid(p, "must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit")}
	}
	return nil
}

func validateListen(p *field.Path, addr string) field.ErrorList {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return field.ErrorList{invalid(p, "must be host:port, e.g. 127.0.0.1:9469")}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return field.ErrorList{invalid(p, "must end in a port between 1 and 65535, e.g. 127.0.0.1:9469")}
	}
	_ = host // an empty host means every interface; allowed, and documented as a risk
	return nil
}

func absolutePath(p *field.Path, v string) field.ErrorList {
	if !strings.HasPrefix(v, "/") {
		return field.ErrorList{invalid(p, "must be an absolute path")}
	}
	return nil
}

func requiredAbsolute(p *field.Path, v string) field.ErrorList {
	if v == "" {
		return field.ErrorList{required(p, "an absolute path is required")}
	}
	return absolutePath(p, v)
}

func positiveDuration(p *field.Path, d *Duration) field.ErrorList {
	if d != nil && *d <= 0 {
		return field.ErrorList{invalid(p, "must be a positive duration, e.g. 30s, 5m or 1h")}
	}
	return nil
}

func refreshInterval(p *field.Path, d *Duration) field.ErrorList {
	if d != nil && d.D() < time.Second {
		return field.ErrorList{invalid(p, "must be at least 1s")}
	}
	return nil
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func containsStrategy(s RotationStrategy) bool { return slices.Contains(RotationStrategies, s) }
