// Package config reads Apache ZooKeeper's zoo.cfg: the java.util.Properties
// text format, the keys QuorumPeerConfig understands, and the rule that any
// other key becomes the system property "zookeeper.<key>" (which is how
// 4lw.commands.whitelist, admin.*, ssl.*, authProvider.* and the like are
// set from zoo.cfg).
//
// Parse validates as ZooKeeper does (tickTime and dataDir are required,
// clientPortAddress needs clientPort, minSessionTimeout <= maxSessionTimeout,
// server.N lines are well formed) and fails with the line number of the
// offending key. Every key is classified (see [Status]); the keys Paddock
// does not honour are listed by [Config.Ignored] so the server can name each
// one in a warning at start, instead of dropping it silently.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of ZooKeeper 3.8 for keys a zoo.cfg may leave out.
const (
	DefaultMaxClientCnxns         = 60
	DefaultSnapRetainCount        = 3
	DefaultGlobalOutstandingLimit = 1000
	DefaultAdminPort              = 8080
	DefaultAdminAddress           = "0.0.0.0"
	DefaultJuteMaxBuffer          = 0xfffff
	DefaultSnapCount              = 100000
)

// Config is a parsed zoo.cfg. Durations are in Go units; fields hold
// ZooKeeper's defaults for keys the file leaves out (see [Config.IsSet]).
type Config struct {
	// File is the path the configuration was read from, if any.
	File string

	TickTime             time.Duration // tickTime (required)
	InitLimit, SyncLimit int           // initLimit, syncLimit (ticks)
	DataDir              string        // dataDir (required)
	DataLogDir           string        // dataLogDir; defaults to DataDir

	ClientPort              int    // clientPort; 0 = not set
	ClientPortAddress       string // clientPortAddress; "" = all addresses
	SecureClientPort        int    // secureClientPort; 0 = not set
	SecureClientPortAddress string // secureClientPortAddress

	MaxClientCnxns         int // maxClientCnxns, per client IP; 0 = unlimited
	MaxCnxns               int // maxCnxns, all clients; 0 = unlimited
	GlobalOutstandingLimit int // globalOutstandingLimit

	// MinSessionTimeout and MaxSessionTimeout default to 2 and 20 ticks.
	MinSessionTimeout, MaxSessionTimeout time.Duration

	SnapRetainCount int // autopurge.snapRetainCount (at least 3)
	PurgeInterval   int // autopurge.purgeInterval, hours; 0 = off
	SnapCount       int // snapCount: transactions between snapshots

	// FourLetterWhitelist is 4lw.commands.whitelist split on commas; nil
	// when the key is absent (ZooKeeper's default is "srvr").
	FourLetterWhitelist []string

	AdminEnabled bool   // admin.enableServer (default true)
	AdminAddress string // admin.serverAddress (default 0.0.0.0)
	AdminPort    int    // admin.serverPort (default 8080)
	// AdminForceHTTPS is admin.forceHttps: the admin server serves HTTPS
	// only, with the certificate of ssl.quorum.keyStore.location.
	AdminForceHTTPS bool
	// AdminPortUnification is admin.portUnification: HTTPS and HTTP on
	// the admin port (admin.forceHttps overrides it).
	AdminPortUnification bool
	// AdminNeedClientAuth is admin.needClientAuth: admin clients must
	// present a certificate of a CA in ssl.quorum.trustStore.location.
	AdminNeedClientAuth bool

	StandaloneEnabled bool // standaloneEnabled (default true)
	ReconfigEnabled   bool // reconfigEnabled (default false)

	// Servers are the server.N lines (and those of DynamicConfigFile),
	// ordered by id.
	Servers []ServerSpec
	// MyID is the content of dataDir/myid; 0 when the file is absent.
	MyID uint64
	// DynamicConfigFile is dynamicConfigFile.
	DynamicConfigFile string

	JuteMaxBuffer int  // jute.maxbuffer
	SkipACL       bool // skipACL=yes
	// ExtendedTypes is extendedTypesEnabled (TTL nodes). ZooKeeper's
	// default is false; Paddock's is true (see DefaultConfig).
	ExtendedTypes bool
	EnforceQuota  bool // enforceQuota
	ReadOnlyMode  bool // readonlymode.enabled

	// SuperDigest is DigestAuthenticationProvider.superDigest.
	SuperDigest string
	// AuthProviders maps authProvider.<n> keys (the <n>) to their class
	// names.
	AuthProviders map[string]string

	// TLS holds the client TLS settings (ssl.*).
	TLS TLS
	// QuorumTLS holds the ssl.quorum.* stores, which ZooKeeper's admin
	// server takes its HTTPS certificate and client CAs from (only the
	// location and type keys are read).
	QuorumTLS TLS

	// Properties are the file's properties, last value per key, in file
	// order, with their line numbers.
	Properties []Property

	set map[string]bool
}

