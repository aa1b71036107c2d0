package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"unicode"

	"github.com/paddockhq/paddock/internal/digestmd5"
	"github.com/paddockhq/paddock/proto"
)

// SecurityConfig is the security part of Config: TLS on a second client
// port, the x509 and sasl authentication schemes, their super users, and
// ZooKeeper's authentication enforcement. docs/SECURITY.md describes each
// field with its zoo.cfg key and flag.
type SecurityConfig struct {
	// SecureListenAddr is the TLS client address (ZooKeeper's
	// secureClientPortAddress:secureClientPort); empty disables TLS. The
	// plain ListenAddr keeps serving the same protocol.
	SecureListenAddr string
	// TLSCertFile and TLSKeyFile are the server's PEM certificate (chain)
	// and unencrypted private key. An empty TLSKeyFile means the key is in
	// TLSCertFile, as in ZooKeeper's PEM key store (ssl.keyStore.location
	// with ssl.keyStore.type=PEM).
	TLSCertFile, TLSKeyFile string
	// TLSCAFile holds the PEM CA certificates that client certificates
	// must chain to (ssl.trustStore.location).
	TLSCAFile string
	// TLSClientAuth is ssl.clientAuth: "none", "want" or "need"; empty
	// means need, as in ZooKeeper. The files are reloaded when they change.
	TLSClientAuth string
	// SuperUserX509 is zookeeper.X509AuthenticationProvider.superUser: a
	// client whose certificate subject is exactly this DN is super.
	SuperUserX509 string

	// JAASFile is java.security.auth.login.config: a JAAS file whose
	// server section lists the DIGEST-MD5 users as user_<name>="<password>".
	// Empty disables SASL (a sasl request is answered as ZooKeeper does
	// without a SASL server: OK with no token).
	JAASFile string
	// JAASSection is the section to read (zookeeper.sasl.serverconfig);
	// default "Server".
	JAASSection string
	// SaslSuperUser is zookeeper.superUser: the SASL user that is super.
	SaslSuperUser string
	// SaslSuperPassword is zookeeper.SASLAuthenticationProvider.superPassword:
	// if set, the password of the SASL user "super" (overriding the file).
	SaslSuperPassword string

	// EnforceAuth is enforce.auth.enabled: requests other than auth and
	// sasl from a connection holding no id of EnforceAuthSchemes are
	// answered SESSIONCLOSEDREQUIRESASLAUTH and the connection is closed.
	EnforceAuth bool
	// EnforceAuthSchemes is enforce.auth.schemes.
	EnforceAuthSchemes []string
	// SessionRequireClientSASLAuth is sessionRequireClientSASLAuth: the
	// same as EnforceAuth with the scheme sasl.
	SessionRequireClientSASLAuth bool

	// AdminTLSCertFile and AdminTLSKeyFile are the admin server's own PEM
	// certificate (chain) and private key. Set, the admin server (the
	// /commands, /metrics, the probes, the console) serves HTTPS only, as
	// ZooKeeper's admin.forceHttps does with ssl.quorum.keyStore.location.
	// An empty AdminTLSKeyFile means the key is in AdminTLSCertFile.
	AdminTLSCertFile, AdminTLSKeyFile string
	// AdminTLSCAFile holds the PEM CAs that admin clients' certificates
	// must chain to (ssl.quorum.trustStore.location).
	AdminTLSCAFile string
	// AdminTLSClientAuth is "none" (the default, as Jetty's), "want" or
	// "need" (admin.needClientAuth=true). A verified certificate gives the
	// console's requests the x509 id of its subject (and super for
	// SuperUserX509), as on the secure client port.
	AdminTLSClientAuth string
	// AdminPortUnification also serves plain HTTP on the HTTPS admin port
	// (admin.portUnification), telling the two apart by the first byte.
	AdminPortUnification bool
}

