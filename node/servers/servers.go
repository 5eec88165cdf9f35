// Package servers owns the operator's run-time maintenance of backend
// servers ("take typo3-web2 out for an upgrade"): the state file
// <state_dir>/servers.json, and setting it in every VIP's HAProxy through
// the runtime API (drain: no new sessions, existing ones finish; maint: no
// traffic at all). The state file is lbctl's own rather than HAProxy's
// server-state-file: it is a few lines an operator can read, it holds only
// what an operator asked for (never addresses or check results that a new
// bundle may have changed), and it applies to VIPs installed later. The
// agent re-applies it (Reconciler) after every reload, restart and install.
// It decides nothing about health.
package servers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/lbctl/lbctl/health/haproxy"
	"github.com/lbctl/lbctl/nodeapi"
)

// FileName is the state file in the node's state directory.
const FileName = "servers.json"

// Admin states an operator can set.
const (
	Drain = "drain"
	Maint = "maint"
)

// Entry is one server an operator took out (declared in nodeapi: `lbctl
// status --json` lists them).
type Entry = nodeapi.ServerEntry

// File is the state file's content.
type File struct {
	Entries []Entry `json:"servers"`
}

// Want returns the state asked for the server in the VIP ("" for none); an
// entry for the VIP wins over one for every VIP.
func (f File) Want(vip, server string) string {
	want := ""
	for _, e := range f.Entries {
		if !Matches(server, e.Server) {
			continue
		}
		if e.VIP == vip {
			return e.State
		}
		if e.VIP == "" {
			want = e.State
		}
	}
	return want
}

// Matches reports whether the HAProxy server name is the server an
// operator named: the same name, or its first label ("typo3-web2" for
// typo3-web2.campus.example).
func Matches(name, asked string) bool {
	return name == asked || (len(name) > len(asked) && name[len(asked)] == '.' && name[:len(asked)] == asked)
}

// Set records a state for the server (in one VIP or all), replacing what
// was recorded for the same server and VIP.
func (f *File) Set(server, vip, state string, now time.Time) {
	f.Remove(server, vip)
	f.Entries = append(f.Entries, Entry{Server: server, VIP: vip, State: state, Since: now.UTC().Truncate(time.Second)})
	slices.SortFunc(f.Entries, func(a, b Entry) int {
		return strings.Compare(a.Server+"\x00"+a.VIP, b.Server+"\x00"+b.VIP)
	})
}

// Remove forgets the server (in one VIP, or with vip "" every entry of the
// server).
func (f *File) Remove(server, vip string) {
	f.Entries = slices.DeleteFunc(f.Entries, func(e Entry) bool {
		return e.Server == server && (vip == "" || e.VIP == vip)
	})
}

// Read returns the state file of dir (empty when there is none).
func Read(dir string) (File, error) {
	var f File
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read server states: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("read server states %s: %w", filepath.Join(dir, FileName), err)
	}
	for i, e := range f.Entries {
		if e.State != Drain && e.State != Maint {
			return f, fmt.Errorf("read server states %s: servers[%d] (%s): state %q is not drain or maint", filepath.Join(dir, FileName), i, e.Server, e.State)
		}
	}
	return f, nil
}

// Write replaces the state file of dir atomically.
func Write(dir string, f File) error {
	if f.Entries == nil {
		f.Entries = []Entry{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, FileName), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write server states: %w", err)
	}
	return nil
}

// HAProxy's srv_admin_state bits (src/server.h).
const (
	adminForcedMaint  = 0x01 // set server state maint
	adminInheritMaint = 0x02 // tracked server in maintenance
	adminConfigMaint  = 0x04 // "disabled" in the configuration
	adminForcedDrain  = 0x08 // set server state drain
)

// Runtime is a server as "show servers state" lists it.
type Runtime struct {
	Backend, Name string
	Admin         int
	// Weight is the current (user) weight.
	Weight int
}

// State names the runtime admin state: maint, drain or ready; "disabled"
// when the configuration (the intents' disabled: true) keeps it out.
func (r Runtime) State() string {
	switch {
	case r.Admin&adminConfigMaint != 0:
		return "disabled"
	case r.Admin&(adminForcedMaint|adminInheritMaint) != 0:
		return Maint
	case r.Admin&adminForcedDrain != 0:
		return Drain
	}
	return "ready"
}

// Show lists the servers of the HAProxy behind socket.
func Show(ctx context.Context, socket string) ([]Runtime, error) {
	out, err := haproxy.Command(ctx, socket, "show servers state")
	if err != nil {
		return nil, err
	}
	return parseServersState(out)
}

func parseServersState(out string) ([]Runtime, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	col := map[string]int{}
	var rs []Runtime
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			for i, h := range strings.Fields(line[2:]) {
				col[h] = i
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(col) == 0 {
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(f) {
				return f[i]
			}
			return ""
		}
		admin, err := strconv.Atoi(get("srv_admin_state"))
		if err != nil {
			return nil, fmt.Errorf("show servers state: %q: srv_admin_state: %w", line, err)
		}
		w, _ := strconv.Atoi(get("srv_uweight"))
		rs = append(rs, Runtime{Backend: get("be_name"), Name: get("srv_name"), Admin: admin, Weight: w})
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("show servers state: no header in %q", out)
	}
	return rs, nil
}

// set runs "set server BACKEND/SERVER state STATE".
func set(ctx context.Context, socket string, r Runtime, state string) error {
	out, err := haproxy.Command(ctx, socket, fmt.Sprintf("set server %s/%s state %s", r.Backend, r.Name, state))
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("set server %s/%s state %s: %s", r.Backend, r.Name, state, s)
	}
	return nil
}

// Change is one state set on one VIP's server.
type Change struct {
	VIP, Backend, Server, From, To string
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s/%s: %s -> %s", c.VIP, c.Backend, c.Server, c.From, c.To)
}

// Apply makes the VIP's HAProxy show the states the file asks for; with
// enable set, servers the file does not name but that an operator forced
// to drain or maint are made ready (lbctl server enable). Servers the
// configuration disables are left alone.
func Apply(ctx context.Context, socket, vip string, f File, enable []string) ([]Change, error) {
	rs, err := Show(ctx, socket)
	if err != nil {
		return nil, err
	}
	return apply(ctx, socket, vip, rs, f, enable)
}

func apply(ctx context.Context, socket, vip string, rs []Runtime, f File, enable []string) ([]Change, error) {
	var changes []Change
	var errs []error
	for _, r := range rs {
		cur := r.State()
		if cur == "disabled" {
			continue
		}
		want := f.Want(vip, r.Name)
		if want == "" {
			if !slices.Contains(enable, r.Name) || cur == "ready" {
				continue
			}
			want = "ready"
		}
		if want == cur {
			continue
		}
		// "state drain" only adds the drain flag: from forced maintenance,
		// clear it first (HAProxy has no command that clears maint alone).
		if want == Drain && r.Admin&adminForcedMaint != 0 {
			if err := set(ctx, socket, r, "ready"); err != nil {
				errs = append(errs, fmt.Errorf("VIP %s: %w", vip, err))
				continue
			}
		}
		if err := set(ctx, socket, r, want); err != nil {
			errs = append(errs, fmt.Errorf("VIP %s: %w", vip, err))
			continue
		}
		changes = append(changes, Change{VIP: vip, Backend: r.Backend, Server: r.Name, From: cur, To: want})
	}
	return changes, errors.Join(errs...)
}
