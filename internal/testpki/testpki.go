// Package testpki makes throw-away certificate authorities and
// certificates for tests: a CA, leaf certificates it signs (for servers,
// clients or both), written as PEM files in the forms the servers read
// (separate certificate and key, or both in one file as ZooKeeper's PEM
// key store), and the matching crypto/tls configurations. Only tests
// import it; nothing here is fit for real keys (short-lived, P-256, no
// revocation).
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority with its files in a temporary directory.
type CA struct {
	// Cert is the CA certificate, Key its private key.
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is Cert in PEM; File is where it is written (ca.crt).
	CertPEM []byte
	File    string
	// Dir holds the CA's and its leaves' files.
	Dir string

	serial atomic.Int64
}

// Leaf is an issued certificate.
type Leaf struct {
	// Cert, Key and Both are PEM files: the certificate, its PKCS #8 key,
	// and both in one file (key first), the PEM key store form
	// --admin-tls-cert and ZooKeeper's ssl.keyStore read.
	Cert, Key, Both string
	// CertPEM and KeyPEM are the files' contents (for a Kubernetes Secret's
	// tls.crt and tls.key).
	CertPEM, KeyPEM []byte
	// Pair is the certificate and key for a tls.Config.
	Pair tls.Certificate
	// X509 is the parsed certificate.
	X509 *x509.Certificate
}

// Options shape an issued certificate.
type Options struct {
	// Subject; default CommonName = the leaf's name.
	Subject pkix.Name
	// DNSNames and IPs the certificate is valid for. Localhost adds
	// "localhost" and 127.0.0.1 (the usual test server).
	DNSNames  []string
	IPs       []net.IP
	Localhost bool
	// Usage: the extended key usages; default server and client auth.
	Usage []x509.ExtKeyUsage
	// NotBefore and NotAfter; default an hour ago and a day ahead.
	NotBefore, NotAfter time.Time
}

// Server is Options for a server certificate for localhost and 127.0.0.1
// (usable as a client certificate too).
var Server = Options{Localhost: true}

// New makes a CA named "Paddock Test CA" in t's temporary directory.
func New(t testing.TB) *CA {
	t.Helper()
	return NewNamed(t, pkix.Name{CommonName: "Paddock Test CA", Organization: []string{"Paddock"}})
}

// NewNamed makes a CA with the given subject.
func NewNamed(t testing.TB, subject pkix.Name) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subject,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Key: key, Dir: t.TempDir(), CertPEM: pemBlock("CERTIFICATE", der)}
	if ca.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	ca.File = filepath.Join(ca.Dir, "ca.crt")
	writeFile(t, ca.File, ca.CertPEM)
	ca.serial.Store(1)
	return ca
}

// Pool is a pool trusting only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a certificate named name (files <name>.crt, <name>.key,
// <name>.pem in ca.Dir).
func (ca *CA) Issue(t testing.TB, name string, o Options) *Leaf {
	t.Helper()
	return issue(t, ca.Dir, name, o, ca.Cert, ca.Key, ca.serial.Add(1))
}

// ClientConfig trusts the CA, verifies the server as serverName, and
// presents leaf (nil: no certificate).
func (ca *CA) ClientConfig(serverName string, leaf *Leaf) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: serverName}
	if leaf != nil {
		c.Certificates = []tls.Certificate{leaf.Pair}
	}
	return c
}

// ServerConfig presents leaf and verifies client certificates against the
// CA with the given policy.
func (ca *CA) ServerConfig(leaf *Leaf, auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.Pair}, ClientCAs: ca.Pool(), ClientAuth: auth}
}

// SelfSigned makes a certificate that is its own CA (files in a temporary
// directory): what a user without a CA would serve.
func SelfSigned(t testing.TB, name string, o Options) *Leaf {
	t.Helper()
	return issue(t, t.TempDir(), name, o, nil, nil, 1)
}

// Pool is a pool trusting the leaf itself (a self-signed certificate).
func (l *Leaf) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(l.X509)
	return p
}

func issue(t testing.TB, dir, name string, o Options, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, serial int64) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      o.Subject,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  o.Usage,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if len(tmpl.Subject.Names) == 0 && tmpl.Subject.CommonName == "" && len(tmpl.Subject.Organization) == 0 {
		tmpl.Subject.CommonName = name
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if len(tmpl.ExtKeyUsage) == 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if o.Localhost {
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1))
	}
	signer := parentKey
	if parent == nil { // self-signed
		parent, signer = tmpl, key
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{
		Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), Both: filepath.Join(dir, name+".pem"),
		CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", kder),
	}
	writeFile(t, l.Cert, l.CertPEM)
	writeFile(t, l.Key, l.KeyPEM)
	writeFile(t, l.Both, append(append([]byte{}, l.KeyPEM...), l.CertPEM...))
	if l.Pair, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	if l.X509, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return l
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
