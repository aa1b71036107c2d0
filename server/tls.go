package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// TLS client authentication modes (ZooKeeper's ssl.clientAuth).
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone = "none"
	// ClientAuthWant asks for a certificate and verifies it if one is sent.
	ClientAuthWant = "want"
	// ClientAuthNeed requires a verified client certificate; ZooKeeper's
	// default.
	ClientAuthNeed = "need"
)

// tlsState is a TLS listener's certificates (the secure client port's or
// the admin server's), reloaded when their files change.
type tlsState struct {
	ln       net.Listener
	name     string // what the certificates serve, for log messages
	certFile string
	keyFile  string // the key; the certificate's file when it holds both
	caFile   string // CAs that peer certificates must chain to; may be ""
	authMode tls.ClientAuthType
	log      *slog.Logger

	mu      sync.Mutex
	checked time.Time // last look at the files' modification times
	stamp   string    // modification times of the loaded files
	current *tls.Config
}

// certCheckInterval bounds how often a handshake looks at the certificate
// files' modification times.
const certCheckInterval = time.Second

// parseClientAuth maps ssl.clientAuth to crypto/tls; empty means def.
func parseClientAuth(mode string, def tls.ClientAuthType) (tls.ClientAuthType, error) {
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "":
		return def, nil
	case ClientAuthNeed:
		return tls.RequireAndVerifyClientCert, nil
	case ClientAuthWant:
		return tls.VerifyClientCertIfGiven, nil
	case ClientAuthNone:
		return tls.NoClientCert, nil
	}
	return 0, fmt.Errorf("bad TLS client auth %q (want none, want or need)", mode)
}

// newTLSState checks a TLS configuration and loads its certificates, so a
// bad file fails the start. An empty keyFile means the key is in certFile
// (ZooKeeper's PEM key store holds both).
func newTLSState(name, certFile, keyFile, caFile string, mode tls.ClientAuthType, log *slog.Logger) (*tlsState, error) {
	if keyFile == "" {
		keyFile = certFile
	}
	t := &tlsState{name: name, certFile: certFile, keyFile: keyFile, caFile: caFile, authMode: mode, log: log}
	if _, err := t.config(); err != nil {
		return nil, err
	}
	return t, nil
}

// listenTLS binds the secure client port when Config.SecureListenAddr is
// set. Certificates are loaded now, so a bad file fails the start.
func (s *Server) listenTLS() (*tlsState, error) {
	cfg := &s.cfg
	if cfg.SecureListenAddr == "" {
		return nil, nil
	}
	if cfg.TLSCertFile == "" {
		return nil, errors.New("secure client port needs a certificate and a key (TLSCertFile, TLSKeyFile)")
	}
	// ZooKeeper's ssl.clientAuth defaults to need.
	mode, err := parseClientAuth(cfg.TLSClientAuth, tls.RequireAndVerifyClientCert)
	if err != nil {
		return nil, err
	}
	if mode != tls.NoClientCert && cfg.TLSCAFile == "" {
		return nil, errors.New("verifying client certificates needs a CA file (TLSCAFile), or client auth none")
	}
	t, err := newTLSState("client", cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, mode, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.SecureListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen (secure): %w", err)
	}
	t.ln = tls.NewListener(ln, t.listenerConfig())
	return t, nil
}

// listenerConfig is the configuration of a TLS listener: every handshake
// takes the current certificates.
func (t *tlsState) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.config()
		},
	}
}

func (t *tlsState) files() []string {
	f := []string{t.certFile, t.keyFile}
	if t.caFile != "" {
		f = append(f, t.caFile)
	}
	return f
}

