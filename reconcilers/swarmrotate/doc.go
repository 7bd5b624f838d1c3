// Package swarmrotate converges one Swarm service — keyed by its name — to
// the secrets its bindings declare: DESIGN §7, the distributed path.
//
// The desired state is the same HMAC the container swap uses (computed by
// the agent's Planner over the values and how they are delivered); the
// actual state is the dso.dev/secret-hash label on the service spec. Equal
// hashes mean nothing changes at all.
//
// Otherwise dso never touches a task itself: it creates one Docker secret
// per delivered file, named dso-<binding>-<item>-<hash8> (immutable, so a
// new value is a new secret), replaces exactly its own secret references in
// the service spec (other references stay), sets the hash label and hands
// the spec to Swarm with the version it read. Swarm then rolls the tasks
// with the service's own update_config (order, parallelism, delay, monitor,
// failure action), and dso waits for the UpdateStatus:
//
//   - completed: success; this service's older dso secrets that no spec
//     references any more are removed (Docker refuses while another
//     service's spec references one: that is tried again later, not an
//     error). Secrets made for a service that is gone are removed too.
//   - rollback_completed / paused / rollback_paused: the binding is
//     Degraded with Swarm's message; the old secret is kept (the rolled
//     back spec uses it). The same plan is not retried while Swarm's record
//     of the rollback (completed or paused) stands — a new value is a new
//     plan.
//   - no status: Swarm had no task to replace (replicas 0); done once the
//     tasks it wants running (if any) carry the new secrets.
//
// Every step is idempotent and derived from what Docker shows, so a crash
// anywhere is finished by the next Reconcile: a secret that already exists
// under its name is reused, an update in progress is waited for, not
// repeated.
package swarmrotate
