package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/config"
	"github.com/paddockhq/paddock/server"
)

// opsFlags are the `paddock server` flags of the configuration file and
// the operations surface (admin server, connection limits, quotas).
//
// Precedence, lowest first: built-in defaults, the zoo.cfg, PADDOCK_*
// environment variables, command-line flags.
//
// Without a zoo.cfg the defaults are Paddock's: client port :2181, data
// in ./paddock-data, TTL nodes on, the four-letter words of
// defaultWhitelist, no connection limit per IP, and no admin server unless
// --admin-addr is given. With a zoo.cfg, every key it leaves out takes
// ZooKeeper's default (maxClientCnxns=60, 4lw.commands.whitelist=srvr, the
// admin server on 0.0.0.0:8080), except extendedTypesEnabled, which
// Paddock turns on unless the file says false.
type opsFlags struct {
	configFile        string
	printConfig       bool
	maxClientCnxns    int
	maxCnxns          int
	globalOutstanding int
	enforceQuota      bool
	skipACL           bool
}

func addOpsFlags(fs *flag.FlagSet) *opsFlags {
	o := &opsFlags{}
	fs.StringVar(&o.configFile, "config", "", "ZooKeeper configuration file (zoo.cfg); flags and PADDOCK_* variables override it")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective configuration as key=value lines and exit")
	fs.IntVar(&o.maxClientCnxns, "max-client-cnxns", 0, "connections allowed per client IP, 0 = unlimited (maxClientCnxns)")
	fs.IntVar(&o.maxCnxns, "max-cnxns", 0, "connections allowed in total, 0 = unlimited (maxCnxns)")
	fs.IntVar(&o.globalOutstanding, "global-outstanding-limit", server.DefaultGlobalOutstandingLimit, "requests in progress before the server stops reading from clients (globalOutstandingLimit)")
	fs.BoolVar(&o.enforceQuota, "enforce-quota", false, "refuse writes over a quota's hard limit with QuotaExceeded (zookeeper.enforceQuota)")
	fs.BoolVar(&o.skipACL, "skip-acl", false, "disable all ACL checks (zookeeper.skipACL=yes); unsafe")
	return o
}

// takeArgs accepts the config file as the one positional argument, as
// zkServer.sh passes it (`paddock server zoo.cfg`).
func (o *opsFlags) takeArgs(args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case len(args) == 1 && o.configFile == "":
		o.configFile = args[0]
		return nil
	}
	return fmt.Errorf("unexpected arguments %q", args)
}

