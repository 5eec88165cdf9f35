package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health/bird"
	"github.com/lbctl/lbctl/internal/netns"
	"github.com/lbctl/lbctl/test/internal/nsprocs"
)

// Errors of Up and Load.
var (
	errAlreadyUp = errors.New("testbed: already up (run `lbctl-testbed down` first)")
	ErrNotUp     = errors.New("testbed: not up (no state file)")
)

// stateFile is the name of the state file in the testbed directory.
const stateFile = "state.json"

// stateVersion is the version of the state file's format.
const stateVersion = 1

// Options configure Up.
type Options struct {
	// Dir is the testbed directory (default DefaultDir). Load and Down
	// find the site through its state file there.
	Dir string
	// Prefix starts every namespace name (default defaultPrefix). Tests use
	// their own so that they never meet a sandbox someone left up.
	Prefix string
	// BackendCommand runs a backend server: the BackendConfig's Args are
	// appended. Default: this executable with "serve-backend"
	// (lbctl-testbed's hidden subcommand); tests re-execute the test binary.
	BackendCommand []string
	// BackendEnv is added to the backend servers' environment.
	BackendEnv []string
	// LaunchNode, when set, provides an LB node's network namespace: it
	// starts a process in a new network namespace (e.g. systemd as PID 1 in
	// its own pid, mount and net namespaces) and returns it. The testbed
	// names that namespace (ip netns attach), wires it like a plain one,
	// and Down stops the process. Nil, or a zero Launched, makes a plain
	// named namespace.
	LaunchNode func(ctx context.Context, node Node) (Launched, error)
	// Timeout bounds each wait of the bring-up (BIRD sockets, backend
	// servers, the router's BGP session); default 20 s.
	Timeout time.Duration
}

// Launched is the process LaunchNode started for an LB node.
type Launched struct {
	// PID is a process inside the node's new network namespace.
	PID int
	// StopSignal stops it cleanly (default SIGTERM; SIGRTMIN+4 for
	// systemd). Down sends SIGKILL 5 s later if it is still alive.
	StopSignal syscall.Signal
	// Cgroup, if set, is a cgroup directory Down removes afterwards.
	Cgroup string
}

// Site is a running testbed. Its exported fields are the state file.
type Site struct {
	Version int    `json:"version"`
	Dir     string `json:"dir"`
	Prefix  string `json:"prefix"`
	// Name of the model's site.
	Name string `json:"name"`
	ASN  uint32 `json:"asn"`
	// Namespaces of the router, route reflector, client and backend bridge.
	Router        string    `json:"router"`
	RR            string    `json:"rr"`
	Client        string    `json:"client"`
	BackendBridge string    `json:"backend_bridge"`
	Nodes         []Node    `json:"nodes"`
	Backends      []Backend `json:"backends"`
	// BackendGateway is the node the backends' default routes point at.
	BackendGateway string `json:"backend_gateway"`
	// CA is the testbed CA's certificate (PEM).
	CA string `json:"ca"`
	// Namespaces lists every namespace created, in order.
	Namespaces []string `json:"namespaces"`
	// Procs lists every process started and not yet stopped.
	Procs []Proc `json:"procs"`

	mu   sync.Mutex
	done map[int]<-chan struct{} // reapers of processes this process started
}

// statePath is the state file of a testbed directory.
func statePath(dir string) string { return filepath.Join(dir, stateFile) }

// Load reads the site from the state file in dir (DefaultDir if empty).
func Load(dir string) (*Site, error) {
	if dir == "" {
		dir = DefaultDir
	}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotUp
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var s Site
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("testbed: state file %s: %w", statePath(dir), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("testbed: state file %s: version %d, want %d", statePath(dir), s.Version, stateVersion)
	}
	return &s, nil
}

// save writes the state file atomically. Callers hold s.mu.
func (s *Site) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("testbed: encode state: %w", err)
	}
	tmp := statePath(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("testbed: write state: %w", err)
	}
	if err := os.Rename(tmp, statePath(s.Dir)); err != nil {
		return fmt.Errorf("testbed: write state: %w", err)
	}
	return nil
}

// Node returns the LB node named name ("lb1", "lb2"), or nil.
func (s *Site) Node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

func (s *Site) layout() *layout {
	return &layout{prefix: s.Prefix, dir: s.Dir, asn: s.ASN, router: s.Router, rr: s.RR,
		client: s.Client, bk: s.BackendBridge, nodes: s.Nodes, backends: s.Backends}
}

