// Package udiff prints the unified diff of two texts, the review format of
// `lbctl diff` and `lbctl plan`. It finds a shortest edit script by
// dynamic programming over lines, which is fine for configuration files
// (thousands of lines); for larger inputs it falls back to replacing the
// whole middle part that differs.
package udiff

import (
	"fmt"
	"strings"
)

// maxCells bounds the dynamic-programming table.
const maxCells = 16 << 20

type op struct {
	kind byte // ' ', '-', '+'
	line string
}

// Unified returns the unified diff of a and b with n lines of context, with
// the file names in the header; empty when the texts are equal.
func Unified(aName, bName, a, b string, n int) string {
	if a == b {
		return ""
	}
	x, y := lines(a), lines(b)
	ops := script(x, y)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	// Group the script into hunks with n lines of context.
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(0, i-n)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*n {
				end = min(len(ops), end+n)
				break
			}
			end = run
		}
		aStart, bStart := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				aStart++
			}
			if o.kind != '-' {
				bStart++
			}
		}
		aLen, bLen := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		if aLen == 0 {
			aStart--
		}
		if bLen == 0 {
			bStart--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aStart, aLen, bStart, bLen)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// script returns an edit script turning x into y.
func script(x, y []string) []op {
	// Common prefix and suffix first: configs usually change in one place.
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		p++
	}
	s := 0
	for s < len(x)-p && s < len(y)-p && x[len(x)-1-s] == y[len(y)-1-s] {
		s++
	}
	var ops []op
	for _, l := range x[:p] {
		ops = append(ops, op{' ', l})
	}
	ops = append(ops, middle(x[p:len(x)-s], y[p:len(y)-s])...)
	for _, l := range x[len(x)-s:] {
		ops = append(ops, op{' ', l})
	}
	return ops
}

func middle(x, y []string) []op {
	var ops []op
	if (len(x)+1)*(len(y)+1) > maxCells {
		for _, l := range x {
			ops = append(ops, op{'-', l})
		}
		for _, l := range y {
			ops = append(ops, op{'+', l})
		}
		return ops
	}
	// lcs[i][j] = length of the LCS of x[i:] and y[j:].
	w := len(y) + 1
	lcs := make([]int32, (len(x)+1)*w)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			ops = append(ops, op{'-', x[i]})
			i++
		default:
			ops = append(ops, op{'+', y[j]})
			j++
		}
	}
	for ; i < len(x); i++ {
		ops = append(ops, op{'-', x[i]})
	}
	for ; j < len(y); j++ {
		ops = append(ops, op{'+', y[j]})
	}
	return ops
}
