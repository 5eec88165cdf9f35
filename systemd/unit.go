package systemd

import (
	_ "embed"
	"path"

	"github.com/lbctl/lbctl/systemd/unitname"
)

// TemplateName is the file name of the HAProxy template unit.
const TemplateName = "lb-haproxy@.service"

// MaxInstanceLen bounds an instance name (unitname.MaxInstanceLen).
const MaxInstanceLen = unitname.MaxInstanceLen

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

// UnitName returns the unit name of the VIP's HAProxy instance
// (unitname.Unit, the pure definition that planners use).
func UnitName(vip string) string { return unitname.Unit(vip) }

// UnitPattern matches the unit names of every VIP's HAProxy instance.
const UnitPattern = unitname.Pattern

// InstanceOf returns the VIP name of an lb-haproxy@ unit name, or false if
// unit is not an instance of the template (unitname.InstanceOf).
func InstanceOf(unit string) (string, bool) { return unitname.InstanceOf(unit) }

// ErrInstanceName is wrapped by ValidateInstance's errors.
var ErrInstanceName = unitname.ErrInstanceName

// ValidateInstance reports whether vip can be used verbatim as a systemd
// instance name and as a directory name (unitname.Validate).
func ValidateInstance(vip string) error { return unitname.Validate(vip) }

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
