package validate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/lbctl/lbctl/systemd"
)

// Account is who a VIP's HAProxy runs as: the user and group of the systemd
// template unit, with the supplementary groups systemd gives it (the user's
// groups in the group database).
type Account struct {
	User   string
	UID    uint32
	GID    uint32
	Groups []uint32
}

// UnitAccount returns the User= and Group= of the template unit
// (lb-haproxy@.service); group is empty when the unit sets none.
func UnitAccount() (userName, group string) {
	for _, l := range strings.Split(systemd.Template(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "User="); ok {
			userName = v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Group="); ok {
			group = v
		}
	}
	return userName, group
}

// LookupAccount resolves a user and group (empty: the user's primary
// group) in the user database.
func LookupAccount(userName, group string) (*Account, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("haproxy user: %w", err)
	}
	a := &Account{User: userName}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("haproxy user %s: uid %q: %w", userName, u.Uid, err)
	}
	a.UID = uint32(uid)
	gid := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("haproxy group: %w", err)
		}
		gid = g.Gid
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("haproxy user %s: groups: %w", userName, err)
	}
	for _, s := range append(ids, gid) {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("haproxy user %s: gid %q: %w", userName, s, err)
		}
		a.Groups = append(a.Groups, uint32(n))
	}
	g, _ := strconv.ParseUint(gid, 10, 32)
	a.GID = uint32(g)
	slices.Sort(a.Groups)
	a.Groups = slices.Compact(a.Groups)
	return a, nil
}

func (a *Account) inGroup(gid uint32) bool {
	return gid == a.GID || slices.Contains(a.Groups, gid)
}

// Permission bits asked for.
const (
	mayExec = 1
	mayRead = 4
)

// ACL entry tags (linux/posix_acl.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// node is what the permission check needs to know about one inode.
type node struct {
	mode     fs.FileMode
	uid, gid uint32
	// acl is the access ACL in the kernel's order; nil when there is none.
	acl []aclEntry
}

// permits is the kernel's permission check (acl_permission_check and
// posix_acl_permission) for a process of account a without capabilities,
// which is what the template unit leaves HAProxy (no CAP_DAC_OVERRIDE or
// CAP_DAC_READ_SEARCH). Like the kernel, it ignores an ACL whose mask (the
// group bits of the mode) is empty.
func (a *Account) permits(n node, want uint16) bool {
	if n.acl == nil || n.mode.Perm()&0o070 == 0 {
		bits := uint16(n.mode.Perm())
		switch {
		case a.UID == n.uid:
			bits >>= 6
		case a.inGroup(n.gid):
			bits >>= 3
		}
		return bits&want == want
	}
	var found bool
	masked := func(i int) bool {
		for _, m := range n.acl[i+1:] {
			if m.tag == aclMask {
				return n.acl[i].perm&m.perm&want == want
			}
		}
		return n.acl[i].perm&want == want
	}
	for i, e := range n.acl {
		switch e.tag {
		case aclUserObj:
			if a.UID == n.uid {
				return e.perm&want == want
			}
		case aclUser:
			if a.UID == e.id {
				return masked(i)
			}
		case aclGroupObj, aclGroup:
			gid := e.id
			if e.tag == aclGroupObj {
				gid = n.gid
			}
			if a.inGroup(gid) {
				found = true
				if e.perm&want == want {
					return masked(i)
				}
			}
		case aclOther:
			return !found && e.perm&want == want
		}
	}
	return false
}

// inspect stats path (not following a final symlink) and reads its access
// ACL.
func inspect(path string) (node, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return node{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return node{}, fmt.Errorf("%s: no owner information", path)
	}
	n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return n, nil
	}
	buf := make([]byte, 4+8*64)
	sz, err := syscall.Getxattr(path, "system.posix_acl_access", buf)
	switch {
	case err == nil:
		n.acl, err = parseACL(buf[:sz])
		if err != nil {
			return node{}, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, syscall.ENODATA), errors.Is(err, syscall.EOPNOTSUPP):
	default:
		return node{}, fmt.Errorf("%s: access ACL: %w", path, err)
	}
	return n, nil
}

// parseACL decodes the system.posix_acl_access extended attribute
// (linux/posix_acl_xattr.h: a version, then tag, perm, id triples, in the
// kernel's order: sorted by tag, then id).
func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 || binary.LittleEndian.Uint32(b) != 2 {
		return nil, errors.New("access ACL: unknown format")
	}
	var out []aclEntry
	for b = b[4:]; len(b) > 0; b = b[8:] {
		out = append(out, aclEntry{tag: binary.LittleEndian.Uint16(b), perm: binary.LittleEndian.Uint16(b[2:]), id: binary.LittleEndian.Uint32(b[4:])})
	}
	return out, nil
}

// describe is "mode 0640 root:haproxy" (", ACL" when there is one).
func describe(n node) string {
	owner := strconv.FormatUint(uint64(n.uid), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	group := strconv.FormatUint(uint64(n.gid), 10)
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	s := fmt.Sprintf("mode %04o %s:%s", uint32(n.mode.Perm()), owner, group)
	if n.acl != nil {
		s += ", ACL"
	}
	return s
}

// CanRead reports whether account a can open path for reading, resolving it
// the way the kernel does: every directory on the way (symlinks followed)
// needs search permission, the file (or directory) read permission. The
// error says which step fails and why; a path that does not exist gives an
// error matching fs.ErrNotExist. The caller needs to be able to inspect
// every step (root).
func (a *Account) CanRead(path string) error {
	if !filepath.IsAbs(path) {
		path = "/" + path
	}
	dir := "/"
	rest := strings.Split(path, "/")
	hops := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		d, err := inspect(dir)
		if err != nil {
			return err
		}
		if !d.mode.IsDir() {
			return fmt.Errorf("%s: %w", dir, syscall.ENOTDIR)
		}
		if !a.permits(d, mayExec) {
			return fmt.Errorf("not readable by user %s: directory %s not searchable (%s)", a.User, dir, describe(d))
		}
		if name == ".." {
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, name)
		n, err := inspect(next)
		if err != nil {
			return err
		}
		if n.mode&fs.ModeSymlink == 0 {
			dir = next
			continue
		}
		if hops++; hops > 40 {
			return fmt.Errorf("%s: %w", path, syscall.ELOOP)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			dir = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	n, err := inspect(dir)
	if err != nil {
		return err
	}
	want := uint16(mayRead)
	if n.mode.IsDir() {
		want |= mayExec
	}
	if !a.permits(n, want) {
		return fmt.Errorf("not readable by user %s (%s)", a.User, describe(n))
	}
	return nil
}
