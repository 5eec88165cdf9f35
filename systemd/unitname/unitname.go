// Package unitname is the grammar of the names of lbctl's HAProxy units
// (lb-haproxy@<vip>.service): pure string functions that planners and the
// drift check use without linking the D-Bus client of package systemd.
package unitname

import (
	"errors"
	"fmt"
	"strings"
)

const (
	unitPrefix = "lb-haproxy@"
	unitSuffix = ".service"
	// MaxInstanceLen bounds an instance name; the unit name (with prefix and
	// suffix) stays far below systemd's 255 bytes.
	MaxInstanceLen = 128
)

// Unit returns the unit name of the VIP's HAProxy instance. It does not
// validate the name; see Validate.
func Unit(vip string) string { return unitPrefix + vip + unitSuffix }

// Pattern matches the unit names of every VIP's HAProxy instance.
const Pattern = unitPrefix + "*" + unitSuffix

// InstanceOf returns the VIP name of an lb-haproxy@ unit name, or false if
// unit is not an instance of the template.
func InstanceOf(unit string) (string, bool) {
	if !strings.HasPrefix(unit, unitPrefix) || !strings.HasSuffix(unit, unitSuffix) {
		return "", false
	}
	vip := strings.TrimSuffix(strings.TrimPrefix(unit, unitPrefix), unitSuffix)
	if Validate(vip) != nil {
		return "", false
	}
	return vip, true
}

// ErrInstanceName is wrapped by Validate's errors.
var ErrInstanceName = errors.New("invalid instance name")

// Validate reports whether vip can be used verbatim as a systemd
// instance name and as a directory name: 1 to MaxInstanceLen characters out
// of [A-Za-z0-9._-], not starting with '.' or '-'. Such names need no
// systemd escaping, so %i and %I are equal in the unit.
func Validate(vip string) error {
	if vip == "" {
		return fmt.Errorf("%w: empty", ErrInstanceName)
	}
	if len(vip) > MaxInstanceLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInstanceName, vip, MaxInstanceLen)
	}
	if vip[0] == '.' || vip[0] == '-' {
		return fmt.Errorf("%w: %q starts with %q", ErrInstanceName, vip, vip[0])
	}
	for i := 0; i < len(vip); i++ {
		c := vip[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has %q at offset %d (allowed: A-Z a-z 0-9 . _ -)", ErrInstanceName, vip, c, i)
		}
	}
	return nil
}
