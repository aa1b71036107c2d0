// Package digestmd5 is the server side of the DIGEST-MD5 SASL mechanism
// (RFC 2831) as Apache ZooKeeper runs it: authentication only (qop
// "auth", no integrity or privacy layer), one realm, algorithm md5-sess,
// and the server's mutual-authentication reply ("rspauth").
//
// No maintained Go module implements the server side of DIGEST-MD5, so
// this small, self-contained implementation exists; it is checked against
// the worked example of RFC 2831 section 4 and against real clients
// (Apache ZooKeeper's Java client, Kazoo through pure-sasl).
//
// An exchange has two steps. The client opens with an empty token and the
// server answers with a challenge (Next). The client answers with a
// digest-response; the server verifies it and returns "rspauth=..." and
// the exchange is complete (Username then names the authenticated user).
package digestmd5

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// PasswordFunc looks up a user's password; ok is false for an unknown
// user.
type PasswordFunc func(user string) (password string, ok bool)

// Server is one server-side DIGEST-MD5 exchange. It is not safe for
// concurrent use; a connection runs one exchange at a time.
type Server struct {
	// Service and Host form the digest-uri the client must use,
	// "<Service>/<Host>". ZooKeeper uses "zookeeper" and "zk-sasl-md5".
	Service, Host string
	// Realm is the realm offered in the challenge; ZooKeeper offers its
	// server name, "zk-sasl-md5".
	Realm string
	// Password looks users up.
	Password PasswordFunc
	// Nonce, if set, returns the server nonce (for tests); default 30
	// random bytes in base64 (40 characters, as Java's server sends).
	Nonce func() string

	step     int
	nonce    string
	user     string
	complete bool
}

// Errors returned by Next. Every error ends the exchange.
var (
	// ErrAuthFailed means the credentials were wrong or the user unknown.
	ErrAuthFailed = errors.New("digest-md5: authentication failed")
	// ErrProtocol means the client's message violated RFC 2831.
	ErrProtocol = errors.New("digest-md5: protocol violation")
)

// Complete reports whether the exchange succeeded.
func (s *Server) Complete() bool { return s.complete }

// Username is the authenticated user once Complete.
func (s *Server) Username() string { return s.user }

// Next consumes the client's token and returns the server's reply token.
func (s *Server) Next(token []byte) ([]byte, error) {
	switch s.step {
	case 0:
		// Java's DigestMD5Server refuses an initial response; DIGEST-MD5
		// has none.
		if len(token) != 0 {
			s.step = -1
			return nil, fmt.Errorf("%w: initial response must be empty", ErrProtocol)
		}
		s.step = 1
		s.nonce = s.newNonce()
		return []byte(s.challenge()), nil
	case 1:
		s.step = -1
		rspauth, err := s.verify(token)
		if err != nil {
			return nil, err
		}
		s.complete = true
		s.step = 2
		return []byte("rspauth=" + rspauth), nil
	}
	return nil, fmt.Errorf("%w: unexpected message", ErrProtocol)
}

func (s *Server) newNonce() string {
	if s.Nonce != nil {
		return s.Nonce()
	}
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// challenge is the digest-challenge (RFC 2831 2.1.1) exactly as Java's
// DigestMD5Server writes it for ZooKeeper: qop is left out because the
// only one offered is the default, "auth".
func (s *Server) challenge() string {
	var b strings.Builder
	if s.Realm != "" {
		b.WriteString(`realm="` + quote(s.Realm) + `",`)
	}
	b.WriteString(`nonce="` + quote(s.nonce) + `",`)
	b.WriteString(`charset=utf-8,algorithm=md5-sess`)
	return b.String()
}

// verify checks a digest-response (RFC 2831 2.1.2) and returns the
// rspauth value.
func (s *Server) verify(token []byte) (string, error) {
	d, err := Parse(string(token))
	if err != nil {
		return "", err
	}
	for _, k := range []string{"username", "nonce", "cnonce", "nc", "response", "digest-uri"} {
		if _, ok := d[k]; !ok {
			return "", fmt.Errorf("%w: missing %s", ErrProtocol, k)
		}
	}
	if d["nonce"] != s.nonce {
		return "", fmt.Errorf("%w: nonce mismatch", ErrProtocol)
	}
	if nc := d["nc"]; !strings.EqualFold(nc, "00000001") {
		return "", fmt.Errorf("%w: nonce count %q", ErrProtocol, nc)
	}
	qop, ok := d["qop"]
	if !ok {
		qop = "auth"
	}
	if qop != "auth" {
		return "", fmt.Errorf("%w: qop %q not offered", ErrProtocol, qop)
	}
	realm, hasRealm := d["realm"]
	if hasRealm && realm != s.Realm {
		return "", fmt.Errorf("%w: realm %q not offered", ErrProtocol, realm)
	}
	if !hasRealm {
		realm = ""
	}
	uri := d["digest-uri"]
	svc, host, _ := strings.Cut(uri, "/")
	host, _, _ = strings.Cut(host, "/")
	if !strings.EqualFold(svc, s.Service) || !strings.EqualFold(host, s.Host) {
		return "", fmt.Errorf("%w: digest-uri %q, want %s/%s", ErrProtocol, uri, s.Service, s.Host)
	}
	if cs, ok := d["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", fmt.Errorf("%w: charset %q", ErrProtocol, cs)
	}
	user := d["username"]
	pw, ok := s.Password(user)
	if !ok {
		return "", fmt.Errorf("%w: unknown user %q", ErrAuthFailed, user)
	}
	utf8Charset := d["charset"] != ""
	authzid := d["authzid"]
	want := Response(user, realm, pw, s.nonce, d["cnonce"], d["nc"], qop, uri, authzid, utf8Charset)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(d["response"])), []byte(want)) != 1 {
		return "", fmt.Errorf("%w: wrong response for user %q", ErrAuthFailed, user)
	}
	s.user = user
	return RspAuth(user, realm, pw, s.nonce, d["cnonce"], d["nc"], qop, uri, authzid, utf8Charset), nil
}

