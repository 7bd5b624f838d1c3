// Package providers defines the small boundary between dso and the secret
// stores people run: a Provider builds a Client from a SecretStore, and a
// Client fetches one secret at a time (optionally a batch). Every provider
// maps its SDK's errors onto the typed errors of this package so that the
// cache, the reconcilers and `doctor` can treat all stores alike.
//
// Providers register themselves by name in a Registry; each lives in its own
// package (providers/local, providers/vault, providers/aws, providers/azure,
// providers/file, providers/env) with its own tests.
package providers
