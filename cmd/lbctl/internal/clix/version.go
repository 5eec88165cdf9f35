package clix

import "runtime/debug"

// Commit is the commit lbctl was built from: linked, the one the linker
// set (-X main.commit), else the one Go recorded (vcs.revision, with
// "+dirty" for a modified tree), else "".
func Commit(linked string) string {
	if linked != "" {
		return linked
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
