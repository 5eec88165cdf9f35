package bird

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ErrShuttingDown is returned by Configure when BIRD ignores the request
// because it is shutting down (0006).
var ErrShuttingDown = errors.New("bird: shutting down")

// ErrBroken is returned by every call on a Client whose connection failed
// (or whose command was interrupted half-way); dial again.
var ErrBroken = errors.New("bird: connection unusable")

// Client is one connection to BIRD's control socket. Its methods are safe for
// concurrent use; commands are sent one at a time. A context that ends in the
// middle of a command leaves the connection out of step with BIRD, so the
// client then refuses further commands (ErrBroken) and must be redialled.
type Client struct {
	mu      sync.Mutex
	conn    net.Conn
	r       *bufio.Reader
	broken  error
	version string
}

// Dial connects to the control socket at socketPath and reads BIRD's greeting
// ("0001 BIRD 2.0.12 ready.").
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("bird: %w", err) // net.OpError names the socket
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 16<<10)}
	greeting, err := c.exchange(ctx, "")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bird: greeting on %s: %w", socketPath, err)
	}
	if greeting.Code() != CodeWelcome {
		conn.Close()
		return nil, fmt.Errorf("bird: greeting on %s: %w: %04d %s", socketPath, ErrProtocol, greeting.Code(), greeting.Text())
	}
	c.version = strings.TrimSuffix(strings.TrimSuffix(greeting.Text(), "."), " ready")
	return c, nil
}

// Version is the greeting without " ready.", e.g. "BIRD 2.0.12".
func (c *Client) Version() string { return c.version }

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	return c.conn.Close()
}

// Command sends one command line and returns BIRD's complete reply. An error
// reply (8xxx, 9xxx) is returned as *ReplyError together with the reply.
func (c *Client) Command(ctx context.Context, cmd string) (*Reply, error) {
	if cmd == "" || strings.ContainsAny(cmd, "\r\n") {
		return nil, fmt.Errorf("bird: invalid command %q", cmd)
	}
	reply, err := c.exchange(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("bird: %s: %w", cmd, err)
	}
	if IsError(reply.Code()) {
		return reply, &ReplyError{Command: cmd, Code: reply.Code(), Message: reply.Text()}
	}
	return reply, nil
}

