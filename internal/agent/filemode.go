package agent

import "os"

func osFileMode(m uint64) os.FileMode { return os.FileMode(m) & os.ModePerm }
