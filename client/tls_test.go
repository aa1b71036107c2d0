package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// testPKI is a CA with one server and one client certificate.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paddock test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage, serial int64) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue("server", x509.ExtKeyUsageServerAuth, 2)
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	cliDER, cliKey := issue("client", x509.ExtKeyUsageClientAuth, 3)
	p := &testPKI{
		caFile:   write("ca.pem", "CERTIFICATE", caDER),
		certFile: write("server.pem", "CERTIFICATE", srvDER),
		keyFile:  write("server-key.pem", "EC PRIVATE KEY", srvKeyDER),
		pool:     x509.NewCertPool(),
		client:   tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey},
	}
	p.pool.AddCert(ca)
	return p
}

// TestTLS connects over TLS with a client certificate; the server sees
// the certificate's identity (x509 scheme).
func TestTLS(t *testing.T) {
	bin, err := testserver.Binary()
	if err != nil {
		t.Skip(err)
	}
	if out, _ := exec.Command(bin, "server", "--help").CombinedOutput(); !strings.Contains(string(out), "-secure-addr") {
		t.Skip("paddock server has no --secure-addr yet")
	}
	pki := newPKI(t)
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	secure := fmt.Sprintf("127.0.0.1:%d", ports[0])
	testserver.Start(t, testserver.Options{ExtraArgs: []string{
		"--secure-addr", secure, "--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--tls-ca", pki.caFile,
	}})
	ctx := ctxT(t)
	cfg := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
	c := connect(t, secure, WithTLS(cfg))
	base := unique(t)
	if _, _, err := c.Create(ctx, base, []byte("over tls"), ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	ids, err := c.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, id := range ids {
		found = found || id.AuthScheme == "x509"
	}
	if !found {
		t.Fatalf("whoAmI over TLS: %+v, want an x509 id", ids)
	}
	// Without a client certificate the server (clientAuth=need) refuses.
	short, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	if c2, err := Connect(short, []string{secure}, WithTLS(&tls.Config{RootCAs: pki.pool})); err == nil {
		c2.Close()
		t.Fatal("connected without a client certificate")
	}
}
