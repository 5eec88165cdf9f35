package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// HTTPSource is the URL of the latest published bundle (for example
// https://bundles.example.org/campus/latest.bundle, replaced atomically by
// each publication). Requests are conditional: the ETag and Last-Modified
// of the last settled response are kept in StateFile, sent back as
// If-None-Match and If-Modified-Since, and a 304 means nothing to do.
// Plain http:// works too: a bundle is trusted for its signature, not for
// the channel it came through.
type HTTPSource struct {
	URL string
	// Client defaults to one with a 5 minute timeout.
	Client *http.Client
	// StateFile keeps the validators of the last settled response; empty
	// means every request is unconditional.
	StateFile string
	// MaxSize bounds the response body; default DefaultMaxSize.
	MaxSize int64
	// UserAgent is sent when set.
	UserAgent string
}

func (h *HTTPSource) String() string { return h.URL }

// HTTPState is what StateFile holds.
type HTTPState struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Serial is the verified serial of the response the validators
	// belong to.
	Serial uint64 `json:"serial"`
}

// LoadState reads the state file; a missing or unreadable one gives the
// zero state (the next request is unconditional).
func (h *HTTPSource) LoadState() HTTPState {
	var st HTTPState
	if h.StateFile == "" {
		return st
	}
	b, err := os.ReadFile(h.StateFile)
	if err != nil || json.Unmarshal(b, &st) != nil || st.URL != h.URL {
		return HTTPState{}
	}
	return st
}

func (h *HTTPSource) saveState(st HTTPState) error {
	if h.StateFile == "" {
		return nil
	}
	if st.ETag == "" && st.LastModified == "" {
		if err := os.Remove(h.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sync state: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(h.StateFile), 0o750); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	if err := renameio.WriteFile(h.StateFile, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	return nil
}

// Fetch GETs the URL, conditionally when the node is at least at the serial
// the remembered validators belong to.
func (h *HTTPSource) Fetch(ctx context.Context, current uint64, hasCurrent bool) (*Fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	if h.UserAgent != "" {
		req.Header.Set("User-Agent", h.UserAgent)
	}
	st := h.LoadState()
	if st.Serial != 0 && hasCurrent && current >= st.Serial {
		if st.ETag != "" {
			req.Header.Set("If-None-Match", st.ETag)
		}
		if st.LastModified != "" {
			req.Header.Set("If-Modified-Since", st.LastModified)
		}
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, nil
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return nil, fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	default:
		return nil, fmt.Errorf("GET %s: %s: %w", h.URL, resp.Status, ErrPermanent)
	}
	max := h.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("GET %s: %d bytes, more than %d: %w", h.URL, resp.ContentLength, max, errors.Join(ErrPermanent, ErrRefused))
	}
	var body bytes.Buffer
	if _, err := io.Copy(&body, io.LimitReader(resp.Body, max+1)); err != nil {
		return nil, fmt.Errorf("GET %s: body: %w", h.URL, err)
	}
	if int64(body.Len()) > max {
		return nil, fmt.Errorf("GET %s: larger than %d bytes: %w", h.URL, max, errors.Join(ErrPermanent, ErrRefused))
	}
	next := HTTPState{URL: h.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return &Fetched{Data: body.Bytes(), Origin: h.URL, Settle: func(serial uint64) error {
		next.Serial = serial
		return h.saveState(next)
	}}, nil
}