// Up builds the testbed for the model: namespaces and links, BIRD on the
// route reflector and the router, test certificates, and a server per
// backend address. It returns once the router's BGP session to the route
// reflector is established and every backend listens. On failure it tears
// down what it made.
func Up(ctx context.Context, m *model.Site, opts Options) (*Site, error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Second
	}
	if len(opts.BackendCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("testbed: backend command: %w", err)
		}
		opts.BackendCommand = []string{exe, "serve-backend"}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if _, err := os.Stat(statePath(dir)); err == nil {
		return nil, errAlreadyUp
	}
	l, err := plan(m, opts.Prefix, dir)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, ns := range l.namespaces() {
		if _, err := os.Stat(filepath.Join(NetNSDir, ns)); err == nil {
			left = append(left, ns)
		}
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("testbed: namespaces %s exist without a state file in %s: remove them with `ip netns del`", strings.Join(left, ", "), dir)
	}
	// Node directories exist before LaunchNode runs, so a launcher can bind
	// a node's CertDir (filled later) into its mount namespace.
	mk := []string{dir, filepath.Join(dir, "rr"), filepath.Join(dir, "router"), filepath.Join(dir, "logs")}
	for _, n := range l.nodes {
		mk = append(mk, n.Dir, n.CertDir)
	}
	for _, d := range mk {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("testbed: %w", err)
		}
	}
	s := &Site{
		Version: stateVersion, Dir: dir, Prefix: opts.Prefix, Name: m.Name, ASN: l.asn,
		Router: l.router, RR: l.rr, Client: l.client, BackendBridge: l.bk,
		Nodes: l.nodes, Backends: l.backends, BackendGateway: l.nodes[0].Name,
		CA: filepath.Join(dir, "ca.pem"),
	}
	s.mu.Lock()
	err = s.save()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.up(ctx, m, l, opts); err != nil {
		return nil, errors.Join(err, s.Down(context.WithoutCancel(ctx)))
	}
	return s, nil
}

func (s *Site) up(ctx context.Context, m *model.Site, l *layout, opts Options) error {
	if err := s.makeNamespaces(ctx, l, opts); err != nil {
		return err
	}
	for _, step := range l.steps {
		if err := ipCmd(ctx, step...); err != nil {
			return fmt.Errorf("testbed: wiring: %w", err)
		}
	}
	for _, sc := range l.sysctls {
		err := netns.DoPath(filepath.Join(NetNSDir, sc.ns), func() error {
			return os.WriteFile("/proc/sys/"+sc.key, []byte(sc.value), 0o644)
		})
		if err != nil {
			return fmt.Errorf("testbed: %s: sysctl %s: %w", sc.ns, sc.key, err)
		}
	}
	if err := writeCerts(s.Dir, m, s.Nodes, s.Backends); err != nil {
		return fmt.Errorf("testbed: certificates: %w", err)
	}
	bfd, v6 := false, false
	for _, n := range m.Nodes {
		bfd = bfd || n.BFD
		for _, rr := range n.RouteReflectors {
			v6 = v6 || rr.Address == RRCore6
		}
	}
	confs := []struct{ role, ns, conf string }{
		{"rr", s.RR, l.rrConfig(bfd, v6)},
		{"router", s.Router, l.routerConfig()},
	}
	for _, c := range confs {
		path := filepath.Join(s.Dir, c.role, "bird.conf")
		if err := os.WriteFile(path, []byte(c.conf), 0o644); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
		if _, err := s.startBird(ctx, "bird-"+c.role, c.ns, filepath.Join(NetNSDir, c.ns), filepath.Join(s.Dir, c.role), path, opts.Timeout); err != nil {
			return err
		}
	}
	if err := s.startBackends(ctx, opts); err != nil {
		return err
	}
	return s.waitSession(ctx, filepath.Join(s.Dir, "router", "bird.ctl"), "reflector", opts.Timeout)
}

