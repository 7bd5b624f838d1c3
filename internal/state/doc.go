// Package state is the agent's embedded, crash-safe memory: the objects that
// were applied (`docker dso apply`), the statuses the controllers computed,
// the rotation history with trace ids and step timings, recovery records and
// events. It exists so that `get`, `describe`, `history` and `status` answer
// from what the agent actually did, and so that an agent restart keeps that
// record; the running containers (their labels) stay the source of truth for
// what to do next.
//
// It is one bbolt file, `dso.db` in `state.dir` (default /var/lib/dso/state),
// mode 0600 in a 0700 directory. Only one process can hold it: a second agent
// gets ErrInUse after a short lock wait instead of corrupting it.
//
// Nothing here ever holds a secret value. Callers hand in the JSON of typed
// records that carry names, HMAC hashes and timings; this package treats that
// JSON as opaque and never puts any of it into an error message.
//
// Layout (schema version 1):
//
//	meta                      schema -> "1"
//	objects/<kind>/<name>     applied object JSON
//	statuses/<kind>/<name>    status JSON
//	rotations/<time|trace>    rotation JSON (as handed in)
//	rotations_by_binding/<binding>/<time|trace> -> ""   (index)
//	rotation_bindings/<time|trace> -> ["binding", ...]  (index back references)
//	recovery/<time|seq>       recovery JSON
//	events/<time|seq>         event JSON
//	events_by_binding/<binding>/<time|seq> -> ""        (index)
//	event_bindings/<time|seq> -> ["binding"]            (index back references)
//
// History keys start with the time as 8 big-endian bytes, so a cursor walks
// them chronologically and pruning by age stops at the first young entry. The
// per-binding indexes hold the same keys, so `Rotations("api-db", 20)` reads
// 20 index entries and 20 records, whatever the size of the history.
//
// Restoring is replacing dso.db while the agent is stopped (a tar of the
// state directory, or a file written by Backup).
package state
