package sign

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
)

// PassphraseEnv is the environment variable the CLI reads a key passphrase
// from before asking on the terminal.
const PassphraseEnv = "LBCTL_KEY_PASSPHRASE"

// Errors about key files.
var (
	// ErrKeyExists is returned by GenerateKeyFiles when NAME.key or NAME.pub
	// exists already: keys are never overwritten.
	ErrKeyExists = errors.New("key file exists")
	// ErrWrongPassphrase means an encrypted secret key did not decrypt.
	ErrWrongPassphrase = errors.New("wrong passphrase for secret key")
	// ErrEmptyPassphrase means an encrypted key was asked for with an empty
	// passphrase.
	ErrEmptyPassphrase = errors.New("empty passphrase (use an unencrypted key for automation)")
)

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 16 << 10

// PassphraseFunc supplies the passphrase of an encrypted secret key. confirm
// is true when a new key is being encrypted (a terminal prompt asks twice).
type PassphraseFunc func(confirm bool) (string, error)

// KeyFiles names the two files of a key pair: NAME.pub and NAME.key.
func KeyFiles(name string) (pub, key string) { return name + ".pub", name + ".key" }

// GenerateKeyFiles creates a new key pair and writes NAME.pub (mode 0644) and
// NAME.key (mode 0600) in minisign's formats. The secret key is encrypted with
// the passphrase from pass unless pass is nil, in which case it is stored
// unencrypted (for automation). Existing files are never overwritten
// (ErrKeyExists). It returns the new public key.
func GenerateKeyFiles(name string, pass PassphraseFunc) (minisign.PublicKey, error) {
	pubPath, keyPath := KeyFiles(name)
	for _, p := range []string{pubPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return minisign.PublicKey{}, fmt.Errorf("keygen: %s: %w", p, ErrKeyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return minisign.PublicKey{}, fmt.Errorf("keygen: %w", err)
		}
	}
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		return minisign.PublicKey{}, fmt.Errorf("keygen: %w", err)
	}
	var keyText []byte
	if pass == nil {
		keyText, err = MarshalUnencrypted(priv)
	} else {
		var pw string
		if pw, err = pass(true); err == nil {
			if pw == "" {
				err = ErrEmptyPassphrase
			} else {
				keyText, err = minisign.EncryptKey(pw, priv)
			}
		}
	}
	if err != nil {
		return minisign.PublicKey{}, fmt.Errorf("keygen: %w", err)
	}
	pubText := MarshalPublicKey(pub)
	// The secret key goes first: if the public key cannot be written the
	// secret key is removed again, so a failed keygen leaves nothing behind.
	if err := writeNew(keyPath, keyText, 0o600); err != nil {
		return minisign.PublicKey{}, fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(pubPath, pubText, 0o644); err != nil {
		os.Remove(keyPath)
		return minisign.PublicKey{}, fmt.Errorf("keygen: %w", err)
	}
	return pub, nil
}

// writeNew writes a file that must not exist yet, and syncs it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrKeyExists)
		}
		return err
	}
	if err := f.Chmod(mode); err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// MarshalUnencrypted encodes an unencrypted secret key in minisign's format,
// including the key checksum that the minisign tool checks (aead.dev/minisign
// leaves it zero), so `minisign -S -s NAME.key` can sign with it.
func MarshalUnencrypted(priv minisign.PrivateKey) ([]byte, error) {
	text, err := priv.MarshalText()
	if err != nil {
		return nil, err
	}
	comment, b64, ok := strings.Cut(string(text), "\n")
	if !ok {
		return nil, errors.New("unexpected secret key encoding")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(raw) != 158 {
		return nil, errors.New("unexpected secret key encoding")
	}
	// Layout: sig alg(2) kdf(2) chk alg(2) salt(32) ops(8) mem(8)
	// keynum(8) sk(64) chk(32); chk = BLAKE2b-256(sig alg || keynum || sk).
	var msg [2 + 8 + 64]byte
	binary.LittleEndian.PutUint16(msg[:], minisign.EdDSA)
	copy(msg[2:], raw[54:126])
	sum := blake2b.Sum256(msg[:])
	copy(raw[126:], sum[:])
	return []byte(comment + "\n" + base64.StdEncoding.EncodeToString(raw) + "\n"), nil
}

// LoadPrivateKey reads a minisign secret key. If the key is encrypted, pass
// is called (with confirm false) for the passphrase; a nil pass then fails.
func LoadPrivateKey(path string, pass PassphraseFunc) (minisign.PrivateKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("secret key: %w", err)
	}
	if !minisign.IsEncrypted(data) {
		var priv minisign.PrivateKey
		if err := priv.UnmarshalText(data); err != nil {
			return minisign.PrivateKey{}, fmt.Errorf("secret key %s: %w", path, err)
		}
		return priv, nil
	}
	if pass == nil {
		return minisign.PrivateKey{}, fmt.Errorf("secret key %s is encrypted and no passphrase source was given", path)
	}
	pw, err := pass(false)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("secret key %s: %w", path, err)
	}
	if pw == "" {
		return minisign.PrivateKey{}, fmt.Errorf("secret key %s: %w", path, ErrEmptyPassphrase)
	}
	priv, err := minisign.DecryptKey(pw, data)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("secret key %s: %w", path, ErrWrongPassphrase)
	}
	return priv, nil
}

// LoadPublicKey reads a minisign public key file.
func LoadPublicKey(path string) (minisign.PublicKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return minisign.PublicKey{}, fmt.Errorf("public key: %w", err)
	}
	var pub minisign.PublicKey
	if err := pub.UnmarshalText(trimText(data)); err != nil {
		return minisign.PublicKey{}, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// MarshalPublicKey encodes a public key file exactly as the minisign tool
// writes it (the key ID in the comment zero-padded to 16 digits).
func MarshalPublicKey(pub minisign.PublicKey) []byte {
	return []byte("untrusted comment: minisign public key " + FormatKeyID(pub.ID()) + "\n" + pub.String() + "\n")
}

// trimText drops trailing white space: minisign's parser wants the base64
// line without a newline after it.
func trimText(b []byte) []byte { return []byte(strings.TrimRight(string(b), " \t\r\n")) }

func readSmall(path string) ([]byte, error) { return readSmallN(path, maxKeyFile) }

func readSmallN(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}
