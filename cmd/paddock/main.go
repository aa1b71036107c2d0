// Command paddock is the one Paddock binary: a ZooKeeper-compatible server
// replicated by Raft.
//
// Usage:
//
//	paddock server [flags] [zoo.cfg]   run a server (standalone by default)
//	paddock import [flags]   import an Apache ZooKeeper data directory
//	paddock export [flags]   write the tree as JSON lines
//	paddock cli [flags] [cmd]  ZooKeeper shell (zkCli's commands)
//	paddock bench [flags]    load-test a ZooKeeper-protocol server
//	paddock operator [flags] run the Kubernetes operator
//	paddock version          print the version
//
// Every server flag can also be given as an environment variable named
// PADDOCK_ plus the flag name in upper case with dashes as underscores
// (--data-dir → PADDOCK_DATA_DIR); a flag on the command line wins. A
// ZooKeeper zoo.cfg (--config, or the one argument) gives the settings no
// flag or variable gives; --print-config shows the result.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/server"
	"github.com/paddockhq/paddock/statemachine"
)

// defaultWhitelist is the four-letter words `paddock server` enables by
// default. ZooKeeper's own default is only srvr; Paddock adds the read-only
// health and monitoring words that Kubernetes probes and dashboards use
// (ruok, stat, mntr, conf, isro), and none that dump per-session data.
const defaultWhitelist = "ruok,srvr,stat,mntr,conf,isro"