// Response computes the client's response-value (RFC 2831 2.1.2.1) for qop
// "auth". With utf8 set (the client sent charset=utf-8), user name, realm
// and password are hashed in ISO 8859-1 when every character fits, as the
// RFC requires, else in UTF-8; without it they are hashed as given.
func Response(user, realm, password, nonce, cnonce, nc, qop, digestURI, authzid string, utf8 bool) string {
	return kd(user, realm, password, nonce, cnonce, nc, qop, "AUTHENTICATE:"+digestURI, authzid, utf8)
}

// RspAuth computes the server's response-auth value (RFC 2831 2.1.3),
// which proves to the client that the server knows the password too.
func RspAuth(user, realm, password, nonce, cnonce, nc, qop, digestURI, authzid string, utf8 bool) string {
	return kd(user, realm, password, nonce, cnonce, nc, qop, ":"+digestURI, authzid, utf8)
}

func kd(user, realm, password, nonce, cnonce, nc, qop, a2, authzid string, utf8 bool) string {
	enc := func(s string) string { return s }
	if utf8 {
		enc = latin1IfPossible
	}
	urp := md5.Sum([]byte(enc(user) + ":" + enc(realm) + ":" + enc(password)))
	a1 := string(urp[:]) + ":" + nonce + ":" + cnonce
	if authzid != "" {
		a1 += ":" + authzid
	}
	ha1 := md5.Sum([]byte(a1))
	ha2 := md5.Sum([]byte(a2))
	sum := md5.Sum([]byte(hex.EncodeToString(ha1[:]) + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + hex.EncodeToString(ha2[:])))
	return hex.EncodeToString(sum[:])
}

// latin1IfPossible returns s re-encoded in ISO 8859-1 when every rune is
// below U+0100 (RFC 2831 2.1.2.1), else s unchanged (UTF-8).
func latin1IfPossible(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError {
			return s
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// quote escapes '"' and '\' for a quoted-string.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Parse splits a DIGEST-MD5 message into its directives: a
// comma-separated list of name=value, where value is a token or a
// quoted-string with backslash escapes; white space around elements and
// empty elements are allowed (the "#rule" of RFC 2831 section 7.1). A
// repeated directive is an error.
func Parse(msg string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skipSpace := func() {
		for i < len(msg) && (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r' || msg[i] == '\n') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(msg) {
			return out, nil
		}
		if msg[i] == ',' {
			i++
			continue
		}
		start := i
		for i < len(msg) && msg[i] != '=' && msg[i] != ',' {
			i++
		}
		name := strings.ToLower(strings.TrimSpace(msg[start:i]))
		if i >= len(msg) || msg[i] != '=' || name == "" {
			return nil, fmt.Errorf("%w: bad directive near %q", ErrProtocol, msg[start:i])
		}
		i++
		skipSpace()
		var val strings.Builder
		if i < len(msg) && msg[i] == '"' {
			i++
			closed := false
			for i < len(msg) {
				c := msg[i]
				i++
				if c == '\\' && i < len(msg) {
					val.WriteByte(msg[i])
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("%w: unterminated quoted string for %s", ErrProtocol, name)
			}
		} else {
			start := i
			for i < len(msg) && msg[i] != ',' {
				i++
			}
			val.WriteString(strings.TrimSpace(msg[start:i]))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: directive %s repeated", ErrProtocol, name)
		}
		out[name] = val.String()
		skipSpace()
		if i < len(msg) && msg[i] != ',' {
			return nil, fmt.Errorf("%w: junk after %s", ErrProtocol, name)
		}
	}
}
