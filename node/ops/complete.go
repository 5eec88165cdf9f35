package ops

import "github.com/lbctl/lbctl/node/config"

// InstalledVIPs lists the VIPs of the release installed on the node from
// the releases store alone (no D-Bus, no agent, no network): what shell
// completion offers for a VIP argument. Nothing installed gives none.
func InstalledVIPs(cfg *config.Config) ([]string, error) {
	r, err := installed(cfg)
	if err != nil || r == nil {
		return nil, err
	}
	return r.State.Names(), nil
}
