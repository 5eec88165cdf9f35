package ops

import (
	"context"

	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/setup"
)

// Repair is what `lbctl repair --json` prints.
type Repair struct {
	Node      string   `json:"node"`
	Serial    uint64   `json:"serial"`
	Drift     []string `json:"drift"`
	Steps     []string `json:"steps"`
	DryRun    bool     `json:"dry_run"`
	Repaired  bool     `json:"repaired"`
	Remaining []string `json:"remaining"`
	Millis    int64    `json:"ms"`
	// Result is the installer's own account, for the text output.
	Result *install.RepairResult `json:"-"`
}

// RepairNode puts the node back to its current release, fixing exactly
// the drift verify reports (opt.DryRun: only shows how).
func RepairNode(ctx context.Context, n *setup.Node, opt install.Options) (*Repair, error) {
	res, err := n.Installer.Repair(ctx, Observer(n.Config, n.Store, n.Units), opt)
	if err != nil {
		return nil, err
	}
	out := &Repair{Node: n.Config.Node, Serial: res.Serial, Drift: res.Drift, Steps: []string{}, DryRun: opt.DryRun,
		Repaired: !opt.DryRun && !res.NoOp && len(res.Remaining) == 0, Remaining: res.Remaining,
		Millis: res.Duration.Milliseconds(), Result: res}
	for _, s := range res.Plan.Steps {
		out.Steps = append(out.Steps, s.Do.String())
	}
	if out.Drift == nil {
		out.Drift = []string{}
	}
	if out.Remaining == nil {
		out.Remaining = []string{}
	}
	return out, nil
}