func main() {
	// A coordination service holds its whole tree in memory; trading a
	// little GC CPU for a heap that stays within 1.5x of the live data
	// halves the resident set against Go's default (measured in
	// docs/PERFORMANCE.md); `paddock server` lowers it further as the state
	// grows (memgov.go). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "server":
		return runServer(args[1:], stdout, stderr)
	case "import":
		return runImport(args[1:], stdout, stderr)
	case "export":
		return runExport(args[1:], stdout, stderr)
	case "cli":
		return runCLI(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "operator":
		return runOperator(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "paddock %s (ZooKeeper %s protocol)\n", server.Version, server.ZooKeeperVersion)
		return 0
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "paddock: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: paddock <command> [flags]

Commands:
  server    run a ZooKeeper-compatible server
  import    turn an Apache ZooKeeper data directory into a Paddock one
  export    write the tree as JSON lines (offline or from a live server)
  cli       ZooKeeper shell with zkCli's commands (interactive or one command)
  bench     load-test a ZooKeeper-protocol server (Paddock or Apache)
  operator  run the Kubernetes operator (PaddockCluster, PaddockBackup)
  version   print the version

Run 'paddock server -h' for the server's flags.
`)
}

// serverFlags holds the parsed `paddock server` flags.
type serverFlags struct {
	addr, dataDir, whitelist, superDigest, adminAddr, logLevel string
	terminationLog                                             string
	tickTime, minTimeout, maxTimeout                           int
	maxBuffer                                                  int
	serverID, snapshotEvery                                    uint64
	extendedTypes                                              bool
	consoleWrites                                              bool
}

func runServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serverFlags
	fs.StringVar(&f.addr, "addr", ":2181", "client listen address")
	fs.StringVar(&f.dataDir, "data-dir", "./paddock-data", "data directory (log and snapshots)")
	fs.IntVar(&f.tickTime, "tick-time", 2000, "tick time in ms (unit of session timeouts)")
	fs.IntVar(&f.minTimeout, "min-session-timeout", 0, "minimum session timeout in ms (default 2 ticks)")
	fs.IntVar(&f.maxTimeout, "max-session-timeout", 0, "maximum session timeout in ms (default 20 ticks)")
	fs.IntVar(&f.maxBuffer, "max-buffer", 0xfffff, "largest request frame accepted (jute.maxbuffer)")
	fs.StringVar(&f.whitelist, "4lw-whitelist", defaultWhitelist, `enabled four-letter words, comma-separated; "*" = all`)
	fs.StringVar(&f.superDigest, "super-digest", "", "super user digest, super:<base64 sha1> (as DigestAuthenticationProvider.superDigest)")
	fs.Uint64Var(&f.serverID, "server-id", 1, "server id (1..254)")
	fs.Uint64Var(&f.snapshotEvery, "snapshot-every", 0, "take a snapshot every N applied entries (0 = default)")
	fs.BoolVar(&f.extendedTypes, "extended-types", true, "enable TTL nodes (zookeeper.extendedTypesEnabled); on by default in Paddock")
	fs.StringVar(&f.adminAddr, "admin-addr", "", `admin HTTP address (/commands, /metrics, /readyz, /livez); "off" disables; default: none, or the zoo.cfg's admin.* (0.0.0.0:8080)`)
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.terminationLog, "termination-message-path", "/dev/termination-log",
		"file that receives why the server refuses to start or to take part (written only if it exists: Kubernetes' terminationMessagePath); empty: none")
	fs.BoolVar(&f.consoleWrites, "console-writes", false, "let the web console on the admin server (/console/) create, edit and delete nodes; default read-only")
	secFlags := addSecurityFlags(fs)
	opsF := addOpsFlags(fs)
	ensF := addEnsembleFlags(fs)
	etcdF := addEtcdFlags(fs) // etcd.go
	if err := applyEnv(fs); err != nil {
		fmt.Fprintln(stderr, "paddock:", err)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := opsF.takeArgs(fs.Args()); err != nil {
		fmt.Fprintln(stderr, "paddock server:", err)
		return 2
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintln(stderr, "paddock: bad --log-level:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := server.Config{
		ServerID:            f.serverID,
		ListenAddr:          f.addr,
		DataDir:             f.dataDir,
		TickTime:            time.Duration(f.tickTime) * time.Millisecond,
		MinSessionTimeout:   time.Duration(f.minTimeout) * time.Millisecond,
		MaxSessionTimeout:   time.Duration(f.maxTimeout) * time.Millisecond,
		MaxBuffer:           f.maxBuffer,
		FourLetterWhitelist: splitList(f.whitelist),
		SuperDigest:         f.superDigest,
		SnapshotEvery:       f.snapshotEvery,
		ExtendedTypes:       f.extendedTypes,
		Logger:              logger,
		SecurityConfig:      secFlags.config(),
	}
	cfg.TerminationMessagePath = f.terminationLog
	// The zoo.cfg (--config or the argument) fills what no flag set
	// (serverconfig.go).
	cfg.AdminAddr = f.adminAddr
	cfg.ConsoleWrites = f.consoleWrites
	if err := ensF.apply(&cfg); err != nil {
		fmt.Fprintln(stderr, "paddock:", err)
		return 2
	}
	if err := opsF.apply(fs, &cfg, logger); err != nil {
		fmt.Fprintln(stderr, "paddock:", err)
		return 2
	}
	if opsF.printConfig {
		if err := printEffectiveConfig(stdout, cfg); err != nil {
			fmt.Fprintln(stderr, "paddock:", err)
			return 2
		}
		return 0
	}
	srv, err := server.New(cfg)
	if err != nil {
		logger.Error("cannot start", "err", err)
		server.WriteTerminationMessage(cfg.TerminationMessagePath, err.Error())
		return 1
	}
	fmt.Fprintf(stdout, "paddock %s listening on %s, data in %s (%s)\n", server.Version, srv.Addr(), cfg.DataDir, srv.Mode())
	if a := srv.SecureAddr(); a != nil {
		fmt.Fprintf(stdout, "paddock TLS client port listening on %s\n", a)
	}

	stopEtcd, err := etcdF.start(srv, logger, stdout)
	if err != nil {
		logger.Error("cannot start the etcd API", "err", err)
		srv.Close()
		return 1
	}
	defer stopEtcd()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go governMemory(ctx, 2*time.Second, func() (rev int64) {
		srv.ReadState(func(st *statemachine.State) { rev = st.Etcd().CompactRev() })
		return rev
	})
	err = srv.Serve(ctx)
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		logger.Error("server stopped", "err", err)
		return 1
	}
	logger.Info("server stopped")
	return 0
}

// applyEnv sets every flag that has a PADDOCK_<NAME> environment variable
// (before the command line is parsed, so flags win).
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		name := "PADDOCK_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if e := fs.Set(fl.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}