// apply completes cfg: the ops flags, then, for every setting no flag or
// environment variable gave, the zoo.cfg's value. It logs each key of the
// file that Paddock does not honour, once, by name.
func (o *opsFlags) apply(fs *flag.FlagSet, cfg *server.Config, logger *slog.Logger) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.MaxClientCnxns = o.maxClientCnxns
	cfg.MaxCnxns = o.maxCnxns
	cfg.GlobalOutstandingLimit = o.globalOutstanding
	if cfg.GlobalOutstandingLimit == 0 {
		cfg.GlobalOutstandingLimit = -1 // 0 on the command line: no limit
	}
	cfg.EnforceQuota = o.enforceQuota
	cfg.SkipACL = o.skipACL
	if cfg.AdminAddr == "off" || cfg.AdminAddr == "none" {
		cfg.AdminAddr = ""
	}
	if o.configFile == "" {
		return nil
	}
	zc, err := config.Load(o.configFile)
	if err != nil {
		return err
	}
	text, _ := os.ReadFile(o.configFile)
	cfg.InitialConfig = string(text)
	cfg.SystemProperties = systemProperties(zc)
	for _, n := range zc.Ignored() {
		logger.Warn("zoo.cfg key not honoured", "key", n.Key, "line", n.Line, "status", n.Status.String(), "reason", n.Reason)
	}
	if !zc.StandaloneEnabled && len(zc.Servers) == 0 {
		logger.Info("standaloneEnabled=false: Paddock always runs the replicated log, standalone is a one-member group")
	}

	use := func(flagName string) bool { return !set[flagName] }
	if use("addr") {
		addr := zc.ClientAddr()
		if addr == "" {
			return fmt.Errorf("%s: clientPort is not set", o.configFile)
		}
		cfg.ListenAddr = addr
	}
	if use("data-dir") {
		cfg.DataDir = zc.DataDir
		cfg.DataLogDir = zc.DataLogDir
	}
	if use("tick-time") {
		cfg.TickTime = zc.TickTime
	}
	if use("min-session-timeout") {
		cfg.MinSessionTimeout = zc.MinSessionTimeout
	}
	if use("max-session-timeout") {
		cfg.MaxSessionTimeout = zc.MaxSessionTimeout
	}
	if use("max-buffer") {
		cfg.MaxBuffer = zc.JuteMaxBuffer
	}
	if use("4lw-whitelist") {
		cfg.FourLetterWhitelist = zc.FourLetterWhitelist
		if cfg.FourLetterWhitelist == nil {
			cfg.FourLetterWhitelist = server.DefaultFourLetterWhitelist
		}
	}
	if use("super-digest") && zc.SuperDigest != "" {
		cfg.SuperDigest = zc.SuperDigest
	}
	if use("server-id") && zc.MyID != 0 {
		cfg.ServerID = zc.MyID
	}
	ensembleFromZooCfg(zc, cfg, use)
	if use("snapshot-every") && zc.IsSet("snapCount") {
		cfg.SnapshotEvery = uint64(zc.SnapCount)
	}
	if use("extended-types") {
		cfg.ExtendedTypes = zc.ExtendedTypes
	}
	if use("admin-addr") {
		cfg.AdminAddr = zc.AdminAddr()
	}
	if use("max-client-cnxns") {
		cfg.MaxClientCnxns = zc.MaxClientCnxns
	}
	if use("max-cnxns") {
		cfg.MaxCnxns = zc.MaxCnxns
	}
	if use("global-outstanding-limit") {
		cfg.GlobalOutstandingLimit = zc.GlobalOutstandingLimit
		if cfg.GlobalOutstandingLimit <= 0 {
			cfg.GlobalOutstandingLimit = -1
		}
	}
	if use("enforce-quota") {
		cfg.EnforceQuota = zc.EnforceQuota
	}
	if use("skip-acl") {
		cfg.SkipACL = zc.SkipACL
	}
	cfg.ReconfigEnabled = zc.ReconfigEnabled
	cfg.ReadOnlyMode = zc.ReadOnlyMode

	// Client TLS and authentication (server/security.go).
	if use("secure-addr") && zc.SecureClientPort != 0 {
		host := zc.SecureClientPortAddress
		if host == "0.0.0.0" {
			host = ""
		}
		cfg.SecureListenAddr = net.JoinHostPort(host, strconv.Itoa(zc.SecureClientPort))
	}
	if use("tls-cert") && zc.TLS.CertFile != "" {
		cfg.TLSCertFile = zc.TLS.CertFile
	}
	if use("tls-key") && zc.TLS.KeyFile != "" {
		cfg.TLSKeyFile = zc.TLS.KeyFile
	}
	if use("tls-ca") && zc.TLS.CAFile != "" {
		cfg.TLSCAFile = zc.TLS.CAFile
	}
	if use("tls-client-auth") && zc.TLS.ClientAuth != "" {
		cfg.TLSClientAuth = zc.TLS.ClientAuth
	}
	// The admin server's HTTPS, as JettyAdminServer: admin.forceHttps (or
	// admin.portUnification) with the ssl.quorum.* stores, which hold its
	// certificate and the CAs of its clients; admin.needClientAuth.
	if zc.AdminForceHTTPS || zc.AdminPortUnification {
		if zc.QuorumTLS.CertFile == "" && use("admin-tls-cert") {
			return fmt.Errorf("%s: admin.forceHttps and admin.portUnification need ssl.quorum.keyStore.location (a PEM file with the admin server's certificate and key)", o.configFile)
		}
		if use("admin-tls-cert") {
			cfg.AdminTLSCertFile, cfg.AdminTLSKeyFile = zc.QuorumTLS.CertFile, ""
		}
		if use("admin-tls-ca") {
			cfg.AdminTLSCAFile = zc.QuorumTLS.CAFile
		}
		if use("admin-port-unification") {
			// admin.forceHttps overrides admin.portUnification.
			cfg.AdminPortUnification = zc.AdminPortUnification && !zc.AdminForceHTTPS
		}
	}
	if use("admin-tls-client-auth") && zc.AdminNeedClientAuth {
		cfg.AdminTLSClientAuth = server.ClientAuthNeed
	}
	props := map[string]string{}
	for _, p := range zc.Properties {
		props[strings.TrimPrefix(p.Key, "zookeeper.")] = p.Value
	}
	if v, ok := props["X509AuthenticationProvider.superUser"]; ok && use("x509-super-user") {
		cfg.SuperUserX509 = v
	}
	if v, ok := props["enforce.auth.enabled"]; ok && use("enforce-auth") {
		cfg.EnforceAuth = strings.EqualFold(v, "true")
	}
	if v, ok := props["enforce.auth.schemes"]; ok && use("enforce-auth-schemes") {
		cfg.EnforceAuthSchemes = config.SplitList(v)
	}
	if v, ok := props["sessionRequireClientSASLAuth"]; ok && use("require-sasl") {
		cfg.SessionRequireClientSASLAuth = strings.EqualFold(v, "true")
	}
	return nil
}

