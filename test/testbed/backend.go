package testbed

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BackendConfig configures one backend server process: a small server per
// port that tells who answered and what it saw.
//
// HTTP and HTTPS ports answer every request with 200 and one line
//
//	backend=<name> host=<Host> xff=<X-Forwarded-For|none> src=<peer> port=<port> proxy-src=<PROXY source|local|none>
//
// TCP ports answer one line and close:
//
//	backend=<name> port=<port> proxy-src=<PROXY source|local|none> src=<peer>
//
// SMTP ports send that line as a "220 " greeting, answer "250 ok" to every
// command and "221 bye" to QUIT (enough for HAProxy's smtpchk); LDAP ports
// answer an LDAP bind request with success (HAProxy's ldap-check) and
// anything else with the line. Every port accepts an optional PROXY
// protocol v1 or v2 header first.
type BackendConfig struct {
	Name string
	// Addr is the address to bind; empty binds every address.
	Addr                         string
	HTTP, HTTPS, TCP, SMTP, LDAP []int
	// Cert is a PEM file with certificate chain and key, for HTTPS.
	Cert string
	// Ready, when set, is a file written once every port listens.
	Ready string
}

// Args renders the configuration as serve-backend arguments (BackendMain
// parses them back).
func (c BackendConfig) Args() []string {
	args := []string{"--name", c.Name}
	if c.Addr != "" {
		args = append(args, "--addr", c.Addr)
	}
	for _, f := range []struct {
		flag  string
		ports []int
	}{{"--http", c.HTTP}, {"--https", c.HTTPS}, {"--tcp", c.TCP}, {"--smtp", c.SMTP}, {"--ldap", c.LDAP}} {
		if len(f.ports) > 0 {
			args = append(args, f.flag, joinPorts(f.ports))
		}
	}
	if c.Cert != "" {
		args = append(args, "--cert", c.Cert)
	}
	if c.Ready != "" {
		args = append(args, "--ready", c.Ready)
	}
	return args
}

func joinPorts(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

type portsFlag struct{ ports *[]int }

func (f portsFlag) String() string {
	if f.ports == nil {
		return ""
	}
	return joinPorts(*f.ports)
}

func (f portsFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q: want a number 0-65535", p)
		}
		*f.ports = append(*f.ports, n)
	}
	return nil
}

// parseBackendArgs parses serve-backend arguments.
func parseBackendArgs(args []string) (BackendConfig, error) {
	var c BackendConfig
	fs := flag.NewFlagSet("serve-backend", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Name, "name", "", "backend name to report")
	fs.StringVar(&c.Addr, "addr", "", "address to bind (default: all)")
	fs.Var(portsFlag{&c.HTTP}, "http", "HTTP ports")
	fs.Var(portsFlag{&c.HTTPS}, "https", "HTTPS ports")
	fs.Var(portsFlag{&c.TCP}, "tcp", "TCP ports")
	fs.Var(portsFlag{&c.SMTP}, "smtp", "SMTP-like ports")
	fs.Var(portsFlag{&c.LDAP}, "ldap", "LDAP-like ports")
	fs.StringVar(&c.Cert, "cert", "", "PEM file (chain and key) for HTTPS")
	fs.StringVar(&c.Ready, "ready", "", "file to write once listening")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("serve-backend: %w", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve-backend: unexpected arguments %q", fs.Args())
	}
	if c.Name == "" {
		return c, errors.New("serve-backend: --name is required")
	}
	if len(c.HTTPS) > 0 && c.Cert == "" {
		return c, errors.New("serve-backend: --https needs --cert")
	}
	return c, nil
}

// BackendMain is `lbctl-testbed serve-backend ARGS`: it serves until ctx
// ends.
func BackendMain(ctx context.Context, args []string) error {
	cfg, err := parseBackendArgs(args)
	if err != nil {
		return err
	}
	return ServeBackend(ctx, cfg)
}

