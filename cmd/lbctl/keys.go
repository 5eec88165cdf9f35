package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"aead.dev/minisign"
	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/bundle/archive"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/bundle/render/haproxy"
	"github.com/lbctl/lbctl/bundle/sign"
	"github.com/lbctl/lbctl/cmd/lbctl/internal/clix"
)

func init() {
	register(
		&cli.Command{
			Name:      "keygen",
			Usage:     "create a signing key pair NAME.key and NAME.pub in minisign's format",
			ArgsUsage: "NAME",
			Description: "The secret key is encrypted with a passphrase from $" + sign.PassphraseEnv +
				" or the terminal, unless --unencrypted (for automation). Existing files are never overwritten.",
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "unencrypted", Usage: "store the secret key without a passphrase"}},
			Action: runKeygen,
		},
		&cli.Command{
			Name: "verify",
			Usage: "verify a bundle's signature, manifest and files (exit 0 only if valid); " +
				"without BUNDLE, on a node: compare the live node with its current release (exit 1 on drift)",
			ArgsUsage: "[BUNDLE]",
			Description: "With BUNDLE: checks its signature against the trusted keys, its manifest, expiry and every file, as a node\n" +
				"does before installing it. Without: on a node, compares nftables, addresses, units, configurations and\n" +
				"announcements with the current release (lbctl repair puts them back).",
			Flags:  append(trustFlags(), configFlag, jsonFlag),
			Action: runVerify,
		},
		&cli.Command{
			Name:      "inspect",
			Usage:     "verify a bundle and show its manifest, what it deploys and the certificate files its VIPs need on the nodes",
			ArgsUsage: "BUNDLE",
			Description: "Verifies BUNDLE as verify does, then shows its manifest (site, serial, signer, creation, expiry, revision,\n" +
				"files), what it deploys: services, VIPs and nodes, whether nodes would refuse its resolved model, and the\n" +
				"certificate files its VIPs need on every node (never in the bundle), with the VIPs and services using each.",
			Flags: append(trustFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"},
				&cli.StringFlag{Name: "cert-dir", Value: haproxy.DefaultCertDir, Usage: "the nodes' certificate `DIR` (lbctl.yaml cert_dir), for the paths listed"}),
			Action: runInspect,
		},
	)
}

// trustFlags are the flags that say which keys verify a bundle; without
// them trustFromFlags looks further (clix.TrustSearch).
func trustFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "pubkey", Usage: "trust only this minisign public key `FILE` (or $" + clix.PubkeyEnv + ")"},
		&cli.StringFlag{Name: "trusted", DefaultText: trustedDefault,
			Usage: "trust the *.pub keys in `DIR`, minus those listed in DIR/revoked (or $" + clix.TrustedDirEnv + ")"},
	}
}

// trustedDefault is where the keys are looked for without --pubkey or
// --trusted, as help says it.
const trustedDefault = "~/.config/lbctl/trusted.d ($XDG_CONFIG_HOME), else " + sign.DefaultTrustDir

// systemTrustDir is the node's trust directory, the last place
// trustFromFlags looks (a variable for tests on machines with an
// /etc/lbctl).
var systemTrustDir = sign.DefaultTrustDir

// oneArg returns the single positional argument of a command.
func singleArg(c *cli.Context, what string) (string, error) {
	args, err := positional(c)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", cli.Exit(fmt.Sprintf("%s: want exactly one argument, %s", c.Command.Name, what), 2)
	}
	return args[0], nil
}

// passphrase reads a key passphrase from $LBCTL_KEY_PASSPHRASE or, failing
// that, the terminal (twice when confirm is set).
func passphrase(confirm bool) (string, error) {
	if v, ok := os.LookupEnv(sign.PassphraseEnv); ok {
		return v, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("no terminal to ask for the passphrase: set %s (or use an unencrypted key)", sign.PassphraseEnv)
	}
	defer tty.Close()
	pw, err := promptNoEcho(tty, "Passphrase: ")
	if err != nil || !confirm {
		return pw, err
	}
	again, err := promptNoEcho(tty, "Passphrase (again): ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("passphrases do not match")
	}
	return pw, nil
}

// promptNoEcho asks on the terminal with echo off and reads one line.
func promptNoEcho(tty *os.File, prompt string) (string, error) {
	fmt.Fprint(tty, prompt)
	restore, err := disableEcho(tty)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	var line []byte
	var b [1]byte
	for {
		n, err := tty.Read(b[:])
		if n == 1 && b[0] != '\n' && len(line) < 4096 {
			line = append(line, b[0])
			continue
		}
		if n == 1 || err != nil {
			break
		}
	}
	restore()
	fmt.Fprintln(tty)
	return strings.TrimSuffix(string(line), "\r"), nil
}

