package nft

import (
	"github.com/lbctl/lbctl/bundle/model"
	rendernft "github.com/lbctl/lbctl/bundle/render/nft"
	"github.com/lbctl/lbctl/node/nft/nftspec"
)

// Render returns the table fw describes in nft syntax, the same table Apply
// programs: `nft -f` accepts it, and the kernel then lists the same ruleset
// (the integration tests check both). Used for display and by Fake.String.
func Render(fw model.Firewall) (string, error) {
	if _, err := nftspec.Compile(fw); err != nil {
		return "", err
	}
	// The review text is the build side's: one renderer of the nft syntax.
	return rendernft.NFTText(fw), nil
}