// qpcKeys are the keys QuorumPeerConfig consumes itself; every other key
// of a zoo.cfg becomes the system property zookeeper.<key>.
var qpcKeys = map[string]bool{
	"dataDir": true, "dataLogDir": true, "clientPort": true, "localSessionsEnabled": true,
	"localSessionsUpgradingEnabled": true, "clientPortAddress": true, "secureClientPort": true,
	"secureClientPortAddress": true, "observerMasterPort": true, "clientPortListenBacklog": true,
	"tickTime": true, "maxClientCnxns": true, "minSessionTimeout": true, "maxSessionTimeout": true,
	"initLimit": true, "syncLimit": true, "connectToLearnerMasterLimit": true, "electionAlg": true,
	"quorumListenOnAllIPs": true, "peerType": true, "syncEnabled": true, "dynamicConfigFile": true,
	"autopurge.snapRetainCount": true, "autopurge.purgeInterval": true, "standaloneEnabled": true,
	"reconfigEnabled": true, "sslQuorum": true, "portUnification": true, "sslQuorumReloadCertFiles": true,
	"oraclePath": true, "multiAddress.enabled": true,
}

// systemProperties lists the file's keys the way ZooKeeper turns them into
// system properties (the system_properties admin command).
func systemProperties(zc *config.Config) map[string]string {
	out := map[string]string{}
	for _, p := range zc.Properties {
		switch {
		case qpcKeys[p.Key], strings.HasPrefix(p.Key, "server."), strings.HasPrefix(p.Key, "group."),
			strings.HasPrefix(p.Key, "weight."), strings.HasPrefix(p.Key, "metricsProvider."):
		case p.Key == "jute.maxbuffer" || strings.HasPrefix(p.Key, "zookeeper."):
			out[p.Key] = p.Value
		default:
			out["zookeeper."+p.Key] = p.Value
		}
	}
	return out
}

// printEffectiveConfig writes the configuration the server would run
// with, as zoo.cfg keys, so that it can be read back as a zoo.cfg.
func printEffectiveConfig(w io.Writer, cfg server.Config) error {
	host, port, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("client address %q: %v", cfg.ListenAddr, err)
	}
	dataDir, _ := filepath.Abs(cfg.DataDir)
	logDir := dataDir
	if cfg.DataLogDir != "" {
		logDir, _ = filepath.Abs(cfg.DataLogDir)
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	tick := cfg.TickTime
	minTO, maxTO := cfg.MinSessionTimeout, cfg.MaxSessionTimeout
	if minTO <= 0 {
		minTO = 2 * tick
	}
	if maxTO <= 0 {
		maxTO = 20 * tick
	}
	itoa := strconv.Itoa
	bool2 := strconv.FormatBool
	s := []config.Setting{
		{Key: "clientPort", Value: port},
	}
	if host != "" {
		s = append(s, config.Setting{Key: "clientPortAddress", Value: host})
	}
	if cfg.SecureListenAddr != "" {
		if h, p, err := net.SplitHostPort(cfg.SecureListenAddr); err == nil {
			s = append(s, config.Setting{Key: "secureClientPort", Value: p})
			if h != "" {
				s = append(s, config.Setting{Key: "secureClientPortAddress", Value: h})
			}
		}
	}
	s = append(s,
		config.Setting{Key: "dataDir", Value: dataDir},
		config.Setting{Key: "dataLogDir", Value: logDir},
		config.Setting{Key: "tickTime", Value: ms(tick)},
		config.Setting{Key: "minSessionTimeout", Value: ms(minTO)},
		config.Setting{Key: "maxSessionTimeout", Value: ms(maxTO)},
		config.Setting{Key: "maxClientCnxns", Value: itoa(cfg.MaxClientCnxns)},
		config.Setting{Key: "maxCnxns", Value: itoa(cfg.MaxCnxns)},
		config.Setting{Key: "globalOutstandingLimit", Value: itoa(max(cfg.GlobalOutstandingLimit, 0))},
		config.Setting{Key: "jute.maxbuffer", Value: itoa(cfg.MaxBuffer)},
		config.Setting{Key: "4lw.commands.whitelist", Value: strings.Join(cfg.FourLetterWhitelist, ",")},
	)
	if cfg.AdminAddr == "" {
		s = append(s, config.Setting{Key: "admin.enableServer", Value: "false"})
	} else if h, p, err := net.SplitHostPort(cfg.AdminAddr); err == nil {
		if h == "" {
			h = "0.0.0.0"
		}
		s = append(s, config.Setting{Key: "admin.enableServer", Value: "true"},
			config.Setting{Key: "admin.serverAddress", Value: h}, config.Setting{Key: "admin.serverPort", Value: p})
	}
	s = append(s,
		config.Setting{Key: "extendedTypesEnabled", Value: bool2(cfg.ExtendedTypes)},
		config.Setting{Key: "enforceQuota", Value: bool2(cfg.EnforceQuota)},
		config.Setting{Key: "reconfigEnabled", Value: bool2(cfg.ReconfigEnabled)},
	)
	if cfg.SkipACL {
		s = append(s, config.Setting{Key: "skipACL", Value: "yes"})
	}
	if cfg.SnapshotEvery != 0 {
		s = append(s, config.Setting{Key: "snapCount", Value: strconv.FormatUint(cfg.SnapshotEvery, 10)})
	}
	if cfg.SuperDigest != "" {
		// A digest, not a password; still, print only that it is set.
		s = append(s, config.Setting{Key: "DigestAuthenticationProvider.superDigest", Value: "<set>"})
	}
	if cfg.TLSCertFile != "" {
		s = append(s, config.Setting{Key: "ssl.keyStore.location", Value: cfg.TLSCertFile})
	}
	if cfg.TLSCAFile != "" {
		s = append(s, config.Setting{Key: "ssl.trustStore.location", Value: cfg.TLSCAFile})
	}
	if cfg.TLSClientAuth != "" && cfg.SecureListenAddr != "" {
		s = append(s, config.Setting{Key: "ssl.clientAuth", Value: cfg.TLSClientAuth})
	}
	if cfg.AdminAddr != "" && cfg.AdminTLSCertFile != "" {
		key := "admin.forceHttps"
		if cfg.AdminPortUnification {
			key = "admin.portUnification"
		}
		s = append(s, config.Setting{Key: key, Value: "true"},
			config.Setting{Key: "ssl.quorum.keyStore.location", Value: cfg.AdminTLSCertFile})
		if cfg.AdminTLSCAFile != "" {
			s = append(s, config.Setting{Key: "ssl.quorum.trustStore.location", Value: cfg.AdminTLSCAFile})
		}
		if strings.EqualFold(cfg.AdminTLSClientAuth, server.ClientAuthNeed) {
			s = append(s, config.Setting{Key: "admin.needClientAuth", Value: "true"})
		}
	}
	serverID := cfg.ServerID
	if serverID == 0 {
		serverID = 1
	}
	s = append(s, config.Setting{Key: "serverId", Value: strconv.FormatUint(serverID, 10)})
	return config.WriteSettings(w, s)
}

