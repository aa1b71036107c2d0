package config

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Status says what Paddock does with a zoo.cfg key.
type Status int

const (
	// Unknown keys are not ZooKeeper keys Paddock knows of. ZooKeeper
	// would turn them into the system property "zookeeper.<key>".
	Unknown Status = iota
	// NotHonoured keys are ZooKeeper keys that Paddock parses (and
	// validates) but that have no effect.
	NotHonoured
	// Supported keys take effect.
	Supported
)

// String returns "supported", "parsed-not-honoured" or "unknown".
func (s Status) String() string {
	switch s {
	case Supported:
		return "supported"
	case NotHonoured:
		return "parsed-not-honoured"
	}
	return "unknown"
}

// supported are the keys that take effect. The client TLS and SASL keys
// move here as the listeners that use them land (server/tls*.go,
// server/sasl*.go read Config.TLS and Config.AuthProviders).
var supported = map[string]bool{
	"tickTime": true, "dataDir": true, "clientPort": true, "clientPortAddress": true,
	"maxClientCnxns": true, "maxCnxns": true, "globalOutstandingLimit": true,
	"minSessionTimeout": true, "maxSessionTimeout": true, "snapCount": true,
	"4lw.commands.whitelist": true,
	"admin.enableServer":     true, "admin.serverAddress": true, "admin.serverPort": true,
	// The admin server's HTTPS (server/admin_tls.go).
	"admin.forceHttps": true, "admin.portUnification": true, "admin.needClientAuth": true,
	"ssl.quorum.keyStore.location": true, "ssl.quorum.keyStore.type": true,
	"ssl.quorum.trustStore.location": true, "ssl.quorum.trustStore.type": true,
	"standaloneEnabled": true, "reconfigEnabled": true, "readonlymode.enabled": true,
	// The ensemble: server.N lines (and the dynamic file holding them)
	// become the membership (cmd/paddock/serverconfig.go).
	"dynamicConfigFile": true, "peerType": true,
	"jute.maxbuffer": true, "skipACL": true, "extendedTypesEnabled": true, "enforceQuota": true,
	"DigestAuthenticationProvider.superDigest": true,
	// Client TLS and authentication, mapped onto server.SecurityConfig by
	// cmd/paddock (serverconfig.go).
	"secureClientPort": true, "secureClientPortAddress": true,
	"ssl.keyStore.location": true, "ssl.keyStore.type": true,
	"ssl.trustStore.location": true, "ssl.trustStore.type": true, "ssl.clientAuth": true,
	"X509AuthenticationProvider.superUser": true, "enforce.auth.enabled": true,
	"enforce.auth.schemes": true, "sessionRequireClientSASLAuth": true,
}

// known are ZooKeeper keys (QuorumPeerConfig's own, and system properties
// ZooKeeper reads as zookeeper.<key>) that Paddock parses without
// honouring. Prefixes end in '.'.
var known = map[string]bool{
	"initLimit": true, "syncLimit": true, "dataLogDir": true,
	"secureClientPort": true, "secureClientPortAddress": true,
	"autopurge.snapRetainCount": true, "autopurge.purgeInterval": true,
	"localSessionsEnabled": true, "localSessionsUpgradingEnabled": true, "observerMasterPort": true,
	"clientPortListenBacklog": true, "connectToLearnerMasterLimit": true, "electionAlg": true,
	"quorumListenOnAllIPs": true, "syncEnabled": true, "sslQuorum": true,
	"portUnification": true, "sslQuorumReloadCertFiles": true, "quorum.cnxn.threads.size": true,
	"oraclePath": true, "forceSync": true, "preAllocSize": true,
	"snapSizeLimitInKb": true, "txnLogSizeLimitInKb": true, "digest.enabled": true,
	"snapshot.compression.method": true, "serverCnxnFactory": true, "client.portUnification": true,
	"cnxTimeout": true, "electionPortBindRetry": true, "tcpKeepAlive": true, "clientTcpKeepAlive": true,
	"X509AuthenticationProvider.superUser": true, "sessionRequireClientSASLAuth": true,
	"fsync.warningthresholdms": true, "maxResponseCacheSize": true, "maxGetChildrenResponseCacheSize": true,
	"flushDelay": true, "maxWriteQueuePollTime": true, "maxBatchSize": true, "requestThrottleLimit": true,
	"requestThrottleStallTime": true, "requestThrottleDropStale": true, "learner.asyncSending": true,
	"serializeLastProcessedZxid.enabled": true, "closeSessionTxn.enabled": true,
	"audit.enable": true, "multiAddress.enabled": true, "multiAddress.reachabilityCheckTimeoutMs": true,
	"multiAddress.reachabilityCheckEnabled": true, "jvm.pause.monitor": true,
	"jvm.pause.info-threshold.ms": true, "jvm.pause.warn-threshold.ms": true, "jvm.pause.sleep.time.ms": true,
	"admin.idleTimeout": true, "admin.commandURL": true, "admin.rateLimiterIntervalInMS": true,
	"admin.snapshot.enabled": true, "admin.restore.enabled": true,
	"DigestAuthenticationProvider.enabled": true, "DigestAuthenticationProvider.digestAlg": true,
	"enforce.auth.enabled": true, "enforce.auth.schemes": true,
}