// TLS is the client-port TLS configuration from the ssl.* keys. ZooKeeper
// reads Java key stores; Paddock reads PEM files: ssl.keyStore.location is
// a PEM file holding the certificate chain and the private key (ZooKeeper's
// PEM key store type, ssl.keyStore.type=PEM), ssl.trustStore.location a PEM
// bundle of CA certificates.
type TLS struct {
	// CertFile and KeyFile are the server's certificate chain and key
	// (both ssl.keyStore.location).
	CertFile, KeyFile string
	// KeyPassword is ssl.keyStore.password, for an encrypted key.
	KeyPassword string
	// CAFile is ssl.trustStore.location: the CAs client certificates are
	// checked against.
	CAFile string
	// KeyStoreType and TrustStoreType are ssl.keyStore.type and
	// ssl.trustStore.type; only "" and "PEM" are usable.
	KeyStoreType, TrustStoreType string
	// ClientAuth is ssl.clientAuth: "need" (ZooKeeper's default when
	// unset), "want" or "none".
	ClientAuth string
	// Protocol is ssl.protocol, EnabledProtocols ssl.enabledProtocols and
	// CipherSuites ssl.ciphersuites (comma-separated Java names).
	Protocol, EnabledProtocols, CipherSuites string
	// HostnameVerification is ssl.hostnameVerification (default true).
	HostnameVerification bool
	// AuthProvider is ssl.authProvider (default "x509").
	AuthProvider string
}

// storeKey sets a key or trust store setting of t from its key without
// the ssl. or ssl.quorum. prefix; it reports false for any other key.
func (t *TLS) storeKey(name, v string) bool {
	switch name {
	case "keyStore.location":
		t.CertFile, t.KeyFile = v, v
	case "keyStore.type":
		t.KeyStoreType = v
	case "trustStore.location":
		t.CAFile = v
	case "trustStore.type":
		t.TrustStoreType = v
	default:
		return false
	}
	return true
}

// ServerSpec is one server.N line:
// host:peerPort:electionPort[:participant|observer][;[clientAddr:]clientPort].
type ServerSpec struct {
	ID           uint64
	Host         string
	PeerPort     int
	ElectionPort int
	// Observer is true for the observer role (a Raft learner).
	Observer bool
	// ClientAddr and ClientPort are the optional client address after ';'
	// (ClientAddr "" means all addresses).
	ClientAddr string
	ClientPort int
	// Line is the line of the spec in its file.
	Line int
}

// String formats the spec the way /zookeeper/config shows it.
func (s ServerSpec) String() string {
	role := "participant"
	if s.Observer {
		role = "observer"
	}
	out := fmt.Sprintf("server.%d=%s:%d:%d:%s", s.ID, s.Host, s.PeerPort, s.ElectionPort, role)
	if s.ClientPort != 0 {
		addr := s.ClientAddr
		if addr == "" {
			addr = "0.0.0.0"
		}
		out += fmt.Sprintf(";%s:%d", addr, s.ClientPort)
	}
	return out
}

// DefaultConfig returns the configuration used when no file is given:
// ZooKeeper's defaults, except that TTL nodes (extendedTypesEnabled) are on.
func DefaultConfig() *Config {
	return &Config{
		TickTime:               2 * time.Second,
		MaxClientCnxns:         DefaultMaxClientCnxns,
		GlobalOutstandingLimit: DefaultGlobalOutstandingLimit,
		SnapRetainCount:        DefaultSnapRetainCount,
		SnapCount:              DefaultSnapCount,
		AdminEnabled:           true,
		AdminAddress:           DefaultAdminAddress,
		AdminPort:              DefaultAdminPort,
		StandaloneEnabled:      true,
		JuteMaxBuffer:          DefaultJuteMaxBuffer,
		ExtendedTypes:          true,
		AuthProviders:          map[string]string{},
		TLS:                    TLS{HostnameVerification: true},
		set:                    map[string]bool{},
	}
}

