package docker

// Labels dso writes on the containers it creates. Docker labels cannot change
// after create, so everything a later step (or crash recovery) needs is
// written into the candidate when it is created. Values never contain secret
// material: the hash is an HMAC under a per-host key.
const (
	// LabelManaged marks a container created by dso ("true").
	LabelManaged = "dso.dev/managed"
	// LabelSecretHash is the HMAC of the consumed values and delivery spec.
	LabelSecretHash = "dso.dev/secret-hash" //nolint:gosec // G101: a label name; its value is an HMAC, not a credential
	// LabelReplaces is the full id of the container this candidate replaces.
	LabelReplaces = "dso.dev/replaces"
	// LabelTargetName is the name the candidate takes at cutover.
	LabelTargetName = "dso.dev/target-name"
	// LabelRotation is the rotation's trace id.
	LabelRotation = "dso.dev/rotation"
	// LabelRestartPolicy is the restart policy to restore after cutover.
	LabelRestartPolicy = "dso.dev/restart-policy"
	// LabelBinding lists the bindings (comma separated) that shaped this container.
	LabelBinding = "dso.dev/binding"
	// LabelAgent identifies the agent (a digest of its per-host key) that
	// created the candidate, so crash recovery only ever acts on its own
	// swaps, even when several agents share one Docker engine (tests).
	LabelAgent = "dso.dev/agent"
	// LabelEnvKeys lists (names only) the env vars dso delivered, so a later
	// rotation can drop the ones no longer bound.
	LabelEnvKeys = "dso.dev/env-keys"
	// LabelService is the Swarm service a dso Docker secret was made for.
	LabelService = "dso.dev/service"
)
