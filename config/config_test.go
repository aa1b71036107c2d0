package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProperties(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []Property
	}{
		{"plain", "a=b\nc = d \n", []Property{{"a", "b", 1}, {"c", "d ", 2}}},
		{"colon and blank separators", "a:b\nc d\ne  =  f\ng\t:h", []Property{{"a", "b", 1}, {"c", "d", 2}, {"e", "f", 3}, {"g", "h", 4}}},
		{"comments", "# x=y\n  ! z=w\n\n   \na=1", []Property{{"a", "1", 5}}},
		{"key only", "lonely\nk=", []Property{{"lonely", "", 1}, {"k", "", 2}}},
		{"continuation", "a=one \\\n    two\\\n three\nb=2", []Property{{"a", "one twothree", 1}, {"b", "2", 4}}},
		{"even backslashes do not continue", "a=x\\\\\nb=y", []Property{{"a", `x\`, 1}, {"b", "y", 2}}},
		{"comment does not continue", "#a\\\nb=c", []Property{{"b", "c", 2}}},
		{"continued line starting with hash", "a=1\\\n#2", []Property{{"a", "1#2", 1}}},
		{"escapes", `a=\t\n\r\f\u0041\:\=\ x\q`, []Property{{"a", "\t\n\r\fA:= xq", 1}}},
		{"escaped separator in key", `a\=b=c` + "\n" + `d\ e f`, []Property{{"a=b", "c", 1}, {"d e", "f", 2}}},
		{"second separator is value", "a==b\nc::d\ne = = f", []Property{{"a", "=b", 1}, {"c", ":d", 2}, {"e", "= f", 3}}},
		{"CR and CRLF", "a=1\rb=2\r\nc=3", []Property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}}},
		{"trailing backslash at EOF", "a=1\\", []Property{{"a", "1", 1}}},
		{"surrogate pair", `a=\uD83D\uDE00`, []Property{{"a", "😀", 1}}},
		{"utf8 kept", "dataDir=/data/zoé", []Property{{"dataDir", "/data/zoé", 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProperties(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParsePropertiesMalformed(t *testing.T) {
	for _, in := range []string{"a=1\nb=\\u12", "a=1\n\n c=\\uZZZZ"} {
		_, err := ParseProperties(in)
		var le *LineError
		if !errors.As(err, &le) {
			t.Fatalf("%q: err = %v, want a LineError", in, err)
		}
		wantLine := strings.Count(in, "\n") + 1
		if le.Line != wantLine {
			t.Errorf("%q: line %d, want %d", in, le.Line, wantLine)
		}
	}
}

const fullCfg = `# a zoo.cfg using every key Paddock knows
tickTime=1000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
dataLogDir=/var/lib/zookeeper-log
clientPort=2281
clientPortAddress=127.0.0.1
secureClientPort=2282
secureClientPortAddress=0.0.0.0
maxClientCnxns=10
maxCnxns=100
minSessionTimeout=3000
maxSessionTimeout=30000
autopurge.snapRetainCount=1
autopurge.purgeInterval=24
4lw.commands.whitelist=ruok, mntr ,srvr
admin.enableServer=false
admin.serverAddress=127.0.0.1
admin.serverPort=9090
standaloneEnabled=false
reconfigEnabled=true
server.1=zk1:2888:3888;2181
server.2=zk2:2888:3888:participant;10.0.0.2:2181
server.3=[::1]:2888:3888:observer
jute.maxbuffer=4194304
globalOutstandingLimit=50
skipACL=yes
zookeeper.extendedTypesEnabled=false
enforceQuota=true
DigestAuthenticationProvider.superDigest=super:abc=
ssl.keyStore.location=/etc/zk/server.pem
ssl.keyStore.type=PEM
ssl.keyStore.password=secret
ssl.trustStore.location=/etc/zk/ca.pem
ssl.clientAuth=want
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
readonlymode.enabled=true
snapCount=5000
metricsProvider.httpPort=7000
someUnknownKey=1
`

func TestParseFull(t *testing.T) {
	c, err := Parse(fullCfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"TickTime": time.Second, "InitLimit": 10, "SyncLimit": 5,
		"DataDir": "/var/lib/zookeeper", "DataLogDir": "/var/lib/zookeeper-log",
		"ClientPort": 2281, "ClientPortAddress": "127.0.0.1", "SecureClientPort": 2282,
		"MaxClientCnxns": 10, "MaxCnxns": 100, "GlobalOutstandingLimit": 50,
		"MinSessionTimeout": 3 * time.Second, "MaxSessionTimeout": 30 * time.Second,
		"SnapRetainCount": 3, "PurgeInterval": 24, "SnapCount": 5000,
		"FourLetterWhitelist": []string{"ruok", "mntr", "srvr"},
		"AdminEnabled":        false, "AdminAddress": "127.0.0.1", "AdminPort": 9090,
		"StandaloneEnabled": false, "ReconfigEnabled": true, "JuteMaxBuffer": 4194304,
		"SkipACL": true, "ExtendedTypes": false, "EnforceQuota": true, "ReadOnlyMode": true,
		"SuperDigest": "super:abc=",
	}
	v := reflect.ValueOf(c).Elem()
	for name, w := range want {
		if got := v.FieldByName(name).Interface(); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	wantTLS := TLS{CertFile: "/etc/zk/server.pem", KeyFile: "/etc/zk/server.pem", KeyPassword: "secret",
		CAFile: "/etc/zk/ca.pem", KeyStoreType: "PEM", ClientAuth: "want", HostnameVerification: true}
	if c.TLS != wantTLS {
		t.Errorf("TLS = %+v, want %+v", c.TLS, wantTLS)
	}
	if c.AuthProviders["1"] != "org.apache.zookeeper.server.auth.SASLAuthenticationProvider" {
		t.Errorf("AuthProviders = %v", c.AuthProviders)
	}
	wantServers := []ServerSpec{
		{ID: 1, Host: "zk1", PeerPort: 2888, ElectionPort: 3888, ClientPort: 2181, Line: 23},
		{ID: 2, Host: "zk2", PeerPort: 2888, ElectionPort: 3888, ClientAddr: "10.0.0.2", ClientPort: 2181, Line: 24},
		{ID: 3, Host: "::1", PeerPort: 2888, ElectionPort: 3888, Observer: true, Line: 25},
	}
	if !reflect.DeepEqual(c.Servers, wantServers) {
		t.Errorf("Servers = %+v\nwant %+v", c.Servers, wantServers)
	}
	if got := c.ClientAddr(); got != "127.0.0.1:2281" {
		t.Errorf("ClientAddr = %q", got)
	}
	if !c.IsSet("extendedTypesEnabled") || c.IsSet("zookeeper.extendedTypesEnabled") {
		t.Error("zookeeper.extendedTypesEnabled should be recorded as extendedTypesEnabled")
	}
	ignored := map[string]Status{}
	for _, n := range c.Ignored() {
		if _, dup := ignored[n.Key]; dup {
			t.Errorf("%s reported twice", n.Key)
		}
		ignored[n.Key] = n.Status
	}
	if _, ok := ignored["server.1"]; ok {
		t.Error("server.1 reported as not honoured: server.N lines make the ensemble")
	}
	for _, k := range []string{"initLimit", "syncLimit", "dataLogDir", "autopurge.purgeInterval",
		"ssl.keyStore.password", "metricsProvider.httpPort", "authProvider.1"} {
		if ignored[k] != NotHonoured {
			t.Errorf("%s: status %v, want parsed-not-honoured", k, ignored[k])
		}
	}
	if st, ok := ignored["someUnknownKey"]; !ok || st != Unknown {
		t.Errorf("someUnknownKey: %v %v", st, ok)
	}
	for _, k := range []string{"tickTime", "clientPort", "maxClientCnxns", "4lw.commands.whitelist", "jute.maxbuffer",
		"enforceQuota", "zookeeper.extendedTypesEnabled", "admin.serverPort", "snapCount", "secureClientPort", "ssl.keyStore.location", "ssl.clientAuth", "readonlymode.enabled"} {
		if _, ok := ignored[k]; ok {
			t.Errorf("%s is honoured but reported as ignored", k)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("tickTime=2000\ndataDir=/d\nclientPort=2181\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.MinSessionTimeout != 4*time.Second || c.MaxSessionTimeout != 40*time.Second {
		t.Errorf("session timeouts %v/%v", c.MinSessionTimeout, c.MaxSessionTimeout)
	}
	if c.MaxClientCnxns != 60 || c.GlobalOutstandingLimit != 1000 || c.AdminPort != 8080 || !c.AdminEnabled {
		t.Errorf("defaults: %+v", c)
	}
	if c.DataLogDir != "/d" || c.FourLetterWhitelist != nil || !c.ExtendedTypes {
		t.Errorf("defaults: %+v", c)
	}
	if c.ClientAddr() != ":2181" || c.AdminAddr() != ":8080" {
		t.Errorf("addrs %q %q", c.ClientAddr(), c.AdminAddr())
	}
	if n := c.Ignored(); len(n) != 0 {
		t.Errorf("ignored: %+v", n)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in, want string
		line     int
	}{
		{"tickTime=2000\ndataDir=/d\nclientPort=abc\n", "clientPort", 3},
		{"tickTime=2000\ndataDir=/d\nclientPort=70000\n", "out of range", 3},
		{"tickTime=x\ndataDir=/d\n", "tickTime", 1},
		{"dataDir=/d\nclientPort=1\n", "tickTime is not set", 0},
		{"tickTime=1\nclientPort=1\n", "dataDir is not set", 0},
		{"tickTime=2000\ndataDir=/d\nclientPortAddress=1.2.3.4\n", "clientPortAddress is set but clientPort is not set", 3},
		{"tickTime=2000\ndataDir=/d\nsecureClientPortAddress=1.2.3.4\n", "secureClientPortAddress is set", 3},
		{"tickTime=2000\ndataDir=/d\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n", "must not be larger", 4},
		{"tickTime=2000\ndataDir=/d\nstandaloneEnabled=yes\n", "Choose 'true' or 'false.'", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1:1\n", "must be different", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1\n", "does not have the form", 3},
		{"tickTime=2000\ndataDir=/d\nserver.x=h:1:2\n", "not a number", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1:2:leader\n", "Unrecognised peertype", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1:2;a:b:3\n", "does not have the form", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1:2|i:1:2\n", "Multiple address feature is disabled", 3},
		{"tickTime=2000\ndataDir=/d\nserver.1=h:1:2:observer\n", "Observers w/o participants", 0},
		{"tickTime=2000\ndataDir=/d\nssl.clientAuth=maybe\n", "ssl.clientAuth", 3},
		{"tickTime=2000\ndataDir=/d\nssl.keyStore.type=JKS\n", "PEM", 3},
		{"tickTime=2000\ndataDir=/d\njute.maxbuffer=-1\n", "jute.maxbuffer", 3},
		{"tickTime=2000\ndataDir=/d\n\nx=\\u00\n", "malformed", 4},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("%q: no error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %q, want it to mention %q", tc.in, err, tc.want)
		}
		var le *LineError
		if tc.line > 0 && (!errors.As(err, &le) || le.Line != tc.line) {
			t.Errorf("%q: err %v, want line %d", tc.in, err, tc.line)
		}
	}
}

func TestMultiAddress(t *testing.T) {
	c, err := Parse("tickTime=2000\ndataDir=/d\nmultiAddress.enabled=true\nserver.1=h:1:2|i:1:2\nserver.2=j:1:2\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Servers[0].Host != "h" {
		t.Errorf("servers %+v", c.Servers)
	}
}

func TestLoadReadsMyIDAndDynamicFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "myid"), []byte("2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "zoo.cfg.dynamic.100000000"), []byte("server.1=a:2888:3888:participant;2181\nserver.2=b:2888:3888:participant;0.0.0.0:2182\nversion=100000000\n"), 0o644)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	os.WriteFile(cfgPath, []byte("tickTime=2000\ndataDir="+data+"\ndynamicConfigFile="+filepath.Join(dir, "zoo.cfg.dynamic.100000000")+"\n"), 0o644)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.MyID != 2 || len(c.Servers) != 2 {
		t.Fatalf("myid %d servers %+v", c.MyID, c.Servers)
	}
	if got := c.ClientAddr(); got != ":2182" {
		t.Errorf("ClientAddr from server.2 = %q", got)
	}

	os.WriteFile(filepath.Join(data, "myid"), []byte("two\n"), 0o644)
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("bad myid: %v", err)
	}
	os.WriteFile(cfgPath, []byte("tickTime=2000\n\nclientPort=x\ndataDir=/d\n"), 0o644)
	_, err = Load(cfgPath)
	if err == nil || !strings.HasPrefix(err.Error(), cfgPath+":3: clientPort") {
		t.Errorf("error %v should start with %s:3: clientPort", err, cfgPath)
	}
}

// TestDebianZooCfg parses the zoo.cfg Debian's zookeeper package ships.
func TestDebianZooCfg(t *testing.T) {
	const path = "/etc/zookeeper/conf/zoo.cfg"
	if _, err := os.Stat(path); err != nil {
		t.Skip("Debian's zookeeper package is not installed")
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientPort == 0 || c.DataDir == "" {
		t.Errorf("%+v", c)
	}
}

func TestWriteSettingsRoundTrip(t *testing.T) {
	in := []Setting{{"a", " lead"}, {"b", `x\y`}, {"c", "multi\nline"}, {"d", "plain"}}
	var b strings.Builder
	WriteSettings(&b, in)
	props, err := ParseProperties(b.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range props {
		if p.Key != in[i].Key || p.Value != in[i].Value {
			t.Errorf("%d: %q=%q, want %q=%q", i, p.Key, p.Value, in[i].Key, in[i].Value)
		}
	}
}