// exchange writes cmd (unless empty) and reads one reply, bounded by ctx.
func (c *Client) exchange(ctx context.Context, cmd string) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The deadline comes only from the context ending (not from
	// ctx.Deadline), so a timed-out read always reports ctx's error.
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		return nil, c.fail(err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.conn.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	if cmd != "" {
		if _, err := c.conn.Write([]byte(cmd + "\n")); err != nil {
			return nil, c.fail(ctxErr(ctx, err))
		}
	}
	reply, err := readReply(c.r)
	if err != nil {
		return nil, c.fail(ctxErr(ctx, err))
	}
	return reply, nil
}

func (c *Client) fail(err error) error {
	c.broken = err
	c.conn.Close()
	return err
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Configure makes BIRD re-read its configuration file ("configure") and
// returns once the new configuration is in effect. When BIRD answers that the
// reconfiguration is still in progress (0004) or queued behind another one
// (0005, 0017), it polls "show status" until BIRD reports that it is up and
// running, bounded by ctx. Configuration errors come back as *ReplyError with
// code 8002 and BIRD's "file:line:col message".
func (c *Client) Configure(ctx context.Context) error {
	r, err := c.Command(ctx, "configure")
	if err != nil {
		return err
	}
	switch r.Code() {
	case CodeReconfigured:
		return nil
	case CodeReconfigInProgress, CodeReconfigQueued, CodeReconfigUnqueued:
		return c.waitConfigured(ctx)
	case CodeReconfigIgnored:
		return ErrShuttingDown
	default:
		return fmt.Errorf("bird: configure: %w: %04d %s", ErrProtocol, r.Code(), r.Text())
	}
}

func (c *Client) waitConfigured(ctx context.Context) error {
	wait := 500 * time.Microsecond
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("bird: waiting for reconfiguration: %w", err)
		}
		switch {
		case st.ShuttingDown():
			return ErrShuttingDown
		case !st.Reconfiguring():
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("bird: waiting for reconfiguration: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// CheckConfig makes BIRD parse its configuration file without applying it
// ("configure check").
func (c *Client) CheckConfig(ctx context.Context) error {
	r, err := c.Command(ctx, "configure check")
	if err != nil {
		return err
	}
	if r.Code() != CodeConfigOK {
		return fmt.Errorf("bird: configure check: %w: %04d %s", ErrProtocol, r.Code(), r.Text())
	}
	return nil
}

// Status is the answer to "show status".
type Status struct {
	Version  string // "BIRD 2.0.12"
	RouterID string // "198.51.100.1"
	// Message is the final line: "Daemon is up and running",
	// "Reconfiguration in progress" or "Shutdown in progress".
	Message string
}

// Reconfiguring reports whether a reconfiguration is still in progress.
func (s Status) Reconfiguring() bool { return s.Message == "Reconfiguration in progress" }

// ShuttingDown reports whether BIRD is shutting down.
func (s Status) ShuttingDown() bool { return s.Message == "Shutdown in progress" }

// Status sends "show status".
func (c *Client) Status(ctx context.Context) (Status, error) {
	r, err := c.Command(ctx, "show status")
	if err != nil {
		return Status{}, err
	}
	return parseStatus(r)
}

func parseStatus(r *Reply) (Status, error) {
	if r.Code() != CodeStatusReport {
		return Status{}, fmt.Errorf("bird: show status: %w: %04d %s", ErrProtocol, r.Code(), r.Text())
	}
	st := Status{Message: r.Text()}
	for _, l := range r.Lines {
		switch {
		case l.Code == 1000:
			st.Version = l.Text
		case l.Code == 1011 && strings.HasPrefix(l.Text, "Router ID is "):
			st.RouterID = strings.TrimPrefix(l.Text, "Router ID is ")
		}
	}
	return st, nil
}

// Routes returns the networks of the routes that protocol (e.g. a static
// protocol "vips4", or a BGP session at a route reflector) put into its tables
// ("show route protocol NAME"), sorted.
func (c *Client) Routes(ctx context.Context, protocol string) ([]netip.Prefix, error) {
	if err := checkName(protocol); err != nil {
		return nil, err
	}
	r, err := c.Command(ctx, "show route protocol "+protocol)
	if err != nil {
		return nil, err
	}
	return parseRoutes(r), nil
}

// Exported returns the networks BIRD exports to protocol, over all its
// channels ("show route export NAME"), sorted.
func (c *Client) Exported(ctx context.Context, protocol string) ([]netip.Prefix, error) {
	if err := checkName(protocol); err != nil {
		return nil, err
	}
	r, err := c.Command(ctx, "show route export "+protocol)
	if err != nil {
		return nil, err
	}
	return parseRoutes(r), nil
}

// Table returns the networks of all routes in a routing table ("show route
// table NAME"), e.g. "master4", sorted.
func (c *Client) Table(ctx context.Context, table string) ([]netip.Prefix, error) {
	if err := checkName(table); err != nil {
		return nil, err
	}
	r, err := c.Command(ctx, "show route table "+table)
	if err != nil {
		return nil, err
	}
	return parseRoutes(r), nil
}

// Protocols returns every protocol instance ("show protocols").
func (c *Client) Protocols(ctx context.Context) ([]Protocol, error) {
	r, err := c.Command(ctx, "show protocols")
	if err != nil {
		return nil, err
	}
	return parseProtocols(r)
}

// Enable enables a protocol; enabling an enabled one is not an error.
func (c *Client) Enable(ctx context.Context, protocol string) error {
	if err := checkName(protocol); err != nil {
		return err
	}
	_, err := c.Command(ctx, "enable "+protocol)
	return err
}

// Disable disables a protocol; disabling a disabled one is not an error.
func (c *Client) Disable(ctx context.Context, protocol string) error {
	if err := checkName(protocol); err != nil {
		return err
	}
	_, err := c.Command(ctx, "disable "+protocol)
	return err
}

// checkName accepts BIRD's plain symbol names: a letter or underscore, then
// letters, digits and underscores. Anything else could change the command.
func checkName(name string) error {
	if name == "" {
		return errors.New("bird: empty protocol or table name")
	}
	for i, ch := range name {
		switch {
		case ch == '_', ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z':
		case i > 0 && ch >= '0' && ch <= '9':
		default:
			return fmt.Errorf("bird: invalid protocol or table name %q", name)
		}
	}
	return nil
}
