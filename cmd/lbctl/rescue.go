//go:build linux

package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/bundle/render/bird"
	"github.com/lbctl/lbctl/health/agent"
	birdc "github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/drift"
	"github.com/lbctl/lbctl/node/install"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/release"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

func init() {
	verifyDrift = runVerifyDrift
	register(
		&cli.Command{Name: "logs", Category: "node", Usage: "show the journal of a VIP's HAProxy unit (needs no network, no agent)",
			ArgsUsage: "VIP", Flags: []cli.Flag{configFlag,
				&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "show the last `N` lines"},
				&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the journal"}},
			Action: runLogs},
		&cli.Command{Name: "vip", Category: "node", Usage: "act on one VIP's HAProxy unit",
			Subcommands: []*cli.Command{{Name: "restart", Usage: "restart a VIP's HAProxy (drops its connections: prefer a reinstall or reload)",
				ArgsUsage: "VIP", Flags: []cli.Flag{configFlag}, Action: runVIPRestart}}},
		&cli.Command{Name: "doctor", Category: "node", Usage: "check what this node needs: kernel features, eBPF, BIRD, HAProxy, certificates",
			Flags: []cli.Flag{configFlag, jsonFlag}, Action: runDoctor},
	)
}

// currentVIP checks that name is a VIP of the current release.
func currentVIP(cfg *config.Config, name string) error {
	store, err := release.OpenExisting(cfg.StateDir)
	if err != nil {
		return err
	}
	cur, ok, err := store.Current()
	if err != nil || !ok {
		return errors.Join(err, errors.New("no release installed"))
	}
	r, err := store.Load(cur)
	if err != nil {
		return err
	}
	if r.State.VIP(name) == nil {
		return cli.Exit(fmt.Sprintf("no VIP %q in release %d (VIPs: %s)", name, cur, strings.Join(r.State.Names(), " ")), 1)
	}
	return nil
}

func runLogs(c *cli.Context) error {
	// Flags may follow the VIP: "lbctl logs VIP -n 20".
	args, err := positional(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return cli.Exit("logs: want one argument, the VIP", 2)
	}
	vip := args[0]
	if err := systemd.ValidateInstance(vip); err != nil {
		return cli.Exit("logs: "+err.Error(), 2)
	}
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	if err := currentVIP(cfg, vip); err != nil {
		return err
	}
	jargs := []string{"-u", systemd.UnitName(vip), "-n", fmt.Sprint(c.Int("lines")), "--no-pager", "-o", "short-iso"}
	if c.Bool("follow") {
		jargs = append(jargs, "-f")
	}
	cmd := exec.CommandContext(c.Context, "journalctl", jargs...)
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	return cmd.Run()
}

func runVIPRestart(c *cli.Context) error {
	// Flags may follow the VIP: "lbctl vip restart VIP --config FILE".
	args, err := positional(c)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return cli.Exit("vip restart: want one argument, the VIP", 2)
	}
	vip := args[0]
	if err := systemd.ValidateInstance(vip); err != nil {
		return cli.Exit("vip restart: "+err.Error(), 2)
	}
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	if err := recoverFirst(c, cfg); err != nil {
		return err
	}
	if err := currentVIP(cfg, vip); err != nil {
		return err
	}
	m, err := systemd.NewDBus(c.Context, systemd.WithLogHint(systemd.JournalHint(10)))
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Restart(c.Context, systemd.UnitName(vip)); err != nil {
		return cli.Exit("vip restart: "+indent(err.Error()), 1)
	}
	st, err := m.State(c.Context, systemd.UnitName(vip))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s\n", st)
	return nil
}