// loadPrivateKey loads a signing key, asking for its passphrase the same
// way keygen does. lbctl build uses it.
func loadPrivateKey(path string) (minisign.PrivateKey, error) {
	return sign.LoadPrivateKey(path, passphrase)
}

func runKeygen(c *cli.Context) error {
	name, err := singleArg(c, "the key NAME")
	if err != nil {
		return err
	}
	pass := sign.PassphraseFunc(passphrase)
	if c.Bool("unencrypted") {
		pass = nil
	}
	pub, err := sign.GenerateKeyFiles(name, pass)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	pubPath, keyPath := sign.KeyFiles(name)
	w := c.App.Writer
	fmt.Fprintf(w, "key id %s\n", sign.FormatKeyID(pub.ID()))
	fmt.Fprintf(w, "secret key %s (keep it off the load balancers)\n", keyPath)
	fmt.Fprintf(w, "public key %s (copy it to %s/ on every node)\n", pubPath, sign.DefaultTrustDir)
	return nil
}

// trustFromFlags loads the keys --pubkey or --trusted name or, without
// them, those of $LBCTL_PUBKEY, $LBCTL_TRUSTED_DIR, the admin's
// ~/.config/lbctl/trusted.d or the node's /etc/lbctl/trusted.d. Its errors
// start with the command's name; none found is a usage error that says
// what to give.
func trustFromFlags(c *cli.Context) (*sign.Trust, error) {
	s := clix.TrustSearch{Pubkey: c.String("pubkey"), SystemDir: systemTrustDir}
	if c.IsSet("trusted") {
		s.Dir = c.String("trusted")
	}
	t, _, err := s.Find()
	if err != nil {
		return nil, commandErr(c, err)
	}
	return t, nil
}

// commandErr is err with the command's name in front, keeping its exit
// status (1 unless it says otherwise).
func commandErr(c *cli.Context, err error) error {
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	return cli.Exit(c.Command.Name+": "+err.Error(), code)
}

// readBundle opens, reads and verifies the bundle named by the argument.
func readBundle(c *cli.Context) (*archive.Bundle, string, error) {
	file, err := singleArg(c, "the bundle FILE")
	if err != nil {
		return nil, "", err
	}
	tr, err := trustFromFlags(c)
	if err != nil {
		return nil, file, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, file, cli.Exit(fmt.Sprintf("%s: %v", c.Command.Name, err), 1)
	}
	defer f.Close()
	b, err := archive.Read(f, tr, time.Now(), archive.Limits{})
	if err != nil {
		return nil, file, cli.Exit(fmt.Sprintf("%s %s: INVALID: %v", c.Command.Name, file, err), 1)
	}
	return b, file, nil
}

// verifyDrift is the node's drift check (Linux only), run by verify
// without a bundle argument.
var verifyDrift func(c *cli.Context) error

func runVerify(c *cli.Context) error {
	if c.NArg() == 0 {
		if verifyDrift == nil {
			return cli.Exit("verify: without a bundle FILE, verify checks a node for drift, which needs Linux", 2)
		}
		return verifyDrift(c)
	}
	b, file, err := readBundle(c)
	if c.Bool("json") {
		return verifyJSON(c, file, b, err)
	}
	if err != nil {
		return err
	}
	m := b.Manifest
	fmt.Fprintf(c.App.Writer, "%s: OK serial %d signed by %s, created %s, expires %s, %d files\n",
		file, m.Serial, sign.FormatKeyID(b.Signer), m.Created.Format(time.RFC3339), expiryText(m), len(m.Files))
	return nil
}

