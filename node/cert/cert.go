// Package cert checks the TLS certificates a release references before
// anything changes on the node. Certificates and private keys never travel
// in bundles: they live on the node as /etc/lbctl/certs/<name>.pem, one PEM
// file with the certificate chain (leaf first) and the private key, the form
// HAProxy's `crt` loads.
package cert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DefaultDir is where certificates live on a node.
const DefaultDir = "/etc/lbctl/certs"

// Info describes a checked certificate.
type Info struct {
	Name     string
	Path     string
	Subject  string
	DNSNames []string
	NotAfter time.Time
}

// Path returns the file of the certificate named name under dir.
func Path(dir, name string) string { return filepath.Join(dir, name+".pem") }

// CheckFile reads and checks the certificate name in dir for the host names.
func CheckFile(dir, name string, hosts []string, now time.Time) (*Info, error) {
	p := Path(dir, name)
	data, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("certificate %s: %s is missing (certificates never travel in bundles: put the chain and key there, docs/deploy.md): %w", name, p, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("certificate %s: %s is not readable: %w", name, p, err)
	case err != nil:
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	info, err := Check(data, hosts, now)
	if err != nil {
		return nil, &FileError{Name: name, Path: p, Err: err}
	}
	info.Name, info.Path = name, p
	return info, nil
}

// FileError is a certificate file that is there and readable but does not
// pass Check: Err says why (expired, a name not covered, no key...).
type FileError struct {
	Name, Path string
	Err        error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("certificate %s (%s): %v", e.Name, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Check verifies a PEM bundle: it holds a certificate chain and a private
// key, the key matches the leaf, the leaf covers every host name and is
// valid at now. It is a pure function.
func Check(data []byte, hosts []string, now time.Time) (*Info, error) {
	var certs []*x509.Certificate
	var key crypto.PrivateKey
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := parseKey(blk)
			if err != nil {
				return nil, fmt.Errorf("parse private key: %w", err)
			}
			key = k
		}
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	if key == nil {
		return nil, errors.New("no private key in file")
	}
	leaf := certs[0]
	if !keyMatches(leaf.PublicKey, key) {
		return nil, errors.New("private key does not match the certificate")
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	var errs []error
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			errs = append(errs, fmt.Errorf("does not cover %s", h))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Info{Subject: leaf.Subject.String(), DNSNames: leaf.DNSNames, NotAfter: leaf.NotAfter}, nil
}

// ErrNoCertificate means a PEM file holds no CERTIFICATE block.
var ErrNoCertificate = errors.New("no certificate in file")

// Leaf parses the first certificate of a PEM bundle (the leaf, in the form
// HAProxy loads), without looking at the rest. It is a pure function.
func Leaf(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, ErrNoCertificate
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

func parseKey(blk *pem.Block) (crypto.PrivateKey, error) {
	switch blk.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	}
	return x509.ParsePKCS8PrivateKey(blk.Bytes)
}

func keyMatches(pub crypto.PublicKey, key crypto.PrivateKey) bool {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case *ecdsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case ed25519.PrivateKey:
		return k.Public().(ed25519.PublicKey).Equal(pub)
	}
	return false
}