// config returns the TLS configuration for a new handshake, reloading the
// certificate, key and CA when a file changed since they were loaded. A
// reload that fails keeps the previous configuration (and logs).
func (t *tlsState) config() (*tls.Config, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.current != nil && now.Sub(t.checked) < certCheckInterval {
		return t.current, nil
	}
	t.checked = now
	var stamp strings.Builder
	for _, f := range t.files() {
		fi, err := os.Stat(f)
		if err != nil {
			if t.current != nil {
				t.log.Warn("TLS: cannot stat certificate file, keeping the loaded certificates", "for", t.name, "file", f, "err", err)
				return t.current, nil
			}
			return nil, err
		}
		fmt.Fprintf(&stamp, "%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
	}
	if t.current != nil && stamp.String() == t.stamp {
		return t.current, nil
	}
	c, err := t.load()
	if err != nil {
		if t.current != nil {
			t.log.Warn("TLS: reloading certificates failed, keeping the loaded ones", "for", t.name, "err", err)
			return t.current, nil
		}
		return nil, err
	}
	if t.current != nil {
		t.log.Info("TLS: certificates reloaded", "for", t.name, "cert", t.certFile)
	}
	t.current, t.stamp = c, stamp.String()
	return c, nil
}

func (t *tlsState) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   t.authMode,
	}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA: no PEM certificate in %s", t.caFile)
		}
		c.ClientCAs = pool
	}
	return c, nil
}

// tlsHandshake completes the TLS handshake of a connection on the secure
// port and, when the client presented a verified certificate, gives the
// connection the x509 id (X509AuthenticationProvider): the certificate's
// subject as Java's X500Principal.getName() prints it, plus the super id
// when it is Config.SuperUserX509. It reports whether the connection may
// go on; a plain connection always may.
func (c *conn) tlsHandshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	tc.SetDeadline(time.Now().Add(c.s.cfg.MaxSessionTimeout))
	if err := tc.Handshake(); err != nil {
		c.s.stats.authFailed.Add(1)
		c.log.Warn("closing connection: TLS handshake failed", "err", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 || len(st.VerifiedChains) == 0 {
		return true
	}
	// X509AuthenticationProvider adds super with the client's id (the
	// digest and sasl providers use an empty one).
	for _, id := range c.s.x509IDs(st.PeerCertificates[0]) {
		c.addAuth(id)
		c.log.Info("authenticated", "scheme", id.Scheme, "id", id.Id)
	}
	return true
}

// x509SubjectName is the certificate subject in RFC 2253 form exactly as
// Java's X500Principal.getName() prints it (the id ZooKeeper's
// X509AuthenticationProvider uses), which differs from Go's
// pkix.Name.String: Java knows only CN, C, L, ST, O, OU, STREET, DC and
// UID by name (others print as dotted OIDs with the DER value in
// lower-case hex), and it escapes , = + < > # ; " \ anywhere in a value.
func x509SubjectName(cert *x509.Certificate) string {
	name, err := rfc2253(cert.RawSubject)
	if err != nil {
		return cert.Subject.String()
	}
	return name
}

// rdnSET is one relative distinguished name; encoding/asn1 treats a slice
// type whose name ends in SET as a SET OF.
type rdnSET []rawATV

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// javaKeywords are the attribute names X500Principal's RFC 2253 output
// uses.
var javaKeywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

func rfc2253(raw []byte) (string, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return "", err
	}
	if len(rest) != 0 {
		return "", errors.New("trailing data after subject")
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeATV(&b, atv)
		}
	}
	return b.String(), nil
}

func writeATV(b *strings.Builder, atv rawATV) {
	oid := atv.Type.String()
	kw, known := javaKeywords[oid]
	if !known {
		kw = oid
	}
	b.WriteString(kw)
	b.WriteByte('=')
	val, isString := derString(atv.Value)
	if !known || !isString {
		b.WriteByte('#')
		b.WriteString(hex.EncodeToString(atv.Value.FullBytes))
		return
	}
	const escapees = ",=+<>#;\"\\"
	var v []rune
	for _, r := range val {
		switch {
		case strings.ContainsRune(escapees, r):
			v = append(v, '\\', r)
		case r == 0:
			v = append(v, '\\', '0', '0')
		default:
			v = append(v, r)
		}
	}
	// Leading and trailing blanks (space or CR) are escaped.
	lead := 0
	for lead < len(v) && (v[lead] == ' ' || v[lead] == '\r') {
		lead++
	}
	trail := len(v) - 1
	for trail >= 0 && (v[trail] == ' ' || v[trail] == '\r') {
		trail--
	}
	for i, r := range v {
		if i < lead || i > trail {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// derString decodes the string types Java prints as text (PrintableString,
// T61String, IA5String, GeneralString, BMPString, UTF8String).
func derString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String:
		return string(v.Bytes), true
	case asn1.TagT61String, 27: // T61String, GeneralString: one byte per char
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}