// verified is what `lbctl verify FILE --json` prints.
type verified struct {
	File    string     `json:"file"`
	Valid   bool       `json:"valid"`
	Error   string     `json:"error,omitempty"`
	Serial  uint64     `json:"serial,omitempty"`
	Signer  string     `json:"signer,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
	Files   int        `json:"files,omitempty"`
}

// verifyJSON prints the outcome of verifying file as JSON; an invalid
// bundle exits 1 (a usage error stays one, without JSON).
func verifyJSON(c *cli.Context, file string, b *archive.Bundle, err error) error {
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() == 2 {
		return err
	}
	v := verified{File: file, Valid: err == nil}
	if err != nil {
		v.Error = err.Error()
	} else {
		m := b.Manifest
		v.Serial, v.Signer, v.Created, v.Expires, v.Files = m.Serial, sign.FormatKeyID(b.Signer), &m.Created, m.Expires, len(m.Files)
	}
	if werr := writeJSON(c.App.Writer, v); werr != nil || err == nil {
		return werr
	}
	return cli.Exit("", 1)
}

func expiryText(m archive.Manifest) string {
	if m.Expires == nil {
		return "never"
	}
	return m.Expires.Format(time.RFC3339)
}

// inspection is inspect's JSON output.
type inspection struct {
	// ManifestSite is the site the signed manifest names (empty in
	// bundles built before manifests named it).
	ManifestSite string              `json:"manifest_site,omitempty"`
	Serial       uint64              `json:"serial"`
	Signer       string              `json:"signer"`
	Created      time.Time           `json:"created"`
	Expires      *time.Time          `json:"expires,omitempty"`
	Revision     string              `json:"revision,omitempty"`
	Files        []archive.FileEntry `json:"files"`
	Site         *siteSummary        `json:"site,omitempty"`
	// Certificates are the files the VIPs need on every node.
	Certificates []certificateLine `json:"certificates,omitempty"`
	// Refused lists why a node would refuse the bundle's resolved model
	// (model.Site.Validate), one field per line; empty when it would not.
	Refused []string `json:"refused,omitempty"`
}

type siteSummary struct {
	Name     string        `json:"name"`
	Services []serviceLine `json:"services"`
	VIPs     []vipLine     `json:"vips"`
	Nodes    []nodeLine    `json:"nodes"`
}

// certificateLine is a certificate file the bundle's VIPs need.
type certificateLine struct {
	model.CertificateUse
	Path string `json:"path"`
}

type serviceLine struct {
	Name  string `json:"name"`
	FQDN  string `json:"fqdn"`
	VIP   string `json:"vip"`
	Ports []int  `json:"ports"`
}

type vipLine struct {
	Name      string       `json:"name"`
	Addresses []netip.Addr `json:"addresses"`
	Ports     []int        `json:"ports"`
	Services  int          `json:"services"`
}

type nodeLine struct {
	Hostname string     `json:"hostname"`
	RouterID netip.Addr `json:"router_id"`
	ASN      uint32     `json:"asn"`
}

func summarise(b *archive.Bundle, certDir string) (*inspection, error) {
	m := b.Manifest
	in := &inspection{ManifestSite: m.Site, Serial: m.Serial, Signer: sign.FormatKeyID(b.Signer), Created: m.Created, Expires: m.Expires, Revision: m.Revision, Files: m.Files}
	data, ok := b.File(archive.ResolvedFile)
	if !ok {
		return in, nil
	}
	// Decoded without the grammar check so that a bundle a node would
	// refuse can still be shown; every string is printed through safe.
	site, err := model.DecodeUnchecked(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive.ResolvedFile, err)
	}
	if err := site.Validate(); err != nil {
		in.Refused = strings.Split(err.Error(), "\n")
	}
	s := &siteSummary{Name: site.Name, Services: []serviceLine{}, VIPs: []vipLine{}, Nodes: []nodeLine{}}
	for _, sv := range site.Services {
		l := serviceLine{Name: sv.Name, FQDN: sv.FQDN, VIP: sv.VIP, Ports: []int{}}
		for _, p := range sv.Listeners {
			l.Ports = append(l.Ports, p.Port)
		}
		s.Services = append(s.Services, l)
	}
	for _, v := range site.VIPs {
		l := vipLine{Name: v.Name, Addresses: v.Addresses, Services: len(v.Services), Ports: []int{}}
		for _, p := range v.Ports {
			l.Ports = append(l.Ports, p.Port)
		}
		s.VIPs = append(s.VIPs, l)
	}
	for _, n := range site.Nodes {
		s.Nodes = append(s.Nodes, nodeLine{Hostname: n.Hostname, RouterID: n.RouterID, ASN: n.ASN})
	}
	in.Site = s
	for _, u := range site.Certificates() {
		in.Certificates = append(in.Certificates, certificateLine{CertificateUse: u, Path: path.Join(certDir, u.Name+".pem")})
	}
	return in, nil
}

func runInspect(c *cli.Context) error {
	b, file, err := readBundle(c)
	if err != nil {
		return err
	}
	in, err := summarise(b, c.String("cert-dir"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("inspect %s: %v", file, err), 1)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, in)
	}
	printInspection(c.App.Writer, file, in)
	return nil
}

func printInspection(w io.Writer, file string, in *inspection) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printManifest(tw, file, in)
	tw.Flush()
	if len(in.Refused) > 0 {
		fmt.Fprintln(w, "\nrefused by nodes")
		for _, r := range in.Refused {
			fmt.Fprintf(w, "  %s\n", safe(r))
		}
	}
	if in.Site != nil {
		printInspectedSite(w, tw, in.Site)
	}
	printCertificates(w, tw, in.Certificates)
	fmt.Fprintln(w, "\nfiles")
	for _, f := range in.Files {
		fmt.Fprintf(tw, "  %d\t%s\n", f.Size, safe(f.Path))
	}
	tw.Flush()
}

// printManifest prints the inspected bundle's manifest and whether nodes
// would install it, as a two-column table.
func printManifest(tw io.Writer, file string, in *inspection) {
	var total int64
	for _, f := range in.Files {
		total += f.Size
	}
	rev := in.Revision
	if rev == "" {
		rev = "-"
	}
	exp := "never"
	if in.Expires != nil {
		exp = in.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "bundle\t%s\n", file)
	if in.ManifestSite != "" {
		fmt.Fprintf(tw, "site\t%s (signed in the manifest; nodes of other sites refuse it)\n", safe(in.ManifestSite))
	}
	fmt.Fprintf(tw, "serial\t%d\n", in.Serial)
	fmt.Fprintf(tw, "signer\t%s\n", in.Signer)
	fmt.Fprintf(tw, "created\t%s\n", in.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "expires\t%s\n", exp)
	fmt.Fprintf(tw, "revision\t%s\n", rev)
	fmt.Fprintf(tw, "files\t%d, %d bytes\n", len(in.Files), total)
	if s := in.Site; s != nil {
		fmt.Fprintf(tw, "contents\t%s: %d services, %d VIPs, %d nodes\n", safe(s.Name), len(s.Services), len(s.VIPs), len(s.Nodes))
		if len(in.Refused) == 0 {
			fmt.Fprintf(tw, "nodes\twould install it (the resolved model passes the grammar check)\n")
		} else {
			fmt.Fprintf(tw, "nodes\tWOULD REFUSE IT: %d fields break the grammar of the resolved model\n", len(in.Refused))
		}
	}
}

// printInspectedSite prints the services, VIPs and nodes of an inspected
// bundle: headings on w, rows through tw.
func printInspectedSite(w io.Writer, tw *tabwriter.Writer, s *siteSummary) {
	fmt.Fprintln(w, "\nservices")
	for _, l := range s.Services {
		fmt.Fprintf(tw, "  %s\t%s\tvip %s\tports %s\n", safe(l.Name), safe(l.FQDN), safe(l.VIP), joinPorts(l.Ports))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nvips")
	for _, l := range s.VIPs {
		addrs := make([]string, len(l.Addresses))
		for i, a := range l.Addresses {
			addrs[i] = safe(a.String())
		}
		fmt.Fprintf(tw, "  %s\t%s\tports %s\t%d services\n", safe(l.Name), strings.Join(addrs, " "), joinPorts(l.Ports), l.Services)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nnodes")
	for _, l := range s.Nodes {
		fmt.Fprintf(tw, "  %s\trouter id %s\tAS%d\n", safe(l.Hostname), safe(model.AddrText(l.RouterID)), l.ASN)
	}
	tw.Flush()
}

// printCertificates lists the certificate files the VIPs need, with the
// VIPs and services using each.
func printCertificates(w io.Writer, tw *tabwriter.Writer, certs []certificateLine) {
	fmt.Fprintln(w, "\ncertificates (on every node; never in the bundle)")
	if len(certs) == 0 {
		fmt.Fprintln(w, "  none: no service terminates TLS")
	}
	for _, l := range certs {
		fmt.Fprintf(tw, "  %s\tvip %s\tservices %s\tcovers %s\n", safe(l.Path), safe(strings.Join(l.VIPs, ",")),
			safe(strings.Join(l.Services, ",")), safe(strings.Join(l.Hosts, ",")))
	}
	tw.Flush()
}

// safe returns s for printing on a terminal: as it is when every rune is
// printable and not a blank other than ' ' or a tab separator of
// tabwriter, else quoted with Go escapes (strconv.QuoteToGraphic), so a
// model string can neither move the cursor, change colours nor forge a
// line of the output.
func safe(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

func joinPorts(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
