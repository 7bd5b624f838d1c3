package agent

import "os"

// osFileMode keeps only the permission bits; callers have checked m <= 0777.
func osFileMode(m uint64) os.FileMode { return os.FileMode(m&0o777) & os.ModePerm } //nolint:gosec // masked to 9 bits above
