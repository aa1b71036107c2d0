package statemachine

import (
	"net"
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// aclList is an interned, immutable ACL list shared by every node that
// carries the same list (ZooKeeper's ReferenceCountedACLCache): most trees
// use a handful of distinct ACLs, so nodes hold a pointer, not a copy.
type aclList struct {
	acl  []proto.ACL
	key  string
	refs int
}

type aclCache struct {
	byKey map[string]*aclList
}

func newACLCache() aclCache { return aclCache{byKey: make(map[string]*aclList)} }

func aclKey(acl []proto.ACL) string {
	var b strings.Builder
	for _, a := range acl {
		b.WriteString(strconv.Itoa(int(a.Perms)))
		b.WriteByte(0)
		b.WriteString(a.Id.Scheme)
		b.WriteByte(0)
		b.WriteString(a.Id.Id)
		b.WriteByte(0)
	}
	return b.String()
}

// intern returns the shared list equal to acl, taking a reference.
func (c *aclCache) intern(acl []proto.ACL) *aclList {
	k := aclKey(acl)
	l := c.byKey[k]
	if l == nil {
		l = &aclList{acl: append([]proto.ACL(nil), acl...), key: k}
		c.byKey[k] = l
	}
	l.refs++
	return l
}

// release drops a reference, forgetting the list when nobody uses it.
func (c *aclCache) release(l *aclList) {
	l.refs--
	if l.refs <= 0 {
		delete(c.byKey, l.key)
	}
}

// isSuper reports whether the ids include the super user.
func isSuper(auth []proto.Id) bool {
	for _, id := range auth {
		if id.Scheme == "super" {
			return true
		}
	}
	return false
}

// CheckACL reports whether ids may use perm on a node with the given ACL
// (ErrOK or ErrNoAuth), by the same rule as every request. The server uses
// it to filter watch events.
func (s *State) CheckACL(acl []proto.ACL, perm int32, ids []proto.Id) proto.ErrCode {
	return s.checkACL(acl, perm, ids)
}

// checkACL reproduces ZooKeeperServer.checkACL: an empty ACL allows all; the
// super user is allowed all; otherwise one entry granting perm must match
// world:anyone or one of the caller's ids of the same scheme.
func (s *State) checkACL(acl []proto.ACL, perm int32, auth []proto.Id) proto.ErrCode {
	if s.opts.SkipACL || len(acl) == 0 || isSuper(auth) {
		return proto.ErrOK
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		if a.Id.Scheme == "world" && a.Id.Id == "anyone" {
			return proto.ErrOK
		}
		for _, id := range auth {
			if id.Scheme == a.Id.Scheme && schemeMatches(id.Scheme, id.Id, a.Id.Id) {
				return proto.ErrOK
			}
		}
	}
	return proto.ErrNoAuth
}

// schemeMatches is the matches() of each authentication provider.
func schemeMatches(scheme, id, aclExpr string) bool {
	switch scheme {
	case "ip":
		return ipMatches(id, aclExpr)
	case "digest", "x509", "sasl":
		return id == aclExpr
	}
	return false
}

// ipMatches checks an address against an "addr[/bits]" ACL expression, as
// IPAuthenticationProvider does.
func ipMatches(id, expr string) bool {
	addr, bits, ok := parseIPExpr(expr)
	if !ok {
		return false
	}
	ip := net.ParseIP(id)
	if ip == nil {
		return false
	}
	if v4 := ip.To4(); v4 != nil && addr.To4() != nil {
		ip, addr = v4, addr.To4()
	} else if len(addr) != len(ip) {
		return false
	}
	mask := net.CIDRMask(bits, len(addr)*8)
	return ip.Mask(mask).Equal(addr.Mask(mask))
}

func parseIPExpr(expr string) (net.IP, int, bool) {
	host, bitsText, hasBits := strings.Cut(expr, "/")
	addr := net.ParseIP(host)
	if addr == nil {
		return nil, 0, false
	}
	size := 128
	if v4 := addr.To4(); v4 != nil {
		addr, size = v4, 32
	}
	bits := size
	if hasBits {
		b, err := strconv.Atoi(bitsText)
		if err != nil || b < 0 || b > size {
			return nil, 0, false
		}
		bits = b
	}
	return addr, bits, true
}

// validID is the isValid() of each authentication provider that ZooKeeper
// registers by default (ip and digest).
func validID(scheme, id string) bool {
	switch scheme {
	case "digest":
		// Java's split(":") drops trailing empty strings: "bob:" is one part.
		parts := strings.Split(id, ":")
		for len(parts) > 0 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		return len(parts) == 2
	case "ip":
		_, _, ok := parseIPExpr(id)
		return ok
	}
	return false
}

// authenticatedScheme reports the schemes whose ids stand for a user
// (ServerAuthenticationProvider.isAuthenticated): not ip, not super.
func authenticatedScheme(scheme string) bool {
	switch scheme {
	case "digest", "x509", "sasl":
		return true
	}
	return false
}

// fixupACL validates and expands an ACL being set (PrepRequestProcessor.
// fixupACL): duplicates removed, an empty list refused, "auth" replaced by
// the caller's authenticated ids, every other id validated by its scheme.
func fixupACL(acl []proto.ACL, auth []proto.Id) ([]proto.ACL, proto.ErrCode) {
	var uniq []proto.ACL
	for _, a := range acl {
		dup := false
		for _, u := range uniq {
			if u == a {
				dup = true
				break
			}
		}
		if !dup {
			uniq = append(uniq, a)
		}
	}
	if len(uniq) == 0 {
		return nil, proto.ErrInvalidACL
	}
	out := make([]proto.ACL, 0, len(uniq))
	for _, a := range uniq {
		switch {
		case a.Id.Scheme == "world" && a.Id.Id == "anyone":
			out = append(out, a)
		case a.Id.Scheme == "auth":
			valid := false
			for _, id := range auth {
				if authenticatedScheme(id.Scheme) {
					valid = true
					out = append(out, proto.ACL{Perms: a.Perms, Id: id})
				}
			}
			if !valid {
				return nil, proto.ErrInvalidACL
			}
		default:
			if !validID(a.Id.Scheme, a.Id.Id) && !(authenticatedScheme(a.Id.Scheme) && a.Id.Scheme != "digest") {
				return nil, proto.ErrInvalidACL
			}
			out = append(out, a)
		}
	}
	return out, proto.ErrOK
}