// security is the server's running security state.
type security struct {
	tls *tlsState
	// users are the DIGEST-MD5 users; nil when SASL is off.
	users map[string]string
	// enforce lists the schemes a connection must hold one id of; nil
	// when enforcement is off.
	enforce map[string]bool
	// saslRequired: enforcement includes sasl (a failed SASL exchange is
	// answered SESSIONCLOSEDREQUIRESASLAUTH instead of AUTHFAILED).
	saslRequired bool
}

// The DIGEST-MD5 parameters ZooKeeper uses (ZooKeeperSaslServer,
// SecurityUtils.createSaslServer): protocol "zookeeper", server name
// "zk-sasl-md5", which is also the realm.
const (
	saslService = "zookeeper"
	saslHost    = "zk-sasl-md5"
)

// startSecurity reads the JAAS file, checks the enforcement settings and
// binds the secure client port. On error nothing is left open.
func (s *Server) startSecurity() (*security, error) {
	cfg := &s.cfg
	sec := &security{}
	if cfg.JAASFile != "" {
		section := cfg.JAASSection
		if section == "" {
			section = "Server"
		}
		users, err := loadJAASUsers(cfg.JAASFile, section)
		if err != nil {
			return nil, err
		}
		sec.users = users
		s.log.Info("SASL DIGEST-MD5 enabled", "jaas", cfg.JAASFile, "section", section, "users", len(users))
	}
	var schemes []string
	switch {
	case cfg.SessionRequireClientSASLAuth:
		schemes = []string{"sasl"}
	case cfg.EnforceAuth:
		for _, sc := range cfg.EnforceAuthSchemes {
			if sc = strings.TrimSpace(sc); sc != "" {
				schemes = append(schemes, sc)
			}
		}
		if len(schemes) == 0 {
			return nil, errors.New("enforce.auth.enabled is true, enforce.auth.schemes must be configured")
		}
	}
	if len(schemes) > 0 {
		sec.enforce = map[string]bool{}
		for _, sc := range schemes {
			switch sc {
			case "ip", "digest", "x509", "sasl":
			default:
				return nil, fmt.Errorf("authentication scheme %s is not available", sc)
			}
			sec.enforce[sc] = true
		}
		sec.saslRequired = sec.enforce["sasl"]
		s.log.Info("authentication enforced", "schemes", schemes)
	}
	t, err := s.listenTLS()
	if err != nil {
		return nil, err
	}
	sec.tls = t
	return sec, nil
}

// closeSecurity closes the secure listener.
func (s *Server) closeSecurity() {
	if s.sec != nil && s.sec.tls != nil {
		s.sec.tls.ln.Close()
	}
}

// SecureAddr returns the address of the TLS client port, or nil when TLS
// is not configured.
func (s *Server) SecureAddr() net.Addr {
	if s.sec == nil || s.sec.tls == nil {
		return nil
	}
	return s.sec.tls.ln.Addr()
}

// serveSecure accepts on the TLS port, when there is one, until the
// server closes.
func (s *Server) serveSecure() {
	if s.sec == nil || s.sec.tls == nil {
		return
	}
	go func() {
		if err := s.acceptLoop(s.sec.tls.ln); err != nil {
			s.log.Error("secure client port stopped", "err", err)
		}
	}()
}

