package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/sign"
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func manCommand() *cli.Command {
	return &cli.Command{Name: "man", Usage: "print a manual page (roff): lbctl(1), or a command's lbctl-COMMAND(1); or write them all",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Flags: []cli.Flag{&cli.StringFlag{Name: "dir", Usage: "write every page into `DIR` (lbctl.1, lbctl-build.1, ...)"},
			&cli.BoolFlag{Name: "gzip", Usage: "with --dir: write NAME.1.gz, compressed like gzip -9n"}},
		Action: runMan}
}

func runMan(c *cli.Context) error {
	pages := clix.ManPages(c.App, manual)
	if dir := c.String("dir"); dir != "" {
		return writeManPages(dir, pages, c.Bool("gzip"))
	}
	name := strings.Join(append([]string{c.App.Name}, c.Args().Slice()...), "-") + ".1"
	page, ok := pages[name]
	if !ok {
		return clix.Usagef("man: no page %s (see lbctl help)", name)
	}
	_, err := io.WriteString(c.App.Writer, page)
	return err
}

// writeManPages writes every page into dir, gzip'd (-9n) when asked.
func writeManPages(dir string, pages map[string]string, gz bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, page := range pages {
		b := []byte(page)
		if gz {
			name += ".gz"
			b = gzip9n(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("man: %w", err)
		}
	}
	return nil
}

// gzip9n compresses like `gzip -9n`: best compression, no name, no time.
func gzip9n(b []byte) []byte {
	var buf strings.Builder
	z, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	z.Write(b)
	z.Close()
	return []byte(buf.String())
}

// manual is what the man pages say beyond the command definitions.
var manual = clix.Manual{
	Date:    "2026",
	Version: version,
	Description: []string{
		"lbctl turns intents (YAML files describing services) into signed bundles and installs them on load-balancer nodes: one HAProxy instance per VIP, the VIP addresses, an nftables firewall and BGP announcements through BIRD.",
		"On the admin's machine (any OS): check, resolve, build, diff, inspect, verify and push. On a node (Linux): install, plan, rollback, status, releases, drain, undrain, server, logs, vip, doctor, repair, sync and the agent.",
		"Flags may follow arguments (lbctl check DIR --json); -- ends the flags. Every read command prints JSON with --json. lbctl help COMMAND shows a command's help, lbctl completion bash|zsh|fish prints a completion script.",
	},
	FlagFiles: map[string][]clix.ManItem{
		"config": {
			{Name: "/etc/lbctl/lbctl.yaml", Text: "The node configuration (--config)."},
			{Name: "/var/lib/lbctl", Text: "The node's state: releases/SERIAL, current, install.log, drain.json, highest-serial.json (state_dir of lbctl.yaml)."},
		},
		"trusted": {
			{Name: "~/.config/lbctl/trusted.d", Text: "The admin's trusted public keys (*.pub, and revoked), $XDG_CONFIG_HOME/lbctl/trusted.d when XDG_CONFIG_HOME is set: used without --pubkey, --trusted and their variables."},
			{Name: sign.DefaultTrustDir, Text: "The node's trusted public keys, used when the admin's directory does not exist."},
		},
	},
	FlagEnv: map[string][]clix.ManItem{
		"pubkey":  {{Name: clix.PubkeyEnv, Text: "A trusted public key file, used without --pubkey and --trusted."}},
		"trusted": {{Name: clix.TrustedDirEnv, Text: "A directory of trusted public keys, used without --pubkey, --trusted and " + clix.PubkeyEnv + "."}, {Name: "XDG_CONFIG_HOME", Text: "Where the admin's lbctl/trusted.d is (default ~/.config)."}},
	},
	Extra: manExtra,
}

var manExtra = map[string]clix.ManExtra{
	"": {Env: []clix.ManItem{
		{Name: "LBCTL_CONFIG", Text: "The node configuration file of the node commands (--config)."},
		{Name: sign.PassphraseEnv, Text: "The passphrase of the secret signing key (keygen, build); without it lbctl asks on the terminal."},
		{Name: clix.PubkeyEnv, Text: "A trusted public key file (build --against, diff, inspect, verify)."},
		{Name: clix.TrustedDirEnv, Text: "A directory of trusted public keys."},
		{Name: "XDG_CONFIG_HOME", Text: "Where the admin's lbctl/trusted.d is (default ~/.config)."},
		{Name: "SOURCE_DATE_EPOCH", Text: "The creation time of a bundle (build), for reproducible builds."},
	}, Files: []clix.ManItem{
		{Name: "/etc/lbctl/lbctl.yaml", Text: "The node configuration."},
		{Name: "~/.config/lbctl/trusted.d, " + sign.DefaultTrustDir, Text: "Trusted public keys, the admin's and the node's."},
		{Name: "/var/lib/lbctl", Text: "The node's state."},
	}, Examples: []clix.ManExample{
		{Command: "lbctl check intents/", Text: "Check an intents tree; every problem with file:line:column."},
		{Command: "lbctl build intents/ -o campus.bundle --key site.key --against previous.bundle --pubkey site.pub", Text: "Build and sign a bundle and say what changed."},
		{Command: "lbctl push campus.bundle lb1.example lb2.example", Text: "Roll it out, canary first."},
		{Command: "lbctl status", Text: "On a node: its release and every VIP."},
	}},
	"build": {Env: []clix.ManItem{
		{Name: sign.PassphraseEnv, Text: "The passphrase of --key; without it lbctl asks on the terminal."},
		{Name: "SOURCE_DATE_EPOCH", Text: "The creation time when --time is not given."},
	}, Exit: "The tree has problems (listed on standard error), the key or --against bundle could not be read, or the bundle would be expired already.",
		Examples: []clix.ManExample{
			{Command: "lbctl build intents/ -o campus.bundle --key site.key", Text: "Build a bundle that expires in 30 days."},
			{Command: "lbctl build intents/ -o campus.bundle --key site.key --expires 7d --against previous.bundle --pubkey site.pub", Text: "Expire in 7 days and summarise the changes since the previous bundle."},
		}},
	"check": {Exit: "The tree has problems: each on standard error (or in the JSON) with its file, line and column.",
		Examples: []clix.ManExample{
			{Command: "lbctl check intents/", Text: "Check a tree."},
			{Command: "lbctl check intents/ --json | jq '.problems[] | \"\\(.file):\\(.line): \\(.message)\"'", Text: "The problems as JSON, for an editor or CI."},
		}},
	"verify": {Exit: "The bundle is invalid (signature, manifest, expiry, files), or without BUNDLE the node drifted from its release or has none.",
		Examples: []clix.ManExample{
			{Command: "lbctl verify campus.bundle --pubkey site.pub", Text: "Verify a bundle on a workstation."},
			{Command: "lbctl verify --json", Text: "On a node: compare the live node with its release."},
		}},
	"diff": {Env: []clix.ManItem{
		{Name: "LBCTL_PAGER, PAGER", Text: "The pager for output to a terminal (default less; empty or cat: none)."},
		{Name: "LESS", Text: "less's options (default FRX)."},
		{Name: "NO_COLOR", Text: "No colour with --color auto."},
	}, Exit: "A bundle could not be read or verified; with --exit-code: something changes (and an unreadable bundle exits 3).",
		Examples: []clix.ManExample{
			{Command: "lbctl diff previous.bundle campus.bundle", Text: "Review what a new bundle changes, paged on a terminal."},
			{Command: "lbctl diff --exit-code --summary previous.bundle campus.bundle", Text: "In a script: exit 1 when anything changes, with the summary."},
			{Command: "lbctl diff --json --stat previous.bundle campus.bundle | jq '.vips.changed'", Text: "The changed VIPs, every one."},
		}},
	"inspect":     {Examples: []clix.ManExample{{Command: "LBCTL_PUBKEY=site.pub lbctl inspect campus.bundle --json", Text: "Show what a bundle deploys, as JSON."}}},
	"keygen":      {Env: []clix.ManItem{{Name: sign.PassphraseEnv, Text: "The passphrase that encrypts the secret key; without it lbctl asks on the terminal."}}, Examples: []clix.ManExample{{Command: "lbctl keygen site", Text: "Create site.key and site.pub."}}},
	"install":     {Examples: []clix.ManExample{{Command: "lbctl install campus.bundle", Text: "Install a bundle; any failure rolls back."}, {Command: "ssh lb1 lbctl install - < campus.bundle", Text: "From standard input."}}},
	"plan":        {Examples: []clix.ManExample{{Command: "lbctl plan campus.bundle --json", Text: "What installing it would change."}}},
	"status":      {Examples: []clix.ManExample{{Command: "lbctl status --json", Text: "The node's status as JSON (what lbctl push reads)."}}},
	"releases":    {Examples: []clix.ManExample{{Command: "lbctl releases", Text: "The kept releases and the install log."}}},
	"drain":       {Examples: []clix.ManExample{{Command: "lbctl drain 192.0.2.10 --wait 10m", Text: "Withdraw one VIP and wait for its connections."}}},
	"doctor":      {Exit: "A check failed.", Examples: []clix.ManExample{{Command: "lbctl doctor --json", Text: "Every check as JSON."}}},
	"render node": {Examples: []clix.ManExample{{Command: "lbctl render node intents/ lb1 out/", Text: "Write lb1's files into out/, replacing what lbctl render wrote there before."}}},
	"completion":  {Examples: []clix.ManExample{{Command: "source <(lbctl completion bash)", Text: "Complete lbctl in this bash."}, {Command: "lbctl completion fish > ~/.config/fish/completions/lbctl.fish", Text: "Install the fish completion."}}},
	"version":     {Examples: []clix.ManExample{{Command: "lbctl version --json", Text: "Version, commit and Go version as JSON."}}},
}
