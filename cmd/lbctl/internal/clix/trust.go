package clix

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lbctl/lbctl/bundle/sign"
)

// Environment variables that name the keys an admin trusts.
const (
	PubkeyEnv     = "LBCTL_PUBKEY"      // a public key file, like --pubkey
	TrustedDirEnv = "LBCTL_TRUSTED_DIR" // a directory of *.pub keys, like --trusted
)

// TrustSearch says where the public keys that verify a bundle may be.
// Find takes the first of: the --pubkey file, the --trusted directory,
// $LBCTL_PUBKEY, $LBCTL_TRUSTED_DIR, the admin's UserTrustDir and the
// node's SystemDir; the two last only when they exist, so that a
// workstation needs no /etc/lbctl.
type TrustSearch struct {
	Pubkey    string // --pubkey, "" when not given
	Dir       string // --trusted, "" when not given
	SystemDir string // the node's trust directory (sign.DefaultTrustDir)
}

// ErrNoTrust is returned by Find when no key is named and neither
// directory exists; its message says what to give.
var ErrNoTrust = errors.New("no trusted public key")

// UserTrustDir is $XDG_CONFIG_HOME/lbctl/trusted.d, or
// ~/.config/lbctl/trusted.d without XDG_CONFIG_HOME; "" when neither the
// variable nor the home directory is known.
func UserTrustDir() string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "lbctl", "trusted.d")
}

// Find loads the trusted keys and says where they came from.
func (s TrustSearch) Find() (*sign.Trust, string, error) {
	if s.Pubkey != "" && s.Dir != "" {
		return nil, "", Usagef("give --pubkey or --trusted, not both")
	}
	switch {
	case s.Pubkey != "":
		return loadPubkey(s.Pubkey, "--pubkey")
	case s.Dir != "":
		return loadDir(s.Dir, "--trusted")
	}
	if p := os.Getenv(PubkeyEnv); p != "" {
		return loadPubkey(p, "$"+PubkeyEnv)
	}
	if d := os.Getenv(TrustedDirEnv); d != "" {
		return loadDir(d, "$"+TrustedDirEnv)
	}
	user := UserTrustDir()
	for _, d := range []string{user, s.SystemDir} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return loadDir(d, d)
	}
	return nil, "", &UsageError{Msg: fmt.Sprintf("%v: give --pubkey FILE (the signer's NAME.pub), set %s=FILE, "+
		"or copy the key into %s/ (on a node: %s/); neither directory exists", ErrNoTrust, PubkeyEnv, orDefault(user, "~/.config/lbctl/trusted.d"), s.SystemDir)}
}

func loadPubkey(p, from string) (*sign.Trust, string, error) {
	k, err := sign.LoadPublicKey(p)
	if err != nil {
		return nil, "", fmt.Errorf("public key (%s): %w", from, err)
	}
	return sign.NewTrust(k), p, nil
}

func loadDir(d, from string) (*sign.Trust, string, error) {
	t, err := sign.LoadTrustDir(d)
	if err != nil {
		if from != d {
			return nil, "", fmt.Errorf("trusted keys (%s): %w", from, err)
		}
		return nil, "", fmt.Errorf("trusted keys: %w", err)
	}
	return t, d, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
