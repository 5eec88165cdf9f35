// Package observe reads an LB node into a drift.Observed: the nftables
// table, VIP addresses and TPROXY routing, the HAProxy units, their config
// files and drop-ins, bird.conf and BIRD's announced routes. It has side
// effects only (reads); the comparison and the repair planner are the pure
// package node/drift.
package observe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/lbctl/lbctl/node/drift"
	"github.com/lbctl/lbctl/node/netlink"
	"github.com/lbctl/lbctl/node/nft"
	"github.com/lbctl/lbctl/systemd"
)

// Sources are what Node reads from.
type Sources struct {
	NFT   nft.Conn
	Net   netlink.Conn
	Units systemd.Manager
	// VIPDir, UnitDir and BirdConf are the node's paths.
	VIPDir, UnitDir, BirdConf string
	// Routes returns BIRD's announced VIP routes; nil skips the check.
	Routes func(ctx context.Context) ([]netip.Prefix, error)
}

// Node reads the node. Independent read failures are collected.
func Node(ctx context.Context, s Sources) (*drift.Observed, error) {
	o := &drift.Observed{Units: map[string]drift.Unit{}, Files: map[string]map[string][]byte{}, DropIns: map[string]bool{}}
	var errs []error
	o.Firewall, o.FirewallExists, o.FirewallErr = s.NFT.Read()
	if st, err := netlink.Read(s.Net); err != nil {
		errs = append(errs, fmt.Errorf("addresses: %w", err))
	} else {
		o.Addresses = st
	}
	if us, err := s.Units.List(ctx, "lb-haproxy@*.service"); err != nil {
		errs = append(errs, fmt.Errorf("units: %w", err))
	} else {
		for _, u := range us {
			if vip, ok := systemd.InstanceOf(u.Name); ok {
				o.Units[vip] = drift.Unit{Active: u.Active(), MainPID: u.MainPID, State: u.ActiveState + "/" + u.SubState}
			}
		}
	}
	ents, err := os.ReadDir(s.VIPDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.VIPDir, e.Name())
		files := map[string][]byte{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[filepath.ToSlash(rel)] = b
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		o.Files[e.Name()] = files
	}
	if ents, err := os.ReadDir(s.UnitDir); err == nil {
		for _, e := range ents {
			name := strings.TrimSuffix(e.Name(), ".d")
			if vip, ok := systemd.InstanceOf(name); ok && e.IsDir() {
				if _, err := os.Stat(filepath.Join(s.UnitDir, e.Name(), systemd.TransparentDropInName)); err == nil {
					o.DropIns[vip] = true
				}
			}
		}
	}
	o.BirdConf, err = os.ReadFile(s.BirdConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if s.Routes != nil {
		r, err := s.Routes(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("bird: %w", err))
		} else {
			o.Announced = r
			if o.Announced == nil {
				o.Announced = []netip.Prefix{}
			}
		}
	}
	return o, errors.Join(errs...)
}