// handleSasl answers a sasl request (ZooKeeperServer.processSasl): one
// step of the DIGEST-MD5 exchange. On success the connection gets the id
// sasl:<user> (and super when the user is SaslSuperUser); a failure is
// answered AUTHFAILED (SESSIONCLOSEDREQUIRESASLAUTH when SASL is
// enforced) and the connection closed.
func (c *conn) handleSasl(xid int32, body []byte) bool {
	var req proto.GetSASLRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.log.Warn("closing connection: malformed sasl request", "err", err)
		c.close()
		return false
	}
	r := c.newRequest(xid, proto.OpSasl)
	c.enqueue(r)
	sec := c.s.sec
	if sec == nil || sec.users == nil {
		// ZooKeeper without a SASL server logs an error and answers OK
		// with no token.
		c.log.Warn("sasl request but SASL is not configured (no JAAS file)")
		c.complete(r, encodeReply(xid, 0, proto.ErrOK, &proto.SetSASLResponse{}), false)
		return true
	}
	c.authMu.Lock()
	if c.sasl == nil {
		c.sasl = &digestmd5.Server{
			Service: saslService, Host: saslHost, Realm: saslHost,
			Password: func(user string) (string, bool) {
				if user == "super" && c.s.cfg.SaslSuperPassword != "" {
					return c.s.cfg.SaslSuperPassword, true
				}
				pw, ok := sec.users[user]
				return pw, ok
			},
		}
	}
	ms := c.sasl
	c.authMu.Unlock()
	token, err := ms.Next(req.Token)
	if err != nil {
		code := proto.ErrAuthFailed
		if sec.saslRequired {
			code = proto.ErrSessionClosedRequireSASL
		}
		c.s.stats.authFailed.Add(1)
		c.log.Warn("SASL authentication failed, closing connection", "err", err)
		// ZooKeeper sends the error header with an empty SetSASLResponse.
		e := proto.NewEncoder(make([]byte, 4, 32))
		hdr := proto.ReplyHeader{Xid: xid, Zxid: 0, Err: int32(code)}
		hdr.Encode(e)
		(&proto.SetSASLResponse{}).Encode(e)
		c.complete(r, finishFrame(e), true)
		return false
	}
	if ms.Complete() {
		user := ms.Username()
		c.addAuth(proto.Id{Scheme: "sasl", Id: user})
		if su := c.s.cfg.SaslSuperUser; su != "" && user == su {
			c.addAuth(proto.Id{Scheme: "super", Id: ""})
			c.log.Info("authenticated as super user", "scheme", "sasl", "id", user)
		}
		c.log.Info("authenticated", "scheme", "sasl", "id", user)
	}
	c.complete(r, encodeReply(xid, 0, proto.ErrOK, &proto.SetSASLResponse{Token: token}), false)
	return true
}

// enforceAuth is AuthenticationHelper.enforceAuthentication: with
// enforcement on, a request from a connection that holds no id of the
// enforced schemes is answered SESSIONCLOSEDREQUIRESASLAUTH and the
// connection closed. It reports whether the request may proceed.
func (c *conn) enforceAuth(xid int32, op proto.OpCode) bool {
	sec := c.s.sec
	if sec == nil || sec.enforce == nil {
		return true
	}
	ids := c.authIDs()
	for _, id := range ids {
		if sec.enforce[id.Scheme] {
			return true
		}
	}
	schemes := make([]string, 0, len(ids))
	for _, id := range ids {
		schemes = append(schemes, id.Scheme)
	}
	c.log.Warn("closing connection: client is not authenticated with a required scheme", "op", op, "has", schemes)
	r := c.newRequest(xid, op)
	c.enqueue(r)
	c.complete(r, encodeReply(xid, 0, proto.ErrSessionClosedRequireSASL, nil), true)
	return false
}

// loadJAASUsers reads the DIGEST-MD5 users of one section of a JAAS file,
// as SaslServerCallbackHandler does: every option named user_<name> of
// every login module in the section is user <name> with that password.
func loadJAASUsers(path, section string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("JAAS file: %w", err)
	}
	sections, err := parseJAAS(string(b))
	if err != nil {
		return nil, fmt.Errorf("JAAS file %s: %w", path, err)
	}
	entries, ok := sections[section]
	if !ok {
		return nil, fmt.Errorf("JAAS file %s: no %q section", path, section)
	}
	users := map[string]string{}
	for _, e := range entries {
		for k, v := range e.Options {
			if name, ok := strings.CutPrefix(k, "user_"); ok {
				users[name] = v
			}
		}
	}
	return users, nil
}

// jaasEntry is one login module line of a JAAS section.
type jaasEntry struct {
	Module, Flag string
	Options      map[string]string
}