// makeNamespaces creates every namespace (LB nodes through LaunchNode when
// set) with lo up, recording each in the state file as it goes.
func (s *Site) makeNamespaces(ctx context.Context, l *layout, opts Options) error {
	for _, ns := range l.namespaces() {
		// Recorded before it exists: a crash in between leaves nothing
		// Down does not know about.
		s.mu.Lock()
		s.Namespaces = append(s.Namespaces, ns)
		err := s.save()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		var node *Node
		for i := range s.Nodes {
			if s.Nodes[i].NetNS == ns {
				node = &s.Nodes[i]
			}
		}
		var launched Launched
		if node != nil && opts.LaunchNode != nil {
			var err error
			if launched, err = opts.LaunchNode(ctx, *node); err != nil {
				return fmt.Errorf("testbed: launch node %s: %w", node.Name, err)
			}
		}
		if launched.PID != 0 {
			start, _, err := procStat(launched.PID)
			if err != nil {
				return fmt.Errorf("testbed: launch node %s: %w", node.Name, err)
			}
			if launched.StopSignal == 0 {
				launched.StopSignal = syscall.SIGTERM
			}
			s.mu.Lock()
			node.PID, node.PIDStart, node.StopSignal, node.Cgroup = launched.PID, start, int(launched.StopSignal), launched.Cgroup
			err = s.save()
			s.mu.Unlock()
			if err != nil {
				return err
			}
			if err := ipCmd(ctx, "netns", "attach", ns, strconv.Itoa(launched.PID)); err != nil {
				return fmt.Errorf("testbed: node %s: %w", node.Name, err)
			}
		} else if err := ipCmd(ctx, "netns", "add", ns); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
		if err := ipCmd(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
	}
	return nil
}

// record adds a started process to the state.
func (s *Site) record(p Proc, done <-chan struct{}) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = map[int]<-chan struct{}{}
	}
	s.done[p.PID] = done
	s.Procs = append(s.Procs, p)
	return s.save()
}

