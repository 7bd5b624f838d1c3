// Package local is dso's embedded secret store: one encrypted file on the
// host, so that dso works without any cloud account or Vault server. It holds
// the file format and its Store type (used by `docker dso init` and
// `docker dso secret ...`), and the "local" provider the agent reads through.
//
// # Format
//
// The store is one age file (filippo.io/age, format age-encryption.org/v1)
// encrypted to an X25519 recipient whose identity lives in a key file (mode
// 0600, by default `<path>.key`). Inside is a versioned container: a format
// line ("dso.dev/local-store/v1") followed by length-prefixed records of key,
// version counter, update time and the exact value bytes, then the tombstones
// of deleted keys (codec.go describes the layout and why it is not JSON).
//
// Why age and not a hand-rolled AES-256-GCM file: age is a small, reviewed,
// stable format with a specification, its key file is the same one
// `age-keygen` writes (an operator can decrypt a backup with the stock `age`
// tool in an emergency), and it authenticates the whole payload in chunks, so
// truncation and tampering are detected. Opening costs one X25519 operation
// and a ChaCha20-Poly1305 pass — microseconds, not the hundreds of
// milliseconds and ~134 MB the older DSO spent on a password KDF per
// operation. The key file is the secret; protect it like an SSH host key.
//
// # Versions
//
// Every key carries a counter that grows by one on every set. A deleted key
// leaves a tombstone with its last counter, so a key that is removed and set
// again never reuses a version id: the secret cache keys on
// (store, key, version), and a reused id would serve a stale value.
//
// # Concurrency and durability
//
// Writers take an exclusive flock(2) on `<path>.lock` around their whole
// read-modify-write, so concurrent `secret set` calls — goroutines or
// processes — never lose an update. A write goes to a temporary file in the
// same directory, is fsynced, renamed over the store, and the directory is
// fsynced, so a crash leaves either the old or the new store, never a torn
// one. Readers take no lock: rename is atomic, so they always see a whole
// file.
package local
