package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/sign"
)

func testSite() *model.Site {
	return &model.Site{
		FormatVersion: model.FormatVersion,
		Name:          "campus",
		Services: []model.Service{
			{Name: "mail/smtp", Source: "mail/smtp.yaml", Mode: model.ModeTCP, FQDN: "smtp.example.org", VIP: "192.0.2.25",
				Listeners: []model.Listener{{Port: 25, Action: model.ActionServe}, {Port: 587, Action: model.ActionServe}}},
			{Name: "web/www", Source: "web/www.yaml", Mode: model.ModeHTTP, FQDN: "www.example.org", VIP: "192.0.2.10",
				Listeners: []model.Listener{{Port: 80, Action: model.ActionServe}, {Port: 443, Action: model.ActionServe}}},
		},
		VIPs: []model.VIP{
			{Name: "192.0.2.10", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}, Services: []string{"web/www"}, Ports: []model.Port{{Port: 80, Mode: model.ModeHTTP}, {Port: 443, Mode: model.ModeHTTP}}},
			{Name: "192.0.2.25", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.25")}, Services: []string{"mail/smtp"}, Ports: []model.Port{{Port: 25, Mode: model.ModeTCP}, {Port: 587, Mode: model.ModeTCP}}},
		},
		Nodes: []model.Node{{Hostname: "lb1", RouterID: netip.MustParseAddr("198.51.100.1"), ASN: 65001}, {Hostname: "lb2", RouterID: netip.MustParseAddr("198.51.100.2"), ASN: 65001}},
	}
}

// writeTestBundle signs a bundle with the key NAME.key and returns its path.
func writeTestBundle(t *testing.T, dir, keyName string, serial uint64, expires *time.Time) string {
	t.Helper()
	return writeSiteBundle(t, dir, keyName, serial, expires, testSite())
}

