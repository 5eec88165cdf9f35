package ops

import "github.com/lbctl/lbctl/node/release"

// Releases is what the node keeps: its releases, the current one, the
// highest serial it ever installed and the install log.
type Releases struct {
	Current uint64
	Serials []uint64
	Highest *release.Highest // nil when none is recorded
	Log     []release.LogEntry
}

// ListReleases reads the releases store.
func ListReleases(store *release.Store) (*Releases, error) {
	high, hasHigh, err := store.ReadHighest()
	if err != nil {
		return nil, err
	}
	var r Releases
	if hasHigh {
		r.Highest = &high
	}
	if r.Serials, err = store.Serials(); err != nil {
		return nil, err
	}
	if r.Current, _, err = store.Current(); err != nil {
		return nil, err
	}
	if r.Log, err = store.History(); err != nil {
		return nil, err
	}
	return &r, nil
}
