package clix

import "strings"

// Suggest returns the candidate closest to s when it is close enough to be
// a typo (a few letters added, dropped, swapped or changed, or s a
// prefix of exactly one candidate), else "".
func Suggest(s string, candidates []string) string {
	best, bestD := "", -1
	var prefixed []string
	for _, c := range candidates {
		if s != "" && strings.HasPrefix(c, s) {
			prefixed = append(prefixed, c)
		}
		d := distance(s, c)
		if d <= maxDistance(s, c) && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// maxDistance is how many edits a typo of c may have: none for one or two
// letters (any letter is one edit from any other), 1 for short words,
// about one in three letters for longer ones.
func maxDistance(s, c string) int {
	if min(len(s), len(c)) < 3 {
		return 0
	}
	return max(1, min(len(s), len(c))/3)
}

// distance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of neighbours.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