// writeSiteBundle signs a bundle of site with the key NAME.key.
func writeSiteBundle(t *testing.T, dir, keyName string, serial uint64, expires *time.Time, site *model.Site) string {
	t.Helper()
	priv, err := loadPrivateKey(keyName + ".key")
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := model.Encode(site)
	if err != nil {
		t.Fatal(err)
	}
	files := []archive.File{{Path: archive.ResolvedFile, Data: resolved}, {Path: "nodes/lb1.json", Data: []byte("{}\n")}}
	var buf bytes.Buffer
	created := time.Now().Add(-time.Minute)
	if _, err := archive.Write(&buf, archive.Manifest{Serial: serial, Created: created, Expires: expires, Revision: "c0ffee"}, files, priv); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bundle.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func keygen(t *testing.T, name string) string {
	t.Helper()
	out, errOut, code := run(t, "keygen", name, "--unencrypted")
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	pub, err := sign.LoadPublicKey(name + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	id := sign.FormatKeyID(pub.ID())
	if !strings.Contains(out, "key id "+id) {
		t.Fatalf("keygen output %q lacks key id %s", out, id)
	}
	return id
}

func TestKeygenVerifyInspect(t *testing.T) {
	dir := t.TempDir()
	ops, other := filepath.Join(dir, "ops"), filepath.Join(dir, "other")
	id := keygen(t, ops)
	keygen(t, other)
	if st, err := os.Stat(ops + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key mode %v %v", st.Mode(), err)
	}
	if _, errOut, code := run(t, "keygen", ops, "--unencrypted"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over existing keys: %d %q", code, errOut)
	}
	bundle := writeTestBundle(t, dir, ops, 42, nil)

	out, errOut, code := run(t, "verify", bundle, "--pubkey", ops+".pub")
	if code != 0 || !strings.Contains(out, "OK serial 42 signed by "+id) {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := run(t, "verify", "--pubkey", other+".pub", bundle); code != 1 || !strings.Contains(errOut, "untrusted key") {
		t.Fatalf("verify with another key: %d %q", code, errOut)
	}

	// A trust directory with the key, then with the key revoked.
	trusted := filepath.Join(dir, "trusted.d")
	os.Mkdir(trusted, 0o755)
	pubText, _ := os.ReadFile(ops + ".pub")
	os.WriteFile(filepath.Join(trusted, "ops.pub"), pubText, 0o644)
	if out, errOut, code := run(t, "verify", "--trusted", trusted, bundle); code != 0 {
		t.Fatalf("verify --trusted: %d %q %q", code, out, errOut)
	}
	os.WriteFile(filepath.Join(trusted, sign.RevokedFile), []byte(id+"\n"), 0o644)
	if _, errOut, code := run(t, "verify", "--trusted", trusted, bundle); code != 1 || !strings.Contains(errOut, "revoked key") {
		t.Fatalf("verify with the key revoked: %d %q", code, errOut)
	}
	if _, _, code := run(t, "verify", "--trusted", trusted, "--pubkey", ops+".pub", bundle); code != 2 {
		t.Fatalf("both --trusted and --pubkey: exit %d, want 2", code)
	}

	// A flipped byte anywhere is refused.
	data, _ := os.ReadFile(bundle)
	data[len(data)/2] ^= 0x01
	bad := filepath.Join(dir, "bad.tar.gz")
	os.WriteFile(bad, data, 0o644)
	if _, errOut, code := run(t, "verify", "--pubkey", ops+".pub", bad); code != 1 || !strings.Contains(errOut, "INVALID") {
		t.Fatalf("verify a damaged bundle: %d %q", code, errOut)
	}

	out, errOut, code = run(t, "inspect", bundle, "--pubkey", ops+".pub")
	if code != 0 {
		t.Fatalf("inspect: %d %q", code, errOut)
	}
	t.Logf("inspect:\n%s", out)
	for _, want := range []string{"serial    42", "signer    " + id, "revision  c0ffee", "expires   never",
		"campus: 2 services, 2 VIPs, 2 nodes", "web/www", "smtp.example.org", "192.0.2.10 2001:db8::10", "ports 25,587",
		"lb2", "AS65001", archive.ResolvedFile} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "inspect", "--json", "--pubkey", ops+".pub", bundle)
	var in inspection
	if err := json.Unmarshal([]byte(out), &in); code != 0 || err != nil {
		t.Fatalf("inspect --json: %d %v\n%s", code, err, out)
	}
	if in.Serial != 42 || in.Signer != id || in.Site == nil || len(in.Site.Services) != 2 || len(in.Site.Nodes) != 2 ||
		in.Site.VIPs[1].Ports[1] != 587 || len(in.Files) != 2 {
		t.Errorf("inspect --json: %+v", in)
	}
	if _, errOut, code := run(t, "inspect", "--pubkey", other+".pub", bundle); code != 1 || !strings.Contains(errOut, "untrusted") {
		t.Errorf("inspect with another key: %d %q", code, errOut)
	}
}

func TestVerifyExpired(t *testing.T) {
	dir := t.TempDir()
	ops := filepath.Join(dir, "ops")
	keygen(t, ops)
	exp := time.Now().Add(-time.Second)
	// Created one minute ago, expired one second ago.
	bundle := writeTestBundle(t, dir, ops, 1, &exp)
	if _, errOut, code := run(t, "verify", bundle, "--pubkey", ops+".pub"); code != 1 || !strings.Contains(errOut, "expired") {
		t.Fatalf("verify expired: %d %q", code, errOut)
	}
}

// An encrypted key is written and loaded with the passphrase from the
// environment (a wrong passphrase is tested in bundle/sign).
func TestKeygenEncryptedFromEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("short: scrypt with minisign's 1 GiB parameters")
	}
	dir := t.TempDir()
	ops := filepath.Join(dir, "ops")
	t.Setenv(sign.PassphraseEnv, "from the environment")
	if _, errOut, code := run(t, "keygen", ops); code != 0 {
		t.Fatalf("keygen: %d %q", code, errOut)
	}
	b, _ := os.ReadFile(ops + ".key")
	if !strings.Contains(string(b), "encrypted secret key") {
		t.Fatalf("key file %q", b)
	}
	bundle := writeTestBundle(t, dir, ops, 3, nil)
	if out, errOut, code := run(t, "verify", bundle, "--pubkey", ops+".pub"); code != 0 {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
}

// TestInspectRefusedBundle: inspect shows a bundle whose model strings carry
// control characters without writing them raw, and says that nodes would
// refuse it and why, field by field.
func TestInspectRefusedBundle(t *testing.T) {
	dir := t.TempDir()
	ops := filepath.Join(dir, "ops")
	keygen(t, ops)
	site := testSite()
	site.Name = "campus\nserial    99"
	site.Services[1].FQDN = "www.example.org\x1b[2J\x1b[31m"
	site.Nodes[0].Hostname = "lb1\rlb9"
	bundle := writeSiteBundle(t, dir, ops, 7, nil, site)
	out, errOut, code := run(t, "inspect", bundle, "--pubkey", ops+".pub")
	if code != 0 {
		t.Fatalf("inspect: %d %q", code, errOut)
	}
	t.Logf("inspect:\n%s", out)
	for _, want := range []string{"WOULD REFUSE IT: 3 fields", "refused by nodes", "name: control character U+000A",
		"services[1].fqdn: control character U+001B", "nodes[0].hostname: control character U+000D",
		`"campus\nserial    99"`, `"www.example.org\x1b[2J\x1b[31m"`, `"lb1\rlb9"`} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
	if strings.ContainsAny(out, "\x1b\r\x00") || strings.Contains(out, "\nserial    99") {
		t.Errorf("inspect wrote raw control characters:\n%q", out)
	}
	out, _, code = run(t, "inspect", "--json", "--pubkey", ops+".pub", bundle)
	var in inspection
	if err := json.Unmarshal([]byte(out), &in); code != 0 || err != nil || len(in.Refused) != 3 {
		t.Fatalf("inspect --json: %d %v %q", code, err, in.Refused)
	}
	good := writeTestBundle(t, t.TempDir(), ops, 8, nil)
	if out, _, _ := run(t, "inspect", good, "--pubkey", ops+".pub"); !strings.Contains(out, "would install it") {
		t.Errorf("a valid bundle:\n%s", out)
	}
}
