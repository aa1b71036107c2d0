// Package operator runs the Paddock Kubernetes operator: the
// PaddockCluster, PaddockBackup and backup-schedule controllers in a controller-runtime
// manager (leader election, metrics, health probes). `paddock operator`
// (cmd/paddock/operator.go) calls Run.
package operator

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
)

// Options configures Run.
type Options struct {
	// Config reaches the API server; nil = in-cluster or $KUBECONFIG.
	Config *rest.Config
	// MetricsAddr serves the operator's Prometheus metrics ("0" = off).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz.
	HealthAddr string
	// LeaderElection on (one active operator among replicas).
	LeaderElection          bool
	LeaderElectionNamespace string
	// Namespaces to watch; empty = all.
	Namespaces []string
	// Image is the default member image.
	Image string
	// Ensemble overrides how servers are reached (tests).
	Ensemble controllers.Ensemble
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
	// Clock drives the backup schedule and the backups' timestamps; nil =
	// the real clock. Tests step a fake one instead of waiting.
	Clock clock.WithTicker
}

// Scheme holds the types the operator uses.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// NewManager builds the manager with both controllers registered.
func NewManager(o Options) (ctrl.Manager, error) {
	cfg := o.Config
	if cfg == nil {
		var err error
		if cfg, err = ctrl.GetConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes config: %w", err)
		}
	}
	if o.Image != "" {
		controllers.DefaultImage = o.Image
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = ":8080"
	}
	scheme := Scheme()
	mo := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "paddock-operator.paddock.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// A new leader waits out the old one's lease before acting: no two
		// operators ever drive the same ensemble.
		LeaderElectionReleaseOnCancel: true,
	}
	if o.SkipNameValidation {
		mo.Controller = config.Controller{SkipNameValidation: &o.SkipNameValidation}
	}
	if len(o.Namespaces) > 0 {
		mo.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{}}
		for _, ns := range o.Namespaces {
			mo.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return nil, err
	}
	ens := o.Ensemble
	if ens == nil {
		ens = &controllers.LiveEnsemble{}
	}
	if err := (&controllers.ClusterReconciler{
		Client: mgr.GetClient(), Scheme: scheme, Recorder: mgr.GetEventRecorder("paddock-operator"), Ensemble: ens,
	}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if err := (&controllers.BackupReconciler{
		Client: mgr.GetClient(), Scheme: scheme, Recorder: mgr.GetEventRecorder("paddock-operator"), Now: clk.Now,
	}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&controllers.ScheduleReconciler{
		Client: mgr.GetClient(), Scheme: scheme, Recorder: mgr.GetEventRecorder("paddock-operator"), Clock: clk,
	}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if o.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, o Options) error {
	mgr, err := NewManager(o)
	if err != nil {
		return err
	}
	log.FromContext(ctx).Info("starting the Paddock operator", "leaderElection", o.LeaderElection, "namespaces", o.Namespaces)
	return mgr.Start(ctx)
}