// ensembleFromZooCfg maps ZooKeeper's server.N lines onto the ensemble
// settings, as QuorumPeerConfig does: with more than one server line (or
// standaloneEnabled=false) the server runs as member myid of that
// ensemble, participants voting and observers as Raft learners. The quorum
// port is our peer (Raft) port; the election port is kept only in
// /zookeeper/config. Flags given on the command line win.
func ensembleFromZooCfg(zc *config.Config, cfg *server.Config, use func(string) bool) {
	if len(zc.Servers) == 0 || (len(zc.Servers) == 1 && zc.StandaloneEnabled) {
		return
	}
	if !use("peers") || !use("observers") || len(cfg.Peers) > 0 || len(cfg.Observers) > 0 {
		return
	}
	cfg.Peers, cfg.Observers = map[uint64]string{}, map[uint64]string{}
	for _, sp := range zc.Servers {
		_, rhs, _ := strings.Cut(sp.String(), "=")
		if sp.Observer {
			cfg.Observers[sp.ID] = rhs
		} else {
			cfg.Peers[sp.ID] = rhs
		}
	}
	if use("reconfig-enabled") {
		cfg.ReconfigEnabled = zc.ReconfigEnabled
	}
	if use("cluster-id") && cfg.ClusterID == "" {
		cfg.ClusterID = zooCfgClusterID(zc)
	}
}

// zooCfgClusterID names an ensemble configured by zoo.cfg, which has no
// cluster id of its own: the id already stamped in the data directory if
// there is one (membership may have changed by reconfig since), else one
// derived from the initial server lines, identical on every member that
// shares them.
func zooCfgClusterID(zc *config.Config) string {
	if id, ok := server.StampedClusterID(zc.DataDir); ok {
		return id
	}
	specs := make([]string, 0, len(zc.Servers))
	for _, sp := range zc.Servers {
		specs = append(specs, fmt.Sprintf("%d=%s:%d", sp.ID, sp.Host, sp.PeerPort))
	}
	sort.Strings(specs)
	sum := sha256.Sum256([]byte(strings.Join(specs, ",")))
	return "zk-" + hex.EncodeToString(sum[:6])
}
