package systemd

import (
	_ "embed"
	"errors"
	"fmt"
	"path"
	"strings"
)

// TemplateName is the file name of the HAProxy template unit.
const TemplateName = "lb-haproxy@.service"

const (
	unitPrefix = "lb-haproxy@"
	unitSuffix = ".service"
	// MaxInstanceLen bounds an instance name; the unit name (with prefix and
	// suffix) stays far below systemd's 255 bytes.
	MaxInstanceLen = 128
)

// Paths used by the template unit (the same strings appear in it, with %i
// for the VIP name; a test checks they agree).
const (
	// ConfigRoot holds one directory per VIP, each with haproxy.cfg.
	ConfigRoot = "/etc/lbctl/vips"
	// RuntimeRoot holds one runtime directory per running VIP (systemd's
	// RuntimeDirectory=, owned by the haproxy user, removed on stop).
	RuntimeRoot = "/run/lbctl/vips"
	// UnitDir is where lbctl installs the template and drop-ins on a node.
	UnitDir = "/etc/systemd/system"
	// TransparentDropInName is the drop-in file name for transparent VIPs.
	TransparentDropInName = "transparent.conf"
)

//go:embed units/lb-haproxy@.service
var template string

// Template returns the text of lb-haproxy@.service.
func Template() string { return template }

// TransparentDropIn returns the drop-in that lets a transparent VIP's
// HAProxy set IP_TRANSPARENT (bind to non-local addresses, "usesrc
// clientip"): the kernel allows it with CAP_NET_ADMIN or CAP_NET_RAW, and
// CAP_NET_ADMIN alone is enough. Listing the capabilities again replaces
// nothing: both settings add to the template's CAP_NET_BIND_SERVICE.
func TransparentDropIn() string {
	return `# Written by lbctl for a transparent VIP: IP_TRANSPARENT needs CAP_NET_ADMIN.
[Service]
AmbientCapabilities=CAP_NET_ADMIN
CapabilityBoundingSet=CAP_NET_ADMIN
`
}

// UnitName returns the unit name of the VIP's HAProxy instance. It does not
// validate the name; see ValidateInstance.
func UnitName(vip string) string { return unitPrefix + vip + unitSuffix }

// UnitPattern matches the unit names of every VIP's HAProxy instance.
const UnitPattern = unitPrefix + "*" + unitSuffix

// InstanceOf returns the VIP name of an lb-haproxy@ unit name, or false if
// unit is not an instance of the template.
func InstanceOf(unit string) (string, bool) {
	if !strings.HasPrefix(unit, unitPrefix) || !strings.HasSuffix(unit, unitSuffix) {
		return "", false
	}
	vip := strings.TrimSuffix(strings.TrimPrefix(unit, unitPrefix), unitSuffix)
	if ValidateInstance(vip) != nil {
		return "", false
	}
	return vip, true
}

// ErrInstanceName is wrapped by ValidateInstance's errors.
var ErrInstanceName = errors.New("invalid instance name")

// ValidateInstance reports whether vip can be used verbatim as a systemd
// instance name and as a directory name: 1 to MaxInstanceLen characters out
// of [A-Za-z0-9._-], not starting with '.' or '-'. Such names need no
// systemd escaping, so %i and %I are equal in the unit.
func ValidateInstance(vip string) error {
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

// ConfigPath is the HAProxy config file of the VIP.
func ConfigPath(vip string) string { return path.Join(ConfigRoot, vip, "haproxy.cfg") }

// RuntimeDir is the VIP's runtime directory while its unit runs.
func RuntimeDir(vip string) string { return path.Join(RuntimeRoot, vip) }

// PIDFile is the pid file HAProxy's master writes.
func PIDFile(vip string) string { return path.Join(RuntimeDir(vip), "haproxy.pid") }

// MasterSocket is HAProxy's master CLI socket ("show proc", "reload").
func MasterSocket(vip string) string { return path.Join(RuntimeDir(vip), "master.sock") }

// DropInDir is the VIP's drop-in directory, relative to a unit directory.
func DropInDir(vip string) string { return UnitName(vip) + ".d" }