// IsSet reports whether the file set key (its canonical name, e.g.
// "extendedTypesEnabled" also for "zookeeper.extendedTypesEnabled").
func (c *Config) IsSet(key string) bool { return c.set[key] }

// Load reads and parses a zoo.cfg file; dataDir/myid is read too, and the
// dynamicConfigFile if the file names one.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parse(string(b), path, true)
	if err != nil {
		return nil, err
	}
	c.File = path
	return c, nil
}

// Parse parses zoo.cfg text. It does not read myid or a dynamic config
// file (Load does).
func Parse(text string) (*Config, error) {
	return parse(text, "", false)
}

func parse(text, file string, readFiles bool) (*Config, error) {
	props, err := ParseProperties(text)
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			le.File = file
		}
		return nil, err
	}
	// Properties keep the last value of a key (ZooKeeper trims both).
	last := map[string]int{}
	for i := range props {
		props[i].Key = strings.TrimSpace(props[i].Key)
		props[i].Value = strings.TrimSpace(props[i].Value)
		last[props[i].Key] = i
	}
	c := DefaultConfig()
	for i, p := range props {
		if last[p.Key] != i {
			continue
		}
		c.Properties = append(c.Properties, p)
	}
	fail := func(p Property, err error) error {
		return &LineError{File: file, Line: p.Line, Key: p.Key, Err: err}
	}
	var (
		minSet, maxSet bool
		multiAddress   bool
	)
	for _, p := range c.Properties {
		if canonical(p.Key) == "multiAddress.enabled" {
			multiAddress = strings.EqualFold(p.Value, "true")
		}
	}
	for _, p := range c.Properties {
		key := canonical(p.Key)
		c.set[key] = true
		v := p.Value
		var err error
		switch {
		case key == "tickTime":
			var ms int
			ms, err = parseInt(v)
			c.TickTime = time.Duration(ms) * time.Millisecond
		case key == "initLimit":
			c.InitLimit, err = parseInt(v)
		case key == "syncLimit":
			c.SyncLimit, err = parseInt(v)
		case key == "dataDir":
			c.DataDir = v
		case key == "dataLogDir":
			c.DataLogDir = v
		case key == "clientPort":
			c.ClientPort, err = parsePort(v)
		case key == "clientPortAddress":
			c.ClientPortAddress = v
		case key == "secureClientPort":
			c.SecureClientPort, err = parsePort(v)
		case key == "secureClientPortAddress":
			c.SecureClientPortAddress = v
		case key == "maxClientCnxns":
			c.MaxClientCnxns, err = parseInt(v)
		case key == "maxCnxns":
			c.MaxCnxns, err = parseInt(v)
		case key == "globalOutstandingLimit":
			c.GlobalOutstandingLimit, err = parseInt(v)
		case key == "minSessionTimeout":
			var ms int
			ms, err = parseInt(v)
			c.MinSessionTimeout, minSet = time.Duration(ms)*time.Millisecond, ms != -1
		case key == "maxSessionTimeout":
			var ms int
			ms, err = parseInt(v)
			c.MaxSessionTimeout, maxSet = time.Duration(ms)*time.Millisecond, ms != -1
		case key == "autopurge.snapRetainCount":
			c.SnapRetainCount, err = parseInt(v)
		case key == "autopurge.purgeInterval":
			c.PurgeInterval, err = parseInt(v)
		case key == "snapCount":
			c.SnapCount, err = parseInt(v)
			if err == nil && c.SnapCount < 2 {
				err = fmt.Errorf("must be at least 2, got %d", c.SnapCount)
			}
		case key == "4lw.commands.whitelist":
			c.FourLetterWhitelist = SplitList(v)
		case key == "admin.enableServer":
			c.AdminEnabled = javaBoolean(v)
		case key == "admin.serverAddress":
			c.AdminAddress = v
		case key == "admin.serverPort":
			c.AdminPort, err = parsePort(v)
		case key == "admin.forceHttps":
			c.AdminForceHTTPS = javaBoolean(v)
		case key == "admin.portUnification":
			c.AdminPortUnification = javaBoolean(v)
		case key == "admin.needClientAuth":
			c.AdminNeedClientAuth = javaBoolean(v)
		case strings.HasPrefix(key, "ssl.quorum.") && c.QuorumTLS.storeKey(strings.TrimPrefix(key, "ssl.quorum."), v):
		case strings.HasPrefix(key, "ssl.") && c.TLS.storeKey(strings.TrimPrefix(key, "ssl."), v):
		case key == "standaloneEnabled":
			c.StandaloneEnabled, err = strictBoolean(key, v)
		case key == "reconfigEnabled":
			c.ReconfigEnabled, err = strictBoolean(key, v)
		case key == "dynamicConfigFile":
			c.DynamicConfigFile = v
		case strings.HasPrefix(key, "server."):
			var s ServerSpec
			s, err = ParseServerSpec(strings.TrimPrefix(key, "server."), v, multiAddress)
			s.Line = p.Line
			c.Servers = append(c.Servers, s)
		case key == "jute.maxbuffer":
			c.JuteMaxBuffer, err = parseInt(v)
			if err == nil && c.JuteMaxBuffer <= 0 {
				err = fmt.Errorf("must be positive, got %d", c.JuteMaxBuffer)
			}
		case key == "skipACL":
			c.SkipACL = v == "yes" // ZooKeeperServer: "yes" enables, anything else does not
		case key == "extendedTypesEnabled":
			c.ExtendedTypes = javaBoolean(v)
		case key == "enforceQuota":
			c.EnforceQuota = javaBoolean(v)
		case key == "readonlymode.enabled":
			c.ReadOnlyMode = javaBoolean(v)
		case key == "DigestAuthenticationProvider.superDigest":
			c.SuperDigest = v
		case strings.HasPrefix(key, "authProvider."):
			c.AuthProviders[strings.TrimPrefix(key, "authProvider.")] = v
		case key == "ssl.keyStore.password":
			c.TLS.KeyPassword = v
		case key == "ssl.clientAuth":
			switch strings.ToLower(v) {
			case "need", "want", "none":
				c.TLS.ClientAuth = strings.ToLower(v)
			default:
				err = fmt.Errorf("invalid value %q: use need, want or none", v)
			}
		case key == "ssl.protocol":
			c.TLS.Protocol = v
		case key == "ssl.enabledProtocols":
			c.TLS.EnabledProtocols = v
		case key == "ssl.ciphersuites":
			c.TLS.CipherSuites = v
		case key == "ssl.hostnameVerification":
			c.TLS.HostnameVerification = javaBoolean(v)
		case key == "ssl.authProvider":
			c.TLS.AuthProvider = v
		case isStrictBooleanKey(key):
			_, err = strictBoolean(key, v)
		}
		if err != nil {
			return nil, fail(p, err)
		}
	}
	for key, t := range map[string]string{"ssl.keyStore.type": c.TLS.KeyStoreType, "ssl.trustStore.type": c.TLS.TrustStoreType,
		"ssl.quorum.keyStore.type": c.QuorumTLS.KeyStoreType, "ssl.quorum.trustStore.type": c.QuorumTLS.TrustStoreType} {
		if t != "" && !strings.EqualFold(t, "PEM") {
			return nil, &LineError{File: file, Line: c.lineOf(key), Key: key,
				Err: fmt.Errorf("store type %q is not supported: Paddock reads PEM files (convert with openssl or keytool)", t)}
		}
	}

	// The checks of QuorumPeerConfig.parseProperties, in its order.
	if c.SnapRetainCount < DefaultSnapRetainCount {
		c.SnapRetainCount = DefaultSnapRetainCount
	}
	if c.DataDir == "" {
		return nil, fileError(file, "dataDir is not set")
	}
	if c.DataLogDir == "" {
		c.DataLogDir = c.DataDir
	}
	if c.ClientPort == 0 && c.set["clientPortAddress"] {
		return nil, &LineError{File: file, Line: c.lineOf("clientPortAddress"), Key: "clientPortAddress",
			Err: errors.New("clientPortAddress is set but clientPort is not set")}
	}
	if c.SecureClientPort == 0 && c.set["secureClientPortAddress"] {
		return nil, &LineError{File: file, Line: c.lineOf("secureClientPortAddress"), Key: "secureClientPortAddress",
			Err: errors.New("secureClientPortAddress is set but secureClientPort is not set")}
	}
	if !c.set["tickTime"] {
		return nil, fileError(file, "tickTime is not set")
	}
	if c.TickTime <= 0 {
		{
			return nil, &LineError{File: file, Line: c.lineOf("tickTime"), Key: "tickTime", Err: errors.New("must be positive")}
		}
	}
	if !minSet {
		c.MinSessionTimeout = 2 * c.TickTime
	}
	if !maxSet {
		c.MaxSessionTimeout = 20 * c.TickTime
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		return nil, &LineError{File: file, Line: max(c.lineOf("minSessionTimeout"), c.lineOf("maxSessionTimeout")), Key: "minSessionTimeout",
			Err: errors.New("minSessionTimeout must not be larger than maxSessionTimeout")}
	}

	if readFiles {
		if c.DynamicConfigFile != "" {
			if err := c.loadDynamic(file, multiAddress); err != nil {
				return nil, err
			}
		}
		if err := c.readMyID(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(c.Servers, func(i, j int) bool { return c.Servers[i].ID < c.Servers[j].ID })
	if err := c.checkServers(file); err != nil {
		return nil, err
	}
	return c, nil
}

func fileError(file, msg string) error {
	if file == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", file, msg)
}

func (c *Config) lineOf(key string) int {
	for _, p := range c.Properties {
		if canonical(p.Key) == key {
			return p.Line
		}
	}
	return 0
}

// checkServers validates the membership as QuorumPeerConfig does.
func (c *Config) checkServers(file string) error {
	seen := map[uint64]bool{}
	voters, observers := 0, 0
	for _, s := range c.Servers {
		if seen[s.ID] {
			return &LineError{File: file, Line: s.Line, Key: fmt.Sprintf("server.%d", s.ID), Err: errors.New("duplicate server id")}
		}
		seen[s.ID] = true
		if s.Observer {
			observers++
		} else {
			voters++
		}
	}
	if voters == 0 && observers > 0 {
		return fileError(file, "Observers w/o participants is an invalid configuration")
	}
	if voters == 0 && !c.StandaloneEnabled {
		return fileError(file, "standaloneEnabled = false then number of participants should be >0")
	}
	if voters == 1 && c.StandaloneEnabled && observers > 0 {
		return fileError(file, "Observers w/o quorum is an invalid configuration")
	}
	if voters > 1 && c.MyID != 0 && !seen[c.MyID] {
		return fileError(file, fmt.Sprintf("myid %d (from %s) is not among the server.N lines", c.MyID, filepath.Join(c.DataDir, "myid")))
	}
	return nil
}

// readMyID reads dataDir/myid, as QuorumPeerConfig.setupMyId does; a
// missing file leaves MyID 0.
func (c *Config) readMyID() error {
	path := filepath.Join(c.DataDir, "myid")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	id, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(line, "\r")), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: serverid %s is not a number", path, strings.TrimSpace(line))
	}
	c.MyID = id
	return nil
}

