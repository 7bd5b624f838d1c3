// Package agent wires dso's control loop together: it loads the declarations,
// builds the provider clients and the secret cache, and runs the controllers
// (secretfetch, containerswap, orphancleanup) fed by their sources (the
// Docker informer, the config and bindings folders, poll timers, the local
// store's file watch, the optional webhook). `dso agent` is Run.
//
// The model (which bindings exist, which containers they select, which
// secrets they consume) and the planner (a target's desired env, files and
// hash) live here too, because they join the declarations, the cache and
// Docker's view, which no single reconciler owns.
package agent
