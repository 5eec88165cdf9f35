package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lbctl/lbctl/bpf"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health/agent"
	birdc "github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/node/cert"
	"github.com/lbctl/lbctl/node/config"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/node/nft/nftspec"
	"github.com/lbctl/lbctl/node/setup"
	"github.com/lbctl/lbctl/systemd"
)

// Check is one doctor finding; `lbctl doctor --json` prints the list.
type Check struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// finding is the Check of what: failed with err, else OK with okDetail.
func finding(what string, err error, okDetail string) Check {
	if err != nil {
		return Check{What: what, Detail: err.Error()}
	}
	return Check{What: what, OK: true, Detail: okDetail}
}

// Doctor checks what this node needs: nftables, eBPF and sock_diag, BIRD's
// control socket, HAProxy, systemd, the agent's flow handoff and the
// certificates (expiring within 30 days is a problem; one the current
// release needs is checked as an install would). It changes nothing.
func Doctor(ctx context.Context, cfg *config.Config) []Check {
	checks := []Check{nftCheck()}
	checks = append(checks, probeChecks()...)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	checks = append(checks, birdCheck(ctx, cfg.Bird.Socket), haproxyCheck(), dbusCheck(ctx),
		handoffCheck(ctx, cfg.Agent.Socket))
	needs, err := releaseCertificates(cfg)
	if err != nil {
		checks = append(checks, finding("certificates of the current release", err, ""))
	}
	return append(checks, CertificateChecks(needs, cfg.CertDir, time.Now(), 30*24*time.Hour)...)
}

// releaseCertificates lists the certificates the current release's VIPs
// use (none when nothing is installed).
func releaseCertificates(cfg *config.Config) ([]model.CertificateUse, error) {
	r, err := installed(cfg)
	if err != nil || r == nil {
		return nil, err
	}
	v, err := setup.Opener(cfg.TrustedDir, func() time.Time { return time.Time{} })(r.Bundle)
	if err != nil {
		return nil, fmt.Errorf("release %d: %w", r.Serial, err)
	}
	return v.Site.Certificates(), nil
}

// CertificateChecks is CertChecks of dir, with every certificate in needs
// (those the current release's VIPs use) checked in full as an install
// checks it: present, readable, chain and key matching, covering the
// services' names, not expired. A failure names the VIPs and services
// that need it and replaces the file's own check.
func CertificateChecks(needs []model.CertificateUse, dir string, now time.Time, soon time.Duration) []Check {
	checks := CertChecks(dir, now, soon)
	for _, u := range needs {
		_, err := cert.CheckFile(dir, u.Name, u.Hosts, now)
		if err == nil {
			continue
		}
		needed := u.NeededBy()
		c := Check{What: "certificate " + u.Name, Detail: fmt.Sprintf("%v (%s)", err, needed)}
		// What names the certificate already: "expired on ... (PATH;
		// needed by ...)".
		if fe := (*cert.FileError)(nil); errors.As(err, &fe) {
			c.Detail = fmt.Sprintf("%v (%s; %s)", fe.Err, fe.Path, needed)
		}
		if i := slices.IndexFunc(checks, func(x Check) bool { return x.What == c.What }); i >= 0 {
			checks[i] = c
		} else {
			checks = append(checks, c)
		}
	}
	return checks
}

func nftCheck() Check {
	fw, err := nft.New()
	if err != nil {
		return finding("nftables", err, "")
	}
	_, exists, err := fw.Read()
	if errors.Is(err, nftspec.ErrDrift) {
		err = fmt.Errorf("%w (changed by hand? `lbctl verify` lists every drift; `lbctl repair` puts the node back to its release)", err)
	}
	return finding("nftables", err, fmt.Sprintf("netlink ok, table inet lbctl present=%v", exists))
}

