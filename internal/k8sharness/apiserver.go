package k8sharness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// APIServerOptions adjusts StartAPIServer. The zero value (or nil) is fine.
type APIServerOptions struct {
	// Flags overrides or adds kube-apiserver flags (name without dashes ->
	// value; an empty value removes a default flag), e.g.
	// {"feature-gates": "X=true", "v": "4"}.
	Flags map[string]string
	// EtcdPrefix is --etcd-prefix (default "/registry"). Distinct prefixes
	// let several apiservers share one etcd.
	EtcdPrefix string
	// ServiceClusterIPRange is --service-cluster-ip-range (default
	// 10.0.0.0/24). Only an allocation range: nothing routes it here.
	ServiceClusterIPRange string
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// APIServer is a running kube-apiserver on https://127.0.0.1:<Port>.
type APIServer struct {
	*Process
	URL  string // https://127.0.0.1:<Port>
	Port int
	Dir  string // working directory: certs, keys, kubeconfig, logs

	// CAFile holds the CA of the self-signed serving certificate (PEM);
	// CAData is its content.
	CAFile string
	CAData []byte
	// Token is the bearer token of user "admin" in group system:masters.
	Token string
	// Kubeconfig is a kubeconfig file for the admin user.
	Kubeconfig string
	// ServiceAccountKeyFile is the private key that signs service-account
	// tokens (ECDSA P-256, PEM); the controller-manager needs it.
	ServiceAccountKeyFile string
	// StartupTime is how long it took from exec to /readyz ok.
	StartupTime time.Duration
}

// Admin identity in the token file.
const (
	AdminUser  = "admin"
	AdminGroup = "system:masters"
)

// StartAPIServer starts kube-apiserver on loopback against etcdServers (a
// comma-separated list of client URLs: a reference etcd from StartEtcd, or
// Paddock's etcd API), with RBAC, token authentication (an admin token in
// system:masters), generated service-account keys and a self-signed serving
// certificate, and waits until /readyz is ok.
func StartAPIServer(t testing.TB, etcdServers string, opts *APIServerOptions) *APIServer {
	t.Helper()
	if opts == nil {
		opts = &APIServerOptions{}
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	prefix := opts.EtcdPrefix
	if prefix == "" {
		prefix = "/registry"
	}
	svcRange := opts.ServiceClusterIPRange
	if svcRange == "" {
		svcRange = "10.0.0.0/24"
	}

	dir := t.TempDir()
	a := &APIServer{
		Dir:                   dir,
		CAFile:                filepath.Join(dir, "ca.crt"),
		Kubeconfig:            filepath.Join(dir, "admin.kubeconfig"),
		ServiceAccountKeyFile: filepath.Join(dir, "sa.key"),
	}
	certDir := filepath.Join(dir, "certs")
	tokenFile := filepath.Join(dir, "tokens.csv")

	if err := writeECKey(a.ServiceAccountKeyFile); err != nil {
		t.Fatalf("kube-apiserver: service-account key: %v", err)
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		t.Fatal(err)
	}
	a.Token = hex.EncodeToString(tok)
	// token,user,uid,"group1,group2"
	line := fmt.Sprintf("%s,%s,%s,\"%s\"\n", a.Token, AdminUser, AdminUser, AdminGroup)
	if err := os.WriteFile(tokenFile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	startWithRetry(t, "kube-apiserver", func() error {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		port := ports[0]
		_ = os.RemoveAll(certDir) // the serving cert is made for the port's address set; start clean
		args := flagArgs(map[string]string{
			"etcd-servers":                     etcdServers,
			"etcd-prefix":                      prefix,
			"bind-address":                     "127.0.0.1",
			"secure-port":                      strconv.Itoa(port),
			"advertise-address":                "127.0.0.1",
			"endpoint-reconciler-type":         "none",
			"cert-dir":                         certDir,
			"service-account-key-file":         a.ServiceAccountKeyFile,
			"service-account-signing-key-file": a.ServiceAccountKeyFile,
			"service-account-issuer":           "https://kubernetes.default.svc.cluster.local",
			"service-cluster-ip-range":         svcRange,
			"token-auth-file":                  tokenFile,
			"authorization-mode":               "RBAC",
			"allow-privileged":                 "true",
			"profiling":                        "false",
		}, opts.Flags)
		start := time.Now()
		p, err := startProcess(t, APIServerBin, dir, args)
		if err != nil {
			return err
		}
		url := fmt.Sprintf("https://127.0.0.1:%d", port)
		var client *http.Client
		err = waitReady(p, timeout, func(ctx context.Context) error {
			if client == nil {
				ca, err := readServingCA(filepath.Join(certDir, "apiserver.crt"))
				if err != nil {
					return err
				}
				if client, err = caClient(ca); err != nil {
					return err
				}
				a.CAData = ca
			}
			return httpGetOK(ctx, client, url+"/readyz", a.Token, "ok")
		})
		if err != nil {
			p.Stop()
			return err
		}
		a.Process, a.URL, a.Port, a.StartupTime = p, url, port, time.Since(start)
		return nil
	})
	if err := os.WriteFile(a.CAFile, a.CAData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfig(a.Kubeconfig, a.URL, a.CAData, a.Token); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver ready at %s in %v (pid %d, etcd %s)", a.URL, a.StartupTime.Round(time.Millisecond), a.PID(), etcdServers)
	return a
}

// readServingCA returns the CA of the apiserver's self-signed serving
// certificate: the second PEM block of apiserver.crt (the first is the
// serving certificate), or the only block.
func readServingCA(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("serving certificate not written yet: %w", err)
	}
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			blocks = append(blocks, b)
		}
	}
	switch len(blocks) {
	case 0:
		return nil, errors.New("no certificate in " + path)
	case 1:
		return pem.EncodeToMemory(blocks[0]), nil
	default:
		return pem.EncodeToMemory(blocks[1]), nil
	}
}

func writeECKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteKubeconfig writes a kubeconfig for server (https URL) that trusts
// caPEM and authenticates with a bearer token.
func WriteKubeconfig(path, server string, caPEM []byte, token string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: paddock-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: paddock-test
  context:
    cluster: paddock-test
    user: admin
    namespace: default
current-context: paddock-test
`, server, base64.StdEncoding.EncodeToString(caPEM), token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// Kubectl runs kubectl against this apiserver as admin and returns its
// stdout; it fails the test on error. See the package-level Kubectl.
func (a *APIServer) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	return Kubectl(t, a.Kubeconfig, args...)
}

// KubectlE is Kubectl returning the error (with kubectl's stderr) instead
// of failing the test.
func (a *APIServer) KubectlE(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return KubectlE(t, a.Kubeconfig, "", args...)
}

// Apply pipes manifest (YAML or JSON) into `kubectl apply -f -`.
func (a *APIServer) Apply(t testing.TB, manifest string) string {
	t.Helper()
	out, err := KubectlE(t, a.Kubeconfig, manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