// runVerifyDrift compares the live node with its current release; exit 1
// on drift.
func runVerifyDrift(c *cli.Context) error {
	cfg, store, err := readStore(c)
	if err != nil {
		return err
	}
	if store == nil {
		return cli.Exit("verify: "+nothingInstalled(cfg)+": no release to compare the node with", 1)
	}
	cur, ok, err := store.Current()
	if err != nil {
		return err
	}
	if !ok {
		return cli.Exit("verify: no release installed on this node", 1)
	}
	r, err := store.Load(cur)
	if err != nil {
		return err
	}
	units, err := systemd.NewDBus(c.Context)
	if err != nil {
		return err
	}
	defer units.Close()
	obs, oerr := driftObserver(cfg, store, units)(c.Context)
	if obs == nil {
		return oerr
	}
	diffs := drift.Compare(r.State, obs)
	if oerr != nil {
		for _, l := range strings.Split(oerr.Error(), "\n") {
			diffs = append(diffs, "could not read: "+l)
		}
	}
	if c.Bool("json") {
		writeJSON(c.App.Writer, map[string]any{"serial": cur, "drift": diffs})
	} else if len(diffs) == 0 {
		fmt.Fprintf(c.App.Writer, "node %s matches release %d: nftables, addresses, units, configs, bird.conf, announcements\n", cfg.Node, cur)
	} else {
		fmt.Fprintf(c.App.Writer, "node %s drifted from release %d:\n", cfg.Node, cur)
		for _, d := range diffs {
			fmt.Fprintf(c.App.Writer, "  %s\n", d)
		}
		fmt.Fprintf(c.App.Writer, "`lbctl repair` puts it back to release %d (`lbctl repair --dry-run` shows how)\n", cur)
	}
	if len(diffs) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

// driftObserver reads the live node for `lbctl verify` and `lbctl repair`:
// the nftables table, the addresses on the current release's VIP
// interface, the lb-haproxy@ units, the VIP and unit directories,
// bird.conf and BIRD's VIP routes, with the prefixes BIRD may announce
// (announceable and not drained, from the store). It returns what it could
// read even when some of it failed; it needs no network and no agent.
func driftObserver(cfg *config.Config, store *release.Store, units systemd.Manager) install.Observer {
	return func(ctx context.Context) (*drift.Observed, error) {
		cur, ok, err := store.Current()
		if err != nil {
			return nil, err
		}
		ifname := netlink.DefaultInterface
		if ok {
			r, err := store.Load(cur)
			if err != nil {
				return nil, err
			}
			if r.State.Interface != "" {
				ifname = r.State.Interface
			}
		}
		fw, err := nft.New()
		if err != nil {
			return nil, err
		}
		nl, err := netlink.New(netlink.WithInterface(ifname))
		if err != nil {
			return nil, err
		}
		src := drift.Sources{NFT: fw, Net: nl, Units: units, VIPDir: cfg.VIPDir, UnitDir: cfg.UnitDir, BirdConf: cfg.Bird.Config,
			Routes: func(ctx context.Context) ([]netip.Prefix, error) {
				bc, err := birdc.Dial(ctx, cfg.Bird.Socket)
				if err != nil {
					return nil, err
				}
				defer bc.Close()
				var all []netip.Prefix
				for _, p := range []string{bird.Protocol4, bird.Protocol6} {
					rs, err := bc.Routes(ctx, p)
					if err != nil {
						return nil, err
					}
					all = append(all, rs...)
				}
				return all, nil
			}}
		obs, oerr := drift.Observe(ctx, src)
		ann, _ := store.ReadAnnounceable()
		drains, _ := store.ReadDrains()
		for _, v := range ann.VIPs {
			if drains.Drained(v.Name) {
				continue
			}
			for _, a := range v.Addresses {
				obs.MayAnnounce = append(obs.MayAnnounce, netlink.HostPrefix(a))
			}
		}
		return obs, oerr
	}
}

// handoffCheck asks the agent whether the flow handoff programs are
// attached: on a node with peers, a missing attachment means connections
// whose route moves to another node are reset.
func handoffCheck(ctx context.Context, socket string) check {
	const what = "flow handoff"
	as, err := (agent.Client{Socket: socket}).Status(ctx)
	switch {
	case err != nil:
		return check{What: what, Detail: fmt.Sprintf("cannot ask the agent, which attaches the programs: %v", err)}
	case as.Handoff == nil:
		return check{What: what, Detail: "the agent does not report flow handoff (an older agent?)"}
	}
	h := as.Handoff
	switch {
	case strings.HasPrefix(h.State, "off"):
		return check{What: what, OK: true, Detail: h.State}
	case h.State != "active":
		return check{What: what, Detail: h.State + ": connections whose route moves to another node are reset"}
	}
	tunnel, uplinks := false, 0
	for _, a := range h.Attached {
		tunnel = tunnel || strings.HasPrefix(a, "tunnel/")
		if strings.HasPrefix(a, "uplink/") {
			uplinks++
		}
	}
	if !tunnel || uplinks == 0 {
		return check{What: what, Detail: fmt.Sprintf("programs not attached everywhere: %v", h.Attached)}
	}
	return check{What: what, OK: true, Detail: fmt.Sprintf("attached to %s; peers %s", strings.Join(h.Attached, " "), strings.Join(h.Peers, " "))}
}

// check is one doctor finding.
type check struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func runDoctor(c *cli.Context) error {
	cfg, err := setup.LoadConfig(c.String("config"))
	if err != nil {
		return err
	}
	var checks []check
	add := func(what string, err error, okDetail string) {
		if err != nil {
			checks = append(checks, check{What: what, Detail: err.Error()})
		} else {
			checks = append(checks, check{What: what, OK: true, Detail: okDetail})
		}
	}
	if fw, err := nft.New(); err != nil {
		add("nftables", err, "")
	} else {
		_, exists, err := fw.Read()
		if errors.Is(err, nft.ErrDrift) {
			err = fmt.Errorf("%w (changed by hand? `lbctl verify` lists every drift; `lbctl repair` puts the node back to its release)", err)
		}
		add("nftables", err, fmt.Sprintf("netlink ok, table inet lbctl present=%v", exists))
	}
	if p, err := bpf.Load(); err != nil {
		add("eBPF socket probes", err, "")
	} else {
		p.Close()
		add("eBPF socket probes", nil, "iterator and listener events load (BTF "+btfState()+")")
	}
	if _, err := (bpf.SockDiag{}).Listeners(-1); err != nil {
		add("sock_diag", err, "")
	} else {
		add("sock_diag", nil, "listing listeners works (fallback probe)")
	}
	ctx, cancel := context.WithTimeout(c.Context, 3*time.Second)
	defer cancel()
	if bc, err := birdc.Dial(ctx, cfg.Bird.Socket); err != nil {
		add("BIRD control socket", err, "")
	} else {
		add("BIRD control socket", nil, cfg.Bird.Socket+": "+bc.Version())
		bc.Close()
	}
	if out, err := exec.Command("haproxy", "-v").Output(); err != nil {
		add("HAProxy", err, "")
	} else {
		add("HAProxy", nil, strings.SplitN(string(out), "\n", 2)[0])
	}
	if m, err := systemd.NewDBus(ctx); err != nil {
		add("systemd D-Bus", err, "")
	} else {
		add("systemd D-Bus", nil, "reachable")
		m.Close()
	}
	checks = append(checks, handoffCheck(ctx, cfg.Agent.Socket))
	checks = append(checks, certChecks(cfg.CertDir, time.Now(), 30*24*time.Hour)...)
	bad := 0
	for _, ch := range checks {
		if !ch.OK {
			bad++
		}
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, checks); err != nil {
			return err
		}
		// Like verify --json: the exit status still says whether all passed.
		if bad > 0 {
			return cli.Exit("", 1)
		}
		return nil
	}
	for _, ch := range checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(c.App.Writer, "%s %-22s %s\n", mark, ch.What, ch.Detail)
	}
	switch {
	case bad == 1:
		return cli.Exit("doctor: 1 problem", 1)
	case bad > 1:
		return cli.Exit(fmt.Sprintf("doctor: %d problems", bad), 1)
	}
	return nil
}

