package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

func TestImage(t *testing.T) {
	DefaultImage = "ghcr.io/paddockhq/paddock:0.1.0"
	for _, tc := range []struct{ image, version, want string }{
		{"", "", "ghcr.io/paddockhq/paddock:0.1.0"},
		{"", "0.2.0", "ghcr.io/paddockhq/paddock:0.2.0"},
		{"reg:5000/p", "1.0", "reg:5000/p:1.0"},
		{"reg:5000/p:x", "1.0", "reg:5000/p:x"},
		{"reg/p@sha256:abc", "1.0", "reg/p@sha256:abc"},
	} {
		c := &v1alpha1.PaddockCluster{Spec: v1alpha1.PaddockClusterSpec{Image: tc.image, Version: tc.version}}
		if got := Image(c); got != tc.want {
			t.Errorf("Image(%q, %q) = %q, want %q", tc.image, tc.version, got, tc.want)
		}
	}
}

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		zooCfg map[string]string
		bad    bool
	}{
		{map[string]string{"tickTime": "1000", "maxClientCnxns": "10"}, false},
		{map[string]string{"dataDir": "/x"}, true},
		{map[string]string{"server.4": "h:1:2"}, true},
		{map[string]string{"ssl.keyStore.location": "/k"}, true},
		{map[string]string{"reconfigEnabled": "false"}, true},
		{map[string]string{"x": "a\nserver.9=h:1:2"}, true},
	} {
		c := &v1alpha1.PaddockCluster{Spec: v1alpha1.PaddockClusterSpec{Replicas: 3, ZooCfg: tc.zooCfg}}
		if got := ValidateSpec(c) != ""; got != tc.bad {
			t.Errorf("%v: invalid=%v, want %v (%s)", tc.zooCfg, got, tc.bad, ValidateSpec(c))
		}
	}
}

func TestParseConfig(t *testing.T) {
	m, err := ParseConfig("server.1=a:2888:3888:participant;a:2181\nserver.2=b:2888:3888:participant;b:2181\nserver.128=c:2888:3888:observer;c:2181\nversion=10000000a\n")
	if err != nil || !m.Voters[1] || !m.Voters[2] || !m.Observers[128] || len(m.Voters) != 2 || m.Version != "10000000a" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := ParseConfig(""); err == nil {
		t.Error("empty config accepted")
	}
}

func TestRefusal(t *testing.T) {
	msg := `time=2026-01-01T00:00:00Z level=INFO msg="starting"
time=2026-01-01T00:00:01Z level=ERROR msg="cannot start" err="server: refusing to start: data directory /data belongs to server 3 of cluster \"a\""`
	if got := refusal(msg); !strings.HasPrefix(got, "refusing to start: data directory /data belongs to server 3") {
		t.Errorf("refusal = %q", got)
	}
	if refusal("panic: boom") != "" {
		t.Error("a crash read as a refusal")
	}
}

func TestNames(t *testing.T) {
	c := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: "ns"}}
	if PodName(c, 3) != "zk-3" || PodName(c, 128) != "zk-observer-128" || PVCName(c, 2) != "data-zk-2" {
		t.Error(PodName(c, 3), PodName(c, 128), PVCName(c, 2))
	}
	if MemberSpec(c, 2) != "zk-2.zk-hs.ns.svc.cluster.local:2888:3888:participant;zk-2.zk-hs.ns.svc.cluster.local:2181" {
		t.Error(MemberSpec(c, 2))
	}
	for name, want := range map[string]uint64{"data-zk-2": 2, "data-zk-observer-130": 130, "data-zk-observer-2": 0, "data-zk-x": 0, "data-zkk-1": 0, "data-zk-130": 0} {
		if got, _ := pvcMemberID(c, name); got != want {
			t.Errorf("pvcMemberID(%s) = %d, want %d", name, got, want)
		}
	}
	if SuperDigest("secret") != "super:lK75jTNcA+U9vtVEw5vB51mj/w4=" {
		t.Error(SuperDigest("secret"))
	}
}

// TestTemplateSurvivesDefaulting: the operator updates a StatefulSet when
// its desired pod template is not a DeepDerivative of the stored one.
// DeepDerivative ignores unset pointers, strings, slices and maps but
// compares numbers, so every number the API server defaults must be
// given at its default value, or the operator rewrites the StatefulSet
// (and says it is rolling the members) on every pass. Here the numeric
// defaults of the pod template are applied as kube-apiserver does.
func TestTemplateSurvivesDefaulting(t *testing.T) {
	c := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: "ns"}, Spec: v1alpha1.PaddockClusterSpec{Replicas: 3}}
	desired := StatefulSet(c, false, 3, "h").Spec.Template
	stored := *desired.DeepCopy()
	for i := range stored.Spec.Containers {
		ctr := &stored.Spec.Containers[i]
		for _, p := range []*corev1.Probe{ctr.StartupProbe, ctr.LivenessProbe, ctr.ReadinessProbe} {
			if p == nil {
				continue
			}
			// k8s.io/kubernetes/pkg/apis/core/v1.SetDefaults_Probe
			if p.TimeoutSeconds == 0 {
				p.TimeoutSeconds = 1
			}
			if p.PeriodSeconds == 0 {
				p.PeriodSeconds = 10
			}
			if p.SuccessThreshold == 0 {
				p.SuccessThreshold = 1
			}
			if p.FailureThreshold == 0 {
				p.FailureThreshold = 3
			}
		}
	}
	if !equality.Semantic.DeepDerivative(desired, stored) {
		t.Fatal("the desired pod template differs from itself after the API server's defaulting: the operator would update the StatefulSet on every pass")
	}
}