// startBird runs bird in the foreground in a namespace with its control
// socket in dir and waits until the socket answers.
func (s *Site) startBird(ctx context.Context, role, nsName, nsPath, dir, conf string, timeout time.Duration) (string, error) {
	sock := filepath.Join(dir, "bird.ctl")
	_ = os.Remove(sock)
	argv := []string{"bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(dir, "bird.pid")}
	p, done, err := startIn(nsPath, role, nsName, filepath.Join(s.Dir, "logs", role+".log"), argv, nil)
	if err != nil {
		return "", fmt.Errorf("testbed: %w", err)
	}
	if err := s.record(p, done); err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := bird.Dial(ctx, sock)
		if err == nil {
			c.Close()
			return sock, nil
		}
		select {
		case <-done:
			return "", fmt.Errorf("testbed: %s exited: %s", role, logTail(p.Log))
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("testbed: %s: control socket: %w: %s", role, err, logTail(p.Log))
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return "", err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// logTail is the end of a log file, for error messages.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(string(b))
}

// startBackends starts one server per backend address and waits until each
// listens.
func (s *Site) startBackends(ctx context.Context, opts Options) error {
	type pending struct {
		p     Proc
		ready string
		done  <-chan struct{}
	}
	var waits []pending
	for _, b := range s.Backends {
		cfg := BackendConfig{Name: b.Name, HTTP: b.HTTP, HTTPS: b.HTTPS, TCP: b.TCP, SMTP: b.SMTP, LDAP: b.LDAP,
			Ready: filepath.Join(s.Dir, "logs", b.NetNS+".ready")}
		if len(b.HTTPS) > 0 {
			cfg.Cert = backendCert(s.Dir, b)
		}
		argv := append(slices.Clone(opts.BackendCommand), cfg.Args()...)
		role := "backend-" + strings.TrimPrefix(b.NetNS, s.Prefix)
		p, done, err := startIn(filepath.Join(NetNSDir, b.NetNS), role, b.NetNS,
			filepath.Join(s.Dir, "logs", role+".log"), argv, opts.BackendEnv)
		if err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
		if err := s.record(p, done); err != nil {
			return err
		}
		waits = append(waits, pending{p, cfg.Ready, done})
	}
	deadline := time.Now().Add(opts.Timeout)
	for _, w := range waits {
		for {
			if _, err := os.Stat(w.ready); err == nil {
				break
			}
			select {
			case <-w.done:
				return fmt.Errorf("testbed: %s exited: %s", w.p.Role, logTail(w.p.Log))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("testbed: %s not listening after %v: %s", w.p.Role, opts.Timeout, logTail(w.p.Log))
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitSession waits until the BGP protocol proto of the BIRD at sock is
// established.
func (s *Site) waitSession(ctx context.Context, sock, proto string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		if ps, err := protocols(ctx, sock); err == nil {
			for _, p := range ps {
				if p.Name == proto {
					if p.Established() {
						return nil
					}
					last = p.State + " " + p.Info
				}
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: BGP session %s at %s not established after %v: %s", proto, sock, timeout, last)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func protocols(ctx context.Context, sock string) ([]bird.Protocol, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := bird.Dial(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Protocols(ctx)
}

// startNodeBird runs BIRD with the configuration file conf in the LB node's
// network namespace (control socket <node dir>/bird.ctl, returned) and
// waits until its control socket answers. Its role is "bird-<node>"; Down
// stops it, or stopProc earlier.
func (s *Site) startNodeBird(ctx context.Context, node, conf string) (string, error) {
	n := s.Node(node)
	if n == nil {
		return "", fmt.Errorf("testbed: no node %q", node)
	}
	role := "bird-" + n.Name
	if p := s.proc(role); p != nil && p.Alive() {
		return "", fmt.Errorf("testbed: %s already runs (PID %d)", role, p.PID)
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return "", fmt.Errorf("testbed: %w", err)
	}
	return s.startBird(ctx, role, n.NetNS, n.NetNSPath, n.Dir, conf, 10*time.Second)
}

func (s *Site) proc(role string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.Procs) - 1; i >= 0; i-- {
		if s.Procs[i].Role == role {
			p := s.Procs[i]
			return &p
		}
	}
	return nil
}

// stopProc stops the recorded process with the given role (SIGTERM, then
// SIGKILL after 3 s) and forgets it.
func (s *Site) stopProc(ctx context.Context, role string) error {
	p := s.proc(role)
	if p == nil {
		return fmt.Errorf("testbed: no process %q", role)
	}
	s.mu.Lock()
	done := s.done[p.PID]
	s.mu.Unlock()
	if err := stopPID(p.PID, p.Start, syscall.SIGTERM, 3*time.Second, done); err != nil {
		return fmt.Errorf("testbed: %s: %w", role, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Procs = slices.DeleteFunc(s.Procs, func(q Proc) bool { return q.PID == p.PID && q.Start == p.Start })
	delete(s.done, p.PID)
	return s.save()
}

// setBackendGateway points every backend's default route at the node's
// backend-side address.
func (s *Site) setBackendGateway(ctx context.Context, node string) error {
	n := s.Node(node)
	if n == nil {
		return fmt.Errorf("testbed: no node %q", node)
	}
	for _, args := range s.layout().gatewayRoutes(*n) {
		if err := ipCmd(ctx, args...); err != nil {
			return fmt.Errorf("testbed: backend gateway: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.BackendGateway = n.Name
	return s.save()
}

// Down stops every recorded process (and launched node), removes the
// recorded namespaces and the testbed directory. Processes it did not start are
// never signalled: one still inside a namespace is reported as an error.
func (s *Site) Down(ctx context.Context) error {
	var errs []error
	s.mu.Lock()
	procs := slices.Clone(s.Procs)
	s.mu.Unlock()
	// Reverse order: backends, then BIRDs.
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		s.mu.Lock()
		done := s.done[p.PID]
		s.mu.Unlock()
		if err := stopPID(p.PID, p.Start, syscall.SIGTERM, 3*time.Second, done); err != nil {
			errs = append(errs, fmt.Errorf("testbed: %s: %w", p.Role, err))
		}
	}
	for _, n := range s.Nodes {
		if n.PID == 0 {
			continue
		}
		sig := syscall.Signal(n.StopSignal)
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if err := stopPID(n.PID, n.PIDStart, sig, 5*time.Second, nil); err != nil {
			errs = append(errs, fmt.Errorf("testbed: node %s: %w", n.Name, err))
		}
		if n.Cgroup != "" {
			if err := removeCgroup(n.Cgroup); err != nil {
				errs = append(errs, fmt.Errorf("testbed: node %s: %w", n.Name, err))
			}
		}
	}
	s.mu.Lock()
	names := slices.Clone(s.Namespaces)
	s.mu.Unlock()
	for _, ns := range names {
		path := filepath.Join(NetNSDir, ns)
		if ino, err := nsprocs.Inode(path); err == nil {
			if pids := nsprocs.PIDsIn(ino); len(pids) > 0 {
				errs = append(errs, fmt.Errorf("testbed: namespace %s: processes %v not started by the testbed are still inside (not signalled)", ns, pids))
			}
		} else if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := ipCmd(ctx, "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("testbed: %w", err))
		}
	}
	if s.Dir == "" || s.Dir == "/" {
		errs = append(errs, fmt.Errorf("testbed: refusing to remove directory %q", s.Dir))
	} else if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testbed: %w", err))
	}
	s.mu.Lock()
	s.Procs, s.Namespaces = nil, nil
	s.mu.Unlock()
	return errors.Join(errs...)
}

// removeCgroup removes a cgroup directory tree depth-first.
func removeCgroup(root string) error {
	if !strings.HasPrefix(filepath.Clean(root), "/sys/fs/cgroup/") {
		return fmt.Errorf("cgroup %s: not under /sys/fs/cgroup", root)
	}
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", root, err)
	}
	// A cgroup whose last process just exited reports EBUSY for a moment.
	deadline := time.Now().Add(5 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := os.Remove(dirs[i])
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("cgroup %s: %w", dirs[i], err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
