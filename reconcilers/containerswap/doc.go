// Package containerswap converges one target — a container, keyed by its
// name — to the secrets its bindings declare, and rotates it safely when
// they change.
//
// The desired state is a hash (an HMAC under a per-host key, computed by the
// Planner) over the values the target consumes and how they are delivered;
// the actual state is the container's dso.dev/secret-hash label. Equal
// hashes mean nothing happens at all — no Docker call that changes
// anything — so an agent restart never rotates a container.
//
// Otherwise the binding's strategy decides:
//
//   - rolling (no host ports): create the candidate from the old container's
//     inspect data, start it on the old networks without the service
//     aliases, gate on health, give it the aliases, then cut over by two
//     renames and stop/remove the old container. Traffic reaches the
//     candidate only after it is healthy.
//   - recreate (host ports published: two containers cannot bind them):
//     create the candidate, stop the old one, start the candidate, gate; on
//     failure remove the candidate and start the old one again.
//   - restart / signal / none (file-only bindings): files are rewritten in
//     place under the same mount, then the container is restarted,
//     signalled or left alone. No new container.
//
// A failed gate removes the candidate and leaves the old container serving;
// there is no fallback that skips the gate. Every step is written so that a
// crash between any two of them is recognisable from `docker ps -a` alone
// (labels written at create and names), and Recover — run first by every
// Reconcile and by the orphan cleanup reconciler on start — finishes or
// reverts it.
package containerswap
