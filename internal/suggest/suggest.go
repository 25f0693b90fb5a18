package suggest

import "strings"

// Closest returns the candidate that s most likely misspells, or "" when
// none is close enough: within edit distance 2 (and less than half of s),
// or a prefix either way for names of three letters or more. Ties go to the
// smaller edit distance, then to the alphabetically first candidate.
func Closest(s string, candidates []string) string {
	best, bestD, bestE := "", 3, 0
	for _, c := range candidates {
		e := EditDistance(s, c)
		d := e
		if len(s) >= 3 && (strings.HasPrefix(c, s) || strings.HasPrefix(s, c)) {
			d = min(d, 1)
		}
		if d <= 2 && d < len(s)/2+1 && (d < bestD || d == bestD && (e < bestE || e == bestE && c < best)) {
			best, bestD, bestE = c, d, e
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes.
func EditDistance(a, b string) int {
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