// parseJAAS parses the JAAS login configuration syntax:
//
//	Name { module.Class flag key=value key="quoted value"; ... };
//
// with // and /* */ comments. Values may be quoted ("..." with \ escapes)
// or bare words.
func parseJAAS(text string) (map[string][]jaasEntry, error) {
	toks, err := jaasTokens(text)
	if err != nil {
		return nil, err
	}
	out := map[string][]jaasEntry{}
	i := 0
	next := func() (jaasToken, bool) {
		if i >= len(toks) {
			return jaasToken{}, false
		}
		i++
		return toks[i-1], true
	}
	expect := func(sym string) error {
		t, ok := next()
		if !ok || t.quoted || t.text != sym {
			return fmt.Errorf("line %d: expected %q", t.line, sym)
		}
		return nil
	}
	for i < len(toks) {
		name, _ := next()
		if name.quoted || isJAASSymbol(name.text) {
			return nil, fmt.Errorf("line %d: expected a section name, got %q", name.line, name.text)
		}
		if err := expect("{"); err != nil {
			return nil, err
		}
		var entries []jaasEntry
		for {
			t, ok := next()
			if !ok {
				return nil, fmt.Errorf("section %s: missing }", name.text)
			}
			if !t.quoted && t.text == "}" {
				break
			}
			flag, ok := next()
			if !ok || flag.quoted || isJAASSymbol(flag.text) {
				return nil, fmt.Errorf("line %d: expected a control flag after %s", t.line, t.text)
			}
			e := jaasEntry{Module: t.text, Flag: flag.text, Options: map[string]string{}}
			for {
				k, ok := next()
				if !ok {
					return nil, fmt.Errorf("line %d: missing ;", flag.line)
				}
				if !k.quoted && k.text == ";" {
					break
				}
				if k.quoted || isJAASSymbol(k.text) {
					return nil, fmt.Errorf("line %d: expected an option name, got %q", k.line, k.text)
				}
				if err := expect("="); err != nil {
					return nil, err
				}
				v, ok := next()
				if !ok || (!v.quoted && isJAASSymbol(v.text)) {
					return nil, fmt.Errorf("line %d: expected a value for %s", k.line, k.text)
				}
				e.Options[k.text] = v.text
			}
			entries = append(entries, e)
		}
		if err := expect(";"); err != nil {
			return nil, err
		}
		out[name.text] = append(out[name.text], entries...)
	}
	return out, nil
}

type jaasToken struct {
	text   string
	quoted bool
	line   int
}

func isJAASSymbol(s string) bool { return s == "{" || s == "}" || s == ";" || s == "=" }

func jaasTokens(text string) ([]jaasToken, error) {
	var toks []jaasToken
	line := 1
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '\n':
			line++
			i++
		case unicode.IsSpace(r):
			i++
		case r == '/' && i+1 < len(rs) && rs[i+1] == '/':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == '/' && i+1 < len(rs) && rs[i+1] == '*':
			i += 2
			for i+1 < len(rs) && !(rs[i] == '*' && rs[i+1] == '/') {
				if rs[i] == '\n' {
					line++
				}
				i++
			}
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			i += 2
		case r == '{' || r == '}' || r == ';' || r == '=':
			toks = append(toks, jaasToken{text: string(r), line: line})
			i++
		case r == '"':
			start := line
			var b strings.Builder
			i++
			for {
				if i >= len(rs) {
					return nil, fmt.Errorf("line %d: unterminated string", start)
				}
				c := rs[i]
				i++
				if c == '"' {
					break
				}
				if c == '\\' && i < len(rs) {
					c = rs[i]
					i++
				}
				if c == '\n' {
					line++
				}
				b.WriteRune(c)
			}
			toks = append(toks, jaasToken{text: b.String(), quoted: true, line: start})
		default:
			start := i
			for i < len(rs) && !unicode.IsSpace(rs[i]) && !strings.ContainsRune("{};=\"", rs[i]) {
				i++
			}
			toks = append(toks, jaasToken{text: string(rs[start:i]), line: line})
		}
	}
	return toks, nil
}
