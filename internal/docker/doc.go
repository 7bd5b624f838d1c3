// Package docker is dso's only door to the Docker Engine: every other package
// talks to Docker through the Engine interface defined here, so reconcilers
// can be tested with a recording fake and the real client is configured in
// exactly one place (API version negotiation: engines here may speak only
// API 1.41).
//
// It also holds the pure function that derives a swap candidate's create
// call from an old container's inspect data (CandidateSpec). That derivation
// is where container swaps usually go wrong — anonymous volumes re-created
// empty, host ports copied onto a container that cannot start, a MAC address
// the client refuses below API 1.44 — so it is kept free of I/O and covered
// by table tests.
package docker