// ServeBackend listens on every configured port and serves until ctx ends.
func ServeBackend(ctx context.Context, cfg BackendConfig) error {
	s, err := listenBackend(cfg)
	if err != nil {
		return err
	}
	if cfg.Ready != "" {
		if err := os.WriteFile(cfg.Ready, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			s.close()
			return fmt.Errorf("serve-backend: ready file: %w", err)
		}
	}
	return s.serve(ctx)
}

// Port kinds.
const (
	kindHTTP  = "http"
	kindHTTPS = "https"
	kindTCP   = "tcp"
	kindSMTP  = "smtp"
	kindLDAP  = "ldap"
)

type backendListener struct {
	kind string
	ln   net.Listener
}

type backendServer struct {
	cfg       BackendConfig
	tlsConfig *tls.Config
	listeners []backendListener
}

// listenBackend binds every port (port 0 picks a free one, for tests).
func listenBackend(cfg BackendConfig) (*backendServer, error) {
	s := &backendServer{cfg: cfg}
	if len(cfg.HTTPS) > 0 {
		cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Cert)
		if err != nil {
			return nil, fmt.Errorf("serve-backend: certificate %s: %w", cfg.Cert, err)
		}
		s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	for _, k := range []struct {
		kind  string
		ports []int
	}{{kindHTTP, cfg.HTTP}, {kindHTTPS, cfg.HTTPS}, {kindTCP, cfg.TCP}, {kindSMTP, cfg.SMTP}, {kindLDAP, cfg.LDAP}} {
		for _, p := range k.ports {
			ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Addr, strconv.Itoa(p)))
			if err != nil {
				s.close()
				return nil, fmt.Errorf("serve-backend: %s port %d: %w", k.kind, p, err)
			}
			s.listeners = append(s.listeners, backendListener{k.kind, ln})
		}
	}
	if len(s.listeners) == 0 {
		return nil, errors.New("serve-backend: no ports")
	}
	return s, nil
}

func (s *backendServer) close() {
	for _, l := range s.listeners {
		l.ln.Close()
	}
}

// serve runs every listener until ctx ends.
func (s *backendServer) serve(ctx context.Context) error {
	var wg sync.WaitGroup
	var servers []*http.Server
	for _, l := range s.listeners {
		switch l.kind {
		case kindHTTP, kindHTTPS:
			hs := &http.Server{
				Handler:           http.HandlerFunc(s.serveHTTP),
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       30 * time.Second,
				ConnContext: func(ctx context.Context, c net.Conn) context.Context {
					return context.WithValue(ctx, connKey{}, c)
				},
				ErrorLog: nil,
			}
			servers = append(servers, hs)
			var ln net.Listener = proxyListener{l.ln}
			if l.kind == kindHTTPS {
				ln = tls.NewListener(ln, s.tlsConfig)
			}
			wg.Go(func() { _ = hs.Serve(ln) })
		default:
			wg.Go(func() { s.acceptLoop(l) })
		}
	}
	<-ctx.Done()
	s.close()
	for _, hs := range servers {
		hs.Close()
	}
	wg.Wait()
	return nil
}

type connKey struct{}