func btfState() string {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		return "present"
	}
	return "missing"
}

// certChecks reports every certificate in dir that does not parse or
// expires within soon.
func certChecks(dir string, now time.Time, soon time.Duration) []check {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	slices.Sort(files)
	var out []check
	for _, f := range files {
		what := "certificate " + strings.TrimSuffix(filepath.Base(f), ".pem")
		b, err := os.ReadFile(f)
		if err != nil {
			out = append(out, check{What: what, Detail: err.Error()})
			continue
		}
		var blk *pem.Block
		for rest := b; ; {
			blk, rest = pem.Decode(rest)
			if blk == nil || blk.Type == "CERTIFICATE" {
				break
			}
		}
		if blk == nil {
			out = append(out, check{What: what, Detail: "no certificate in " + f})
			continue
		}
		crt, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			out = append(out, check{What: what, Detail: err.Error()})
			continue
		}
		left := crt.NotAfter.Sub(now)
		switch {
		case left <= 0:
			out = append(out, check{What: what, Detail: "expired on " + crt.NotAfter.Format(time.RFC3339)})
		case left < soon:
			out = append(out, check{What: what, Detail: fmt.Sprintf("expires in %d days (%s)", int(left.Hours()/24), crt.NotAfter.Format("2006-01-02"))})
		default:
			out = append(out, check{What: what, OK: true, Detail: "valid until " + crt.NotAfter.Format("2006-01-02")})
		}
	}
	if len(files) == 0 {
		out = append(out, check{What: "certificates", OK: true, Detail: "none in " + dir})
	}
	return out
}