// probeChecks are the health probes' kernel interfaces: the eBPF programs
// and sock_diag, their fallback.
func probeChecks() []Check {
	var out []Check
	if p, err := bpf.Load(); err != nil {
		out = append(out, finding("eBPF socket probes", err, ""))
	} else {
		p.Close()
		out = append(out, finding("eBPF socket probes", nil, "iterator and listener events load (BTF "+btfState()+")"))
	}
	_, err := (bpf.SockDiag{}).Listeners(-1)
	return append(out, finding("sock_diag", err, "listing listeners works (fallback probe)"))
}

func btfState() string {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		return "present"
	}
	return "missing"
}

func birdCheck(ctx context.Context, socket string) Check {
	bc, err := birdc.Dial(ctx, socket)
	if err != nil {
		return finding("BIRD control socket", err, "")
	}
	defer bc.Close()
	return finding("BIRD control socket", nil, socket+": "+bc.Version())
}

func haproxyCheck() Check {
	out, err := exec.Command("haproxy", "-v").Output()
	if err != nil {
		return finding("HAProxy", err, "")
	}
	return finding("HAProxy", nil, strings.SplitN(string(out), "\n", 2)[0])
}

func dbusCheck(ctx context.Context) Check {
	m, err := systemd.NewDBus(ctx)
	if err != nil {
		return finding("systemd D-Bus", err, "")
	}
	m.Close()
	return finding("systemd D-Bus", nil, "reachable")
}

// handoffCheck asks the agent whether the flow handoff programs are
// attached: on a node with peers, a missing attachment means connections
// whose route moves to another node are reset.
func handoffCheck(ctx context.Context, socket string) Check {
	const what = "flow handoff"
	as, err := (agent.Client{Socket: socket}).Status(ctx)
	switch {
	case err != nil:
		return Check{What: what, Detail: fmt.Sprintf("cannot ask the agent, which attaches the programs: %v", err)}
	case as.Handoff == nil:
		return Check{What: what, Detail: "the agent does not report flow handoff (an older agent?)"}
	}
	h := as.Handoff
	switch {
	case strings.HasPrefix(h.State, "off"):
		return Check{What: what, OK: true, Detail: h.State}
	case h.State != "active":
		return Check{What: what, Detail: h.State + ": connections whose route moves to another node are reset"}
	}
	tunnel, uplinks := false, 0
	for _, a := range h.Attached {
		tunnel = tunnel || strings.HasPrefix(a, "tunnel/")
		if strings.HasPrefix(a, "uplink/") {
			uplinks++
		}
	}
	if !tunnel || uplinks == 0 {
		return Check{What: what, Detail: fmt.Sprintf("programs not attached everywhere: %v", h.Attached)}
	}
	return Check{What: what, OK: true, Detail: fmt.Sprintf("attached to %s; peers %s; %s", strings.Join(h.Attached, " "), strings.Join(h.Peers, " "), h.Pins)}
}

// CertChecks reports every certificate in dir (<name>.pem) whose leaf does
// not parse or expires within soon.
func CertChecks(dir string, now time.Time, soon time.Duration) []Check {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	slices.Sort(files)
	var out []Check
	for _, f := range files {
		out = append(out, certCheck(f, now, soon))
	}
	if len(files) == 0 {
		out = append(out, Check{What: "certificates", OK: true, Detail: "none in " + dir})
	}
	return out
}

func certCheck(file string, now time.Time, soon time.Duration) Check {
	c := Check{What: "certificate " + strings.TrimSuffix(filepath.Base(file), ".pem")}
	b, err := os.ReadFile(file)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	crt, err := cert.Leaf(b)
	switch {
	case errors.Is(err, cert.ErrNoCertificate):
		c.Detail = "no certificate in " + file
		return c
	case err != nil:
		c.Detail = err.Error()
		return c
	}
	switch left := crt.NotAfter.Sub(now); {
	case left <= 0:
		c.Detail = "expired on " + crt.NotAfter.Format(time.RFC3339)
	case left < soon:
		c.Detail = fmt.Sprintf("expires in %d days (%s)", int(left.Hours()/24), crt.NotAfter.Format("2006-01-02"))
	default:
		c.OK, c.Detail = true, "valid until "+crt.NotAfter.Format("2006-01-02")
	}
	return c
}
