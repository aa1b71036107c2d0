package controllers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
	"github.com/paddockhq/paddock/server"
)

func listenAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// adminTLSServer is a real one-voter Paddock ensemble member whose admin
// port serves HTTPS with the given certificate, as the operator's pod
// template configures it (PADDOCK_ADMIN_TLS_* from the Secret).
type adminTLSServer struct {
	client, admin string
}

func startAdminTLSServer(t *testing.T, ca *testpki.CA, leaf *testpki.Leaf, clientAuth string, unify bool) *adminTLSServer {
	t.Helper()
	a := &adminTLSServer{client: listenAddr(t), admin: listenAddr(t)}
	cfg := server.Config{
		ServerID: 1, ListenAddr: a.client, DataDir: t.TempDir(), TickTime: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.AdminAddr = a.admin
	cfg.AdminTLSCertFile, cfg.AdminTLSKeyFile, cfg.AdminTLSCAFile = leaf.Cert, leaf.Key, ca.File
	cfg.AdminTLSClientAuth, cfg.AdminPortUnification = clientAuth, unify
	cfg.EnsembleConfig = server.EnsembleConfig{Peers: map[uint64]string{1: listenAddr(t) + ";" + a.client}, ClusterID: "tls",
		ReconfigEnabled: true, RaftTick: 50 * time.Millisecond, ElectionTicks: 10}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return a
}

// routes maps members' host:port to loopback servers, for the operator's
// LiveEnsemble (the DNS names of the pods do not resolve here).
// The reconciler resolves on its own goroutines while a test adds routes.
type routes struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *routes) resolve(hp string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[hp]
}

func (r *routes) add(hp, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[hp] = addr
}

