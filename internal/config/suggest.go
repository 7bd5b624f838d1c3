package config

import "strings"

// suggest returns the known name closest to an unknown one, or "" when none
// is close enough to be a likely typo. Case and '_' versus camelCase slips
// ("maxSize" for "max_size", "storeref" for "storeRef") count as one edit at
// most, because they are the commonest mistake in hand-written YAML.
func suggest(unknown string, known []string) string {
	best, bestD := "", -1
	u := strings.ToLower(unknown)
	for _, k := range known {
		d := editDistance(u, strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(unknown) > 9 {
		limit = 3
	}
	if bestD < 0 || bestD > limit || bestD >= len(unknown) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance over bytes (field names are
// ASCII), with inputs capped so that a fuzzed multi-megabyte key costs
// nothing.
func editDistance(a, b string) int {
	const maxLen = 64
	if len(a) > maxLen || len(b) > maxLen {
		return maxLen
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
