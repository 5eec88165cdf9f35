package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// DefaultSocket is the agent's root-only control socket.
const DefaultSocket = "/run/lbctl/agent.sock"

// Handler serves the control API: GET /status, POST /reload (re-read the
// announceable set and drains, publish, answer with the status), POST
// /committed (an install committed a release: hand it to the flow handoff
// datapath now, answer with the status).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.Status())
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Reload(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, a.Status())
	})
	mux.HandleFunc("POST /committed", func(w http.ResponseWriter, r *http.Request) {
		if serial, ok := a.committed(); ok {
			a.takeCommitted(serial)
			a.handoffTo(serial)
		}
		writeJSON(w, a.Status())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listen opens the control socket with mode 0600 (root only), replacing a
// stale socket file.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "."
}

// ErrNotRunning means no agent answers on the control socket.
var ErrNotRunning = errors.New("agent not running")

// Client talks to a running agent.
type Client struct {
	Socket string
}

func (c Client) do(ctx context.Context, method, path string, out any) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.Socket)
	}}}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return fmt.Errorf("%w (%s)", ErrNotRunning, c.Socket)
		}
		return fmt.Errorf("agent %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status asks the agent for its status.
func (c Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/status", &s)
}

// Reload asks the agent to re-read its inputs and publish; it returns the
// status after that.
func (c Client) Reload(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodPost, "/reload", &s)
}

// CommittedIfRunning tells the agent that an install committed a release
// (POST /committed); no agent running is no error.
func (c Client) CommittedIfRunning(ctx context.Context) error {
	var s Status
	err := c.do(ctx, http.MethodPost, "/committed", &s)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	return err
}

// ReloadIfRunning is Reload for a caller that falls back to something else
// when no agent runs (node/host announces through BIRD then): running is
// false, and err nil, when no agent answers on the socket.
func (c Client) ReloadIfRunning(ctx context.Context) (running bool, err error) {
	_, err = c.Reload(ctx)
	if errors.Is(err, ErrNotRunning) {
		return false, nil
	}
	return true, err
}