// proxyOf finds the proxyConn under a connection (plain or TLS).
func proxyOf(c net.Conn) *proxyConn {
	for c != nil {
		switch v := c.(type) {
		case *proxyConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func localPort(c net.Conn) int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func (s *backendServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	pc := proxyOf(c)
	port := 0
	var hdr *proxyHeader
	if pc != nil {
		port = localPort(pc)
		hdr = pc.Header()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Backend", s.cfg.Name)
	fmt.Fprintf(w, "backend=%s host=%s xff=%s src=%s port=%d proxy-src=%s\n",
		s.cfg.Name, orNone(r.Host), orNone(r.Header.Get("X-Forwarded-For")), r.RemoteAddr, port, hdr)
}

func (s *backendServer) acceptLoop(l backendListener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		pc := newProxyConn(c, 300*time.Millisecond)
		wg.Go(func() {
			defer pc.Close()
			s.serveTCP(l.kind, pc)
		})
	}
}

// serveTCP answers one connection of a TCP, SMTP or LDAP port.
func (s *backendServer) serveTCP(kind string, c *proxyConn) {
	hdr := c.Header()
	if c.err != nil {
		return
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line := fmt.Sprintf("backend=%s port=%d proxy-src=%s src=%s", s.cfg.Name, localPort(c), hdr, c.RemoteAddr())
	switch kind {
	case kindSMTP:
		fmt.Fprintf(c, "220 %s\r\n", line)
		for range 20 {
			// An idle timeout: a session that keeps talking stays open.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			cmd, err := c.r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.EqualFold(strings.TrimSpace(cmd), "QUIT") {
				io.WriteString(c, "221 bye\r\n")
				return
			}
			io.WriteString(c, "250 ok\r\n")
		}
	case kindLDAP:
		if msg := c.peekLDAP(); msg != nil {
			c.Write(ldapBindResponse(msg))
			return
		}
		fmt.Fprintf(c, "%s\n", line)
	default:
		fmt.Fprintf(c, "%s\n", line)
	}
}

// peekLDAP reads an LDAP message if the client sends one within a short
// wait, returning its message ID element (tag, length, value), else nil.
func (c *proxyConn) peekLDAP() []byte {
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b, err := c.r.Peek(1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err != nil || b[0] != 0x30 {
		return nil
	}
	head, err := c.r.Peek(2)
	if err != nil {
		return nil
	}
	hl, n := 2, int(head[1])
	if head[1]&0x80 != 0 {
		k := int(head[1] & 0x7f)
		if k == 0 || k > 3 {
			return nil
		}
		h, err := c.r.Peek(2 + k)
		if err != nil {
			return nil
		}
		n = 0
		for _, x := range h[2:] {
			n = n<<8 | int(x)
		}
		hl = 2 + k
	}
	if n > 4096 {
		return nil
	}
	msg := make([]byte, hl+n)
	if _, err := io.ReadFull(c.r, msg); err != nil {
		return nil
	}
	body := msg[hl:]
	if len(body) < 3 || body[0] != 0x02 || int(body[1]) > 4 || len(body) < 2+int(body[1]) {
		return nil
	}
	return body[:2+int(body[1])]
}

// ldapBindResponse is a successful BindResponse to the message with the
// given ID element.
func ldapBindResponse(msgID []byte) []byte {
	resp := []byte{0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}
	out := []byte{0x30, byte(len(msgID) + len(resp))}
	out = append(out, msgID...)
	return append(out, resp...)
}

// proxyListener wraps accepted connections in proxyConn (PROXY header
// parsed on first read; the client speaks first).
type proxyListener struct{ net.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newProxyConn(c, 0), nil
}

// proxyConn reads an optional PROXY protocol header before the data.
type proxyConn struct {
	net.Conn
	r    *bufio.Reader
	wait time.Duration // >0: server speaks first, give up on a header after wait
	once sync.Once
	hdr  *proxyHeader
	err  error
}

func newProxyConn(c net.Conn, wait time.Duration) *proxyConn {
	return &proxyConn{Conn: c, r: bufio.NewReader(c), wait: wait}
}

func (c *proxyConn) init() {
	c.once.Do(func() {
		if c.wait > 0 {
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.wait))
		}
		c.hdr, c.err = readProxyHeader(c.r)
		if c.wait > 0 {
			var ne net.Error
			if errors.As(c.err, &ne) && ne.Timeout() && c.r.Buffered() == 0 {
				c.err = nil
			}
			_ = c.Conn.SetReadDeadline(time.Time{})
		}
	})
}

// Header is the connection's PROXY header, nil if none.
func (c *proxyConn) Header() *proxyHeader {
	c.init()
	return c.hdr
}

func (c *proxyConn) Read(b []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(b)
}