// loadDynamic reads server.N (and group/weight) lines from the dynamic
// configuration file, which replace those of the static file.
func (c *Config) loadDynamic(file string, multiAddress bool) error {
	path := c.DynamicConfigFile
	if !filepath.IsAbs(path) && file != "" {
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(filepath.Dir(file), path)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("dynamicConfigFile: %w", err)
	}
	props, err := ParseProperties(string(b))
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			le.File = path
		}
		return err
	}
	var servers []ServerSpec
	for _, p := range props {
		key, v := strings.TrimSpace(p.Key), strings.TrimSpace(p.Value)
		switch {
		case strings.HasPrefix(key, "server."):
			s, err := ParseServerSpec(strings.TrimPrefix(key, "server."), v, multiAddress)
			if err != nil {
				return &LineError{File: path, Line: p.Line, Key: key, Err: err}
			}
			s.Line = p.Line
			servers = append(servers, s)
		case key == "version", strings.HasPrefix(key, "group"), strings.HasPrefix(key, "weight"):
		default:
			return &LineError{File: path, Line: p.Line, Key: key, Err: errors.New("Unrecognised parameter")}
		}
	}
	c.Servers = servers
	return nil
}

// ParseServerSpec parses the value of a server.<id> line
// (QuorumPeer.QuorumServer): host:peerPort:electionPort[:role] optionally
// followed by ;[clientAddr:]clientPort. Several '|'-separated addresses
// are accepted only with multiAddress.enabled; the first is kept.
func ParseServerSpec(id, value string, multiAddress bool) (ServerSpec, error) {
	var s ServerSpec
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return s, fmt.Errorf("server id %q is not a number", id)
	}
	s.ID = n
	wrong := errors.New(value + " does not have the form server_config or server_config;client_config " +
		"where server_config is the pipe separated list of host:port:port or host:port:port:type " +
		"and client_config is port or host:port")
	parts := strings.Split(value, ";")
	if len(parts) > 2 {
		return s, wrong
	}
	if len(parts) == 2 {
		cp := hostAndPort(parts[1])
		if len(cp) > 2 {
			return s, wrong
		}
		if len(cp) == 2 {
			s.ClientAddr = cp[0]
		}
		if s.ClientPort, err = parsePort(cp[len(cp)-1]); err != nil {
			return s, fmt.Errorf("client port: %v", err)
		}
	}
	addrs := strings.Split(parts[0], "|")
	if len(addrs) > 1 && !multiAddress {
		return s, fmt.Errorf("Multiple address feature is disabled, but multiple addresses were specified for sid %d", n)
	}
	for i, a := range addrs {
		sp := hostAndPort(a)
		if len(sp) < 3 || len(sp) > 4 {
			return s, wrong
		}
		peer, err := parsePort(sp[1])
		if err != nil {
			return s, fmt.Errorf("Address unresolved: %s:%s", sp[0], sp[1])
		}
		election, err := parsePort(sp[2])
		if err != nil {
			return s, fmt.Errorf("Address unresolved: %s:%s", sp[0], sp[2])
		}
		if peer == election {
			return s, fmt.Errorf("Client and election port must be different! Please update the configuration file on server.%d", n)
		}
		observer := false
		if len(sp) == 4 {
			switch strings.ToLower(sp[3]) {
			case "participant":
			case "observer":
				observer = true
			default:
				return s, fmt.Errorf("Unrecognised peertype: %s", sp[3])
			}
		}
		if i == 0 {
			s.Host, s.PeerPort, s.ElectionPort, s.Observer = sp[0], peer, election, observer
		} else if observer != s.Observer {
			return s, errors.New("Multiple addresses should have similar roles")
		}
	}
	if s.Host == "" {
		return s, wrong
	}
	return s, nil
}

