package sign

import (
	"fmt"
	"strconv"
)

// FormatKeyID formats a minisign key ID the way minisign prints it: 16
// upper-case hex digits.
func FormatKeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// ParseKeyID parses a key ID printed by FormatKeyID (or by minisign). Case is
// ignored; exactly 16 hex digits are required.
func ParseKeyID(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("key id %q: want 16 hex digits", s)
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("key id %q: want 16 hex digits", s)
	}
	return id, nil
}
