package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/paddockhq/paddock/operator"
	"github.com/paddockhq/paddock/operator/backup"
	"github.com/paddockhq/paddock/server"
)

// runOperator is `paddock operator`: the Kubernetes operator, plus the
// two helpers its Jobs run in the same image:
//
//	paddock operator [flags]            run the controllers
//	paddock operator backup [flags]     take a snapshot (PaddockBackup Job)
//	paddock operator restore [flags]    seed a data directory (restore Job)
//	paddock operator prune --file F     delete a snapshot file (scheduled backups' pruning Job)
func runOperator(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return runOperatorBackup(args[1:], stdout, stderr)
		case "restore":
			return runOperatorRestore(args[1:], stdout, stderr)
		case "prune":
			return runOperatorPrune(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("paddock operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metrics := fs.String("metrics-addr", ":8080", `operator metrics address ("0" disables)`)
	health := fs.String("health-addr", ":8081", "health probe address (/healthz, /readyz)")
	elect := fs.Bool("leader-elect", true, "elect one active operator among replicas (Lease paddock-operator.paddock.dev)")
	electNS := fs.String("leader-election-namespace", "", "namespace of the election Lease (default: the operator's own)")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to watch (default: all)")
	image := fs.String("image", envOr("PADDOCK_IMAGE", "ghcr.io/paddockhq/paddock:"+server.Version), "default member image (PADDOCK_IMAGE)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "paddock operator: bad --log-level:", err)
		return 2
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logr.NewContext(ctx, logger)
	o := operator.Options{
		MetricsAddr: *metrics, HealthAddr: *health,
		LeaderElection: *elect, LeaderElectionNamespace: *electNS,
		Namespaces: splitList(*namespaces), Image: *image,
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = nil
	}
	if err := operator.Run(ctx, o); err != nil {
		fmt.Fprintln(stderr, "paddock operator:", err)
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runOperatorBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock operator backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "", "admin endpoint (host:port) of the member to snapshot, normally the leader")
	out := fs.String("out", "", "file to write (JSON lines, as paddock export); <out>.zxid gets the zxid")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	tlsCA := fs.String("admin-tls-ca", "", "PEM CA to verify an HTTPS admin port with (HTTPS when set)")
	tlsCert := fs.String("admin-tls-cert", "", "PEM client certificate to present to the admin port")
	tlsKey := fs.String("admin-tls-key", "", "PEM key of --admin-tls-cert")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	pw := os.Getenv("PADDOCK_SUPER_PASSWORD")
	if *admin == "" || *out == "" || pw == "" {
		fmt.Fprintln(stderr, "paddock operator backup: --admin, --out and $PADDOCK_SUPER_PASSWORD are required")
		return 2
	}
	var tlsConf *tls.Config
	if *tlsCA != "" {
		pem, err := os.ReadFile(*tlsCA)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "paddock operator backup: --admin-tls-ca %s: no PEM certificate (%v)\n", *tlsCA, err)
			return 2
		}
		host, _, _ := net.SplitHostPort(*admin)
		tlsConf = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
		if *tlsCert != "" {
			pair, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
			if err != nil {
				fmt.Fprintln(stderr, "paddock operator backup: --admin-tls-cert:", err)
				return 2
			}
			tlsConf.Certificates = []tls.Certificate{pair}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := backup.Take(ctx, *admin, pw, *out, tlsConf)
	if err != nil {
		fmt.Fprintln(stderr, "paddock operator backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "snapshot at zxid %s: %d znodes, %d bytes, written to %s\n", res.Zxid, res.Nodes, res.Bytes, *out)
	return 0
}

func runOperatorRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock operator restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "snapshot file written by `paddock operator backup` (or `paddock export`)")
	dataDir := fs.String("data-dir", "", "empty data directory to seed")
	voters := fs.String("voters", "1", "server ids of the new ensemble's voters, comma-separated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var ids []uint64
	for _, s := range strings.Split(*voters, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil || id == 0 || id > 254 {
			fmt.Fprintf(stderr, "paddock operator restore: bad --voters entry %q\n", s)
			return 2
		}
		ids = append(ids, id)
	}
	if *from == "" || *dataDir == "" {
		fmt.Fprintln(stderr, "paddock operator restore: --from and --data-dir are required")
		return 2
	}
	res, err := backup.Seed(*from, *dataDir, ids)
	if errors.Is(err, backup.ErrAlreadySeeded) {
		fmt.Fprintln(stdout, "paddock operator restore:", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "paddock operator restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "seeded %s with %d znodes at zxid %s (voters %s)\n", *dataDir, res.Nodes, res.Zxid, *voters)
	return 0
}

func runOperatorPrune(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock operator prune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "snapshot file to delete (with its .zxid and any .partial)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "paddock operator prune: --file is required")
		return 2
	}
	if err := backup.Remove(*file); err != nil {
		fmt.Fprintln(stderr, "paddock operator prune:", err)
		return 1
	}
	fmt.Fprintln(stdout, "deleted", *file)
	return 0
}
