package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxExpansion bounds the hosts one range pattern may produce.
const maxExpansion = 1 << 16

// hostRange matches one Ansible host range: [1:3], [01:10], [a:f], [0:20:5].
var hostRange = regexp.MustCompile(`\[([0-9]+|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?\]`)

// expandHosts expands the host ranges in a host name, as Ansible does:
// "web[01:03]" gives web01, web02, web03; "db-[a:c]" gives db-a, db-b,
// db-c; an optional third part is the stride. A name without brackets is
// returned as is.
func expandHosts(pattern string) ([]string, error) {
	if pattern == "" {
		return nil, errors.New("empty host name")
	}
	if !strings.ContainsAny(pattern, "[]") {
		return []string{pattern}, nil
	}
	m := hostRange.FindStringSubmatchIndex(pattern)
	if m == nil {
		return nil, errors.New("invalid host range (want [start:end] or [start:end:stride], e.g. web[01:10])")
	}
	head, tail := pattern[:m[0]], pattern[m[1]:]
	beg, end := pattern[m[2]:m[3]], pattern[m[4]:m[5]]
	stride := 1
	if m[6] >= 0 {
		s, err := strconv.Atoi(pattern[m[6]:m[7]])
		if err != nil || s <= 0 {
			return nil, fmt.Errorf("invalid range stride %q", pattern[m[6]:m[7]])
		}
		stride = s
	}
	items, err := rangeItems(beg, end, stride)
	if err != nil {
		return nil, err
	}
	rest, err := expandHosts("x" + tail) // "x" keeps an empty tail valid
	if err != nil {
		return nil, err
	}
	if len(items)*len(rest) > maxExpansion {
		return nil, fmt.Errorf("range expands to more than %d hosts", maxExpansion)
	}
	out := make([]string, 0, len(items)*len(rest))
	for _, it := range items {
		for _, r := range rest {
			out = append(out, head+it+r[1:])
		}
	}
	return out, nil
}

func rangeItems(beg, end string, stride int) ([]string, error) {
	isNum := beg[0] >= '0' && beg[0] <= '9'
	if isNum != (end[0] >= '0' && end[0] <= '9') {
		return nil, fmt.Errorf("range [%s:%s] mixes letters and numbers", beg, end)
	}
	if !isNum {
		if isUpper(beg[0]) != isUpper(end[0]) {
			return nil, fmt.Errorf("range [%s:%s] mixes upper and lower case", beg, end)
		}
		if beg > end {
			return nil, fmt.Errorf("range [%s:%s] ends before it starts", beg, end)
		}
		var out []string
		for c := beg[0]; c <= end[0]; c += byte(stride) {
			out = append(out, string(c))
			if int(c)+stride > 0xff {
				break
			}
		}
		return out, nil
	}
	width := 0
	if len(beg) > 1 && beg[0] == '0' {
		if len(beg) != len(end) {
			return nil, fmt.Errorf("range [%s:%s]: start and end must have the same width when zero-padded", beg, end)
		}
		width = len(beg)
	}
	b, errB := strconv.Atoi(beg)
	e, errE := strconv.Atoi(end)
	if errB != nil || errE != nil {
		return nil, fmt.Errorf("range [%s:%s] expands to more than %d hosts", beg, end, maxExpansion)
	}
	if b > e {
		return nil, fmt.Errorf("range [%s:%s] ends before it starts", beg, end)
	}
	if (e-b)/stride >= maxExpansion {
		return nil, fmt.Errorf("range [%s:%s] expands to more than %d hosts", beg, end, maxExpansion)
	}
	var out []string
	for i := b; i <= e; i += stride {
		out = append(out, fmt.Sprintf("%0*d", width, i))
	}
	return out, nil
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
