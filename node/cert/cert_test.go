package cert

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbctl/lbctl/internal/testcert"
)

func TestCheck(t *testing.T) {
	ca, err := testcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good, _ := ca.IssueValid("www.campus.example", "*.physik.campus.example")
	other, _ := ca.IssueValid("other.campus.example")
	expired, _ := ca.Issue([]string{"www.campus.example"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future, _ := ca.Issue([]string{"www.campus.example"}, now.Add(24*time.Hour), now.Add(48*time.Hour))
	// Leaf of one file with the key of another: the key does not match.
	mismatch := append(bytes.Clone(good[:bytes.Index(good, []byte("-----BEGIN PRIVATE KEY"))]), other[bytes.Index(other, []byte("-----BEGIN PRIVATE KEY")):]...)
	noKey := good[:bytes.Index(good, []byte("-----BEGIN PRIVATE KEY"))]

	tests := []struct {
		name  string
		data  []byte
		hosts []string
		err   string
	}{
		{"good", good, []string{"www.campus.example", "a.physik.campus.example"}, ""},
		{"not covered", good, []string{"mail.campus.example"}, "does not cover mail.campus.example"},
		{"expired", expired, []string{"www.campus.example"}, "expired on"},
		{"not yet valid", future, []string{"www.campus.example"}, "not valid before"},
		{"key mismatch", mismatch, nil, "private key does not match"},
		{"no key", noKey, nil, "no private key"},
		{"empty", []byte("garbage"), nil, "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(tt.data, tt.hosts, now)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA("test CA")
	pemData, _ := ca.IssueValid("ldap.campus.example")
	if err := os.WriteFile(filepath.Join(dir, "ldap.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := CheckFile(dir, "ldap", []string{"ldap.campus.example"}, time.Now())
	if err != nil || info.DNSNames[0] != "ldap.campus.example" {
		t.Fatalf("info %+v err %v", info, err)
	}
	if _, err := CheckFile(dir, "missing", nil, time.Now()); err == nil || !strings.Contains(err.Error(), "certificate missing") {
		t.Fatalf("missing: %v", err)
	}
}

// TestLeaf: the first certificate of a PEM file, whatever comes before it;
// none is ErrNoCertificate.
func TestLeaf(t *testing.T) {
	ca, err := testcert.NewCA("leaf")
	if err != nil {
		t.Fatal(err)
	}
	pemFile, err := ca.IssueValid("www.example.org")
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")
	leaf, err := Leaf(append(append([]byte{}, key...), pemFile...))
	if err != nil || !slices.Contains(leaf.DNSNames, "www.example.org") {
		t.Fatalf("Leaf: %v, %v", leaf, err)
	}
	if _, err := Leaf(key); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("a key only: %v", err)
	}
}