// hostAndPort splits on ':' but keeps a bracketed IPv6 host whole
// (ConfigUtils.getHostAndPort).
func hostAndPort(s string) []string {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return []string{s}
		}
		host := s[1:end]
		rest := s[end+1:]
		if rest == "" {
			return []string{host}
		}
		return append([]string{host}, strings.Split(strings.TrimPrefix(rest, ":"), ":")...)
	}
	return strings.Split(s, ":")
}

func parseInt(v string) (int, error) {
	n, err := strconv.ParseInt(v, 10, 32) // Integer.parseInt
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	return int(n), nil
}

func parsePort(v string) (int, error) {
	n, err := parseInt(v)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range", n)
	}
	return n, nil
}

// javaBoolean is Boolean.parseBoolean: "true" in any case, else false.
func javaBoolean(v string) bool { return strings.EqualFold(v, "true") }

// strictBoolean is QuorumPeerConfig.parseBoolean.
func strictBoolean(key, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("Invalid option %s for %s. Choose 'true' or 'false.'", v, key)
}

func isStrictBooleanKey(key string) bool {
	switch key {
	case "localSessionsEnabled", "localSessionsUpgradingEnabled", "quorumListenOnAllIPs", "syncEnabled",
		"sslQuorum", "portUnification", "sslQuorumReloadCertFiles", "quorum.auth.enableSasl",
		"quorum.auth.serverRequireSasl", "quorum.auth.learnerRequireSasl", "jvm.pause.monitor":
		return true
	}
	return false
}

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty items (as ZooKeeper reads 4lw.commands.whitelist).
func SplitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