var knownPrefixes = []string{
	"group.", "weight.", "ssl.", "authProvider.", "metricsProvider.", "quorum.auth.",
	"kerberos.", "znode.container.", "nio.", "netty.", "commitProcessor.", "ssl.quorum.",
}

// sysPropKeys are keys that ZooKeeper reads as system properties: in a
// zoo.cfg they are written without the "zookeeper." prefix (ZooKeeper adds
// it), and Paddock also accepts them with it.
func isSysPropKey(key string) bool {
	switch key {
	case "4lw.commands.whitelist", "extendedTypesEnabled", "enforceQuota", "skipACL", "maxCnxns",
		"globalOutstandingLimit", "snapCount", "DigestAuthenticationProvider.superDigest",
		"jute.maxbuffer", "readonlymode.enabled", "forceSync", "preAllocSize", "digest.enabled",
		"snapshot.compression.method", "serverCnxnFactory", "sessionRequireClientSASLAuth",
		"X509AuthenticationProvider.superUser", "DigestAuthenticationProvider.enabled",
		"DigestAuthenticationProvider.digestAlg":
		return true
	}
	for _, p := range []string{"admin.", "ssl.", "authProvider.", "enforce.auth.", "znode.container."} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// canonical maps "zookeeper.<key>" to <key> for the keys ZooKeeper reads
// as system properties (zookeeper.extendedTypesEnabled →
// extendedTypesEnabled); other keys are returned as they are.
func canonical(key string) string {
	if rest, ok := strings.CutPrefix(key, "zookeeper."); ok && isSysPropKey(rest) {
		return rest
	}
	return key
}

// KeyStatus classifies a key as written in a zoo.cfg.
func KeyStatus(key string) Status {
	key = canonical(key)
	if supported[key] || strings.HasPrefix(key, "server.") {
		return Supported
	}
	if known[key] {
		return NotHonoured
	}
	for _, p := range knownPrefixes {
		if strings.HasPrefix(key, p) {
			return NotHonoured
		}
	}
	return Unknown
}

// Notice is a key Paddock does not honour, for the start-up warning.
type Notice struct {
	Key    string
	Line   int
	Status Status
	// Reason says why the key has no effect.
	Reason string
}

// Ignored lists, in file order, every key of the file that has no effect
// in Paddock, each once, with the reason.
func (c *Config) Ignored() []Notice {
	var out []Notice
	for _, p := range c.Properties {
		key := canonical(p.Key)
		st := KeyStatus(p.Key)
		reason := ""
		switch {
		case st == Supported:
			continue
		case key == "dataLogDir":
			if c.DataLogDir == c.DataDir {
				continue
			}
			reason = "Paddock keeps its log and snapshots under dataDir"
		case key == "initLimit" || key == "syncLimit":
			reason = "Raft's election and heartbeat timing (--raft-tick, --election-ticks) replaces ZooKeeper's sync limits"
		case strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "weight."):
			reason = "hierarchical quorums are not supported: every voter has weight 1"
		case strings.HasPrefix(key, "autopurge."):
			reason = "Paddock compacts its own log and keeps its own snapshots"
		case strings.HasPrefix(key, "ssl."):
			reason = "Paddock's TLS takes PEM files (ssl.keyStore.location, ssl.trustStore.location) and Go's protocol and cipher defaults"
		case strings.HasPrefix(key, "authProvider."):
			reason = "the digest, ip, x509 and sasl providers are built in (SASL users come from --jaas-file)"
		case strings.HasPrefix(key, "metricsProvider."):
			reason = "Prometheus metrics are served at /metrics on the admin server"
		case st == NotHonoured:
			reason = "not used by Paddock"
		default:
			reason = "unknown key (Apache ZooKeeper would set the system property zookeeper." + key + ")"
		}
		out = append(out, Notice{Key: p.Key, Line: p.Line, Status: st, Reason: reason})
	}
	return out
}

// ClientAddr returns the client listen address from clientPortAddress and
// clientPort, falling back to the ";clientPort" of this server's server.N
// line; "" when neither is set.
func (c *Config) ClientAddr() string {
	port, host := c.ClientPort, c.ClientPortAddress
	if port == 0 {
		for _, s := range c.Servers {
			if s.ID == c.MyID && s.ClientPort != 0 {
				port, host = s.ClientPort, s.ClientAddr
			}
		}
	}
	if port == 0 {
		return ""
	}
	if host == "0.0.0.0" {
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// AdminAddr returns the admin server's listen address, or "" when
// admin.enableServer is false.
func (c *Config) AdminAddr() string {
	if !c.AdminEnabled {
		return ""
	}
	host := c.AdminAddress
	if host == "0.0.0.0" {
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(c.AdminPort))
}

// Setting is one line of an effective configuration.
type Setting struct{ Key, Value string }

// WriteSettings writes settings as key=value lines.
func WriteSettings(w io.Writer, settings []Setting) error {
	for _, s := range settings {
		if _, err := fmt.Fprintf(w, "%s=%s\n", s.Key, escapeValue(s.Value)); err != nil {
			return err
		}
	}
	return nil
}

// escapeValue escapes what Properties.load would otherwise change: a
// leading blank, backslashes and line breaks.
func escapeValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case i == 0 && (c == ' ' || c == '\t' || c == '\f'):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