// TestAdminTLS: with spec.tls.admin the members serve HTTPS on the admin
// port from the Secret (env, volume, probes: HTTPS, or HTTP on the
// unified port when client certificates are required), and the operator's
// own calls to it (srvr for the status) go over HTTPS to real Paddock
// servers: trusting the Secret's ca.crt, checking the member's DNS name,
// and presenting the admin client certificate. The backup Job trusts the
// same CA and presents the same certificate.
func TestAdminTLS(t *testing.T) {
	rt := &routes{m: map[string]string{}}
	c := startEnv(t, &controllers.LiveEnsemble{Resolve: rt.resolve})
	ctx := context.Background()
	for _, tc := range []struct {
		ns, clientAuth string
		unify          bool
		probe          corev1.URIScheme
	}{
		// HTTPS only: the operator can only have read srvr over HTTPS.
		{"tls-want", "want", false, corev1.URISchemeHTTPS},
		// Client certificates required: the operator presents its own
		// (a handshake without one fails); kubelet probes the plain side.
		{"tls-need", "need", true, corev1.URISchemeHTTP},
	} {
		t.Run(tc.clientAuth, func(t *testing.T) {
			ns := tc.ns
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				t.Fatal(err)
			}
			ca := testpki.New(t)
			serving := ca.Issue(t, "admin", testpki.Options{DNSNames: []string{"*.zk-hs." + ns + ".svc.cluster.local"}})
			operatorCert := ca.Issue(t, "operator", testpki.Options{})
			for name, data := range map[string]map[string][]byte{
				"zk-admin-tls": {"ca.crt": ca.CertPEM, "tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM},
				"zk-operator":  {"tls.crt": operatorCert.CertPEM, "tls.key": operatorCert.KeyPEM},
			} {
				if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}); err != nil {
					t.Fatal(err)
				}
			}
			// The server runs with the Secret's files and the settings
			// the pod template gives it (checked below).
			srv := startAdminTLSServer(t, ca, serving, tc.clientAuth, tc.unify)
			pc := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: ns}, Spec: v1alpha1.PaddockClusterSpec{
				Replicas: 1,
				TLS: &v1alpha1.TLSSpec{Admin: &v1alpha1.AdminTLS{SecretRef: v1alpha1.SecretRef{SecretName: "zk-admin-tls"},
					ClientAuth: tc.clientAuth, ClientSecretName: "zk-operator", PortUnification: tc.unify}},
			}}
			host := controllers.MemberHost(pc, 1)
			rt.add(fmt.Sprintf("%s:%d", host, controllers.AdminPort), srv.admin)
			rt.add(fmt.Sprintf("%s:%d", host, controllers.ClientPort), srv.client)
			if err := c.Create(ctx, pc); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKeyFromObject(pc)
			var sts appsv1.StatefulSet
			eventually(t, "StatefulSet", func() (bool, string) {
				err := c.Get(ctx, key, &sts)
				return err == nil, fmt.Sprint(err)
			})
			ctr := sts.Spec.Template.Spec.Containers[0]
			env := map[string]string{}
			for _, e := range ctr.Env {
				env[e.Name] = e.Value
			}
			want := map[string]string{
				"PADDOCK_ADMIN_TLS_CERT": controllers.AdminTLSDir + "/tls.crt", "PADDOCK_ADMIN_TLS_KEY": controllers.AdminTLSDir + "/tls.key",
				"PADDOCK_ADMIN_TLS_CA": controllers.AdminTLSDir + "/ca.crt", "PADDOCK_ADMIN_TLS_CLIENT_AUTH": tc.clientAuth,
				"PADDOCK_ADMIN_PORT_UNIFICATION": fmt.Sprint(tc.unify),
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("env %s = %q, want %q", k, env[k], v)
				}
			}
			if !slices.ContainsFunc(sts.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
				return v.Secret != nil && v.Secret.SecretName == "zk-admin-tls"
			}) {
				t.Errorf("no volume from the admin Secret: %+v", sts.Spec.Template.Spec.Volumes)
			}
			for name, p := range map[string]*corev1.Probe{"startup": ctr.StartupProbe, "liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
				if p.HTTPGet.Scheme != tc.probe {
					t.Errorf("%s probe scheme %s, want %s", name, p.HTTPGet.Scheme, tc.probe)
				}
			}

			// The pod runs (envtest has no kubelet): the operator asks the
			// real server over HTTPS and reports what it says.
			mustGet(t, c, ns, "zk", pc)
			setStsStatus(t, c, &sts, "rev1")
			makePods(t, c, pc, "rev1", map[uint64]bool{1: true})
			eventually(t, "member 1 reported from srvr over HTTPS", func() (bool, string) {
				c.Get(ctx, key, pc)
				return len(pc.Status.Members) == 1 && pc.Status.Members[0].Role == "leader" && pc.Status.Leader == "zk-1" &&
					pc.Status.Members[0].Zxid != "", fmt.Sprintf("%+v", pc.Status)
			})

			// The backup Job reaches the leader's admin port the same way.
			b := &v1alpha1.PaddockBackup{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: ns}, Spec: v1alpha1.PaddockBackupSpec{ClusterName: "zk"}}
			if err := c.Create(ctx, b); err != nil {
				t.Fatal(err)
			}
			var job batchv1.Job
			eventually(t, "backup Job", func() (bool, string) {
				err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "b-backup"}, &job)
				return err == nil, fmt.Sprint(err)
			})
			jc := job.Spec.Template.Spec.Containers[0]
			args := strings.Join(jc.Args, " ")
			for _, s := range []string{"--admin " + host + ":8080", "--admin-tls-ca " + controllers.AdminTLSDir + "/ca.crt",
				"--admin-tls-cert " + controllers.AdminClientTLSDir + "/tls.crt", "--admin-tls-key " + controllers.AdminClientTLSDir + "/tls.key"} {
				if !strings.Contains(args, s) {
					t.Errorf("backup Job args %q lack %q", args, s)
				}
			}
			secrets := map[string]string{}
			for _, v := range job.Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					secrets[v.Name] = v.Secret.SecretName
				}
			}
			if secrets["admin-tls"] != "zk-admin-tls" || secrets["admin-client-tls"] != "zk-operator" {
				t.Errorf("backup Job secret volumes %v", secrets)
			}
		})
	}
}
