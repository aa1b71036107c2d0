package cli

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ls /", []string{"ls", "/"}},
		{"  get   -s  /a  ", []string{"get", "-s", "/a"}},
		{`create /a "hello world"`, []string{"create", "/a", "hello world"}},
		{`create /a 'it is' world:anyone:r`, []string{"create", "/a", "it is", "world:anyone:r"}},
		{`create /a ""`, []string{"create", "/a", ""}},
		{`set /a x"y`, []string{"set", "/a", `x"y`}},
		{`set /a "unclosed`, []string{"set", "/a", "unclosed"}},
		{"", nil},
		{"   ", nil},
	} {
		if got := SplitLine(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	spec := optSpec{"s": false, "e": false, "v": true, "members": true}
	for _, tc := range []struct {
		in      string
		args    []string
		opts    map[string]string
		wantErr string
	}{
		{in: "c -s /a", args: []string{"c", "/a"}, opts: map[string]string{"s": ""}},
		{in: "c /a -s", args: []string{"c", "/a"}, opts: map[string]string{"s": ""}},
		{in: "c -se /a", args: []string{"c", "/a"}, opts: map[string]string{"s": "", "e": ""}},
		{in: "c -v 3 /a", args: []string{"c", "/a"}, opts: map[string]string{"v": "3"}},
		{in: "c -v3 /a", args: []string{"c", "/a"}, opts: map[string]string{"v": "3"}},
		{in: "c -v -1 /a", args: []string{"c", "/a"}, opts: map[string]string{"v": "-1"}},
		{in: "c -members a=1,b=2", args: []string{"c"}, opts: map[string]string{"members": "a=1,b=2"}},
		{in: "c -- -s", args: []string{"c", "-s"}, opts: map[string]string{}},
		{in: "c /a -", args: []string{"c", "/a", "-"}, opts: map[string]string{}},
		{in: "c /a -1", wantErr: "Unrecognized option: -1"},
		{in: "c -x /a", wantErr: "Unrecognized option: -x"},
		{in: "c /a -v", wantErr: "Missing argument for option: v"},
		{in: "c -v -s /a", wantErr: "Missing argument for option: v"},
	} {
		p, err := parseOptions(spec, strings.Fields(tc.in))
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(p.args, tc.args) || !reflect.DeepEqual(p.opts, tc.opts) {
			t.Errorf("%q: args %q opts %v, want %q %v", tc.in, p.args, p.opts, tc.args, tc.opts)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/", ""},
		{"/a/b", ""},
		{"", "Path length must be > 0"},
		{"a", "Path must start with / character"},
		{"/a/", "Path must not end with / character"},
		{"/a//b", `Invalid path string "/a//b" caused by empty node name specified @3`},
		{"/a/./b", `Invalid path string "/a/./b" caused by relative paths not allowed @3`},
		{"/a/..", `Invalid path string "/a/.." caused by relative paths not allowed @4`},
		{"/a\x01", `Invalid path string "/a\x01" caused by invalid character @2`},
		{"/a.b", ""},
	} {
		err := validatePath(tc.path)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("validatePath(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestStatsTrack(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"count=2,bytes=-1", "count=2,bytes=-1"},
		{"count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=5", "count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=5"},
		{"", "count=-1,bytes=-1"},
	} {
		if got := parseStatsTrack(tc.in).String(); got != tc.out {
			t.Errorf("statsTrack(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
}

func TestClientConfigString(t *testing.T) {
	cfg := "server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181\nserver.1=10.0.0.1:2888:3888:participant;2181\nversion=100000003"
	if got, want := clientConfigString(cfg), "100000003 0.0.0.0:2181,0.0.0.0:2181"; got != want {
		t.Errorf("clientConfigString = %q, want %q", got, want)
	}
	if got := clientConfigString(""); got != " " {
		t.Errorf("clientConfigString(\"\") = %q", got)
	}
}

// recorder is a Backend that records the requests a command makes; the
// methods a test does not expect panic through the nil embedded interface.
type recorder struct {
	Backend
	calls []string
}

func (r *recorder) rec(format string, a ...any) { r.calls = append(r.calls, fmt.Sprintf(format, a...)) }
func (r *recorder) State() State                { return StateConnected }
func (r *recorder) TryEvent() (Event, bool)     { return Event{}, false }
func (r *recorder) Close() error                { return nil }
func (r *recorder) Create(_ context.Context, p string, d []byte, acl []proto.ACL, mode int32, ttl int64) (string, error) {
	var as []string
	for _, a := range acl {
		as = append(as, a.Id.Scheme+":"+a.Id.Id+":"+permString(a.Perms))
	}
	dd := "null"
	if d != nil {
		dd = fmt.Sprintf("%q", d)
	}
	r.rec("create %s %s [%s] mode=%d ttl=%d", p, dd, strings.Join(as, ","), mode, ttl)
	if mode == proto.ModePersistentSequential || mode == proto.ModeEphemeralSequential || mode == proto.ModePersistentSequentialTTL {
		p += "0000000000"
	}
	return p, nil
}
func (r *recorder) Set(_ context.Context, p string, d []byte, v int32) (proto.Stat, error) {
	r.rec("set %s %q v=%d", p, d, v)
	return proto.Stat{}, nil
}
func (r *recorder) Delete(_ context.Context, p string, v int32) error {
	r.rec("delete %s v=%d", p, v)
	return nil
}
func (r *recorder) Get(_ context.Context, p string, w bool) ([]byte, proto.Stat, error) {
	r.rec("get %s w=%v", p, w)
	return []byte("d"), proto.Stat{}, nil
}
func (r *recorder) Exists(_ context.Context, p string, w bool) (*proto.Stat, error) {
	r.rec("exists %s w=%v", p, w)
	return &proto.Stat{}, nil
}
func (r *recorder) Children(_ context.Context, p string, w bool) ([]string, proto.Stat, error) {
	r.rec("children %s w=%v", p, w)
	return nil, proto.Stat{}, nil
}
func (r *recorder) SetACL(_ context.Context, p string, acl []proto.ACL, v int32) (proto.Stat, error) {
	r.rec("setAcl %s n=%d v=%d", p, len(acl), v)
	return proto.Stat{}, nil
}
func (r *recorder) AddWatch(_ context.Context, p string, mode int32) error {
	r.rec("addWatch %s mode=%d", p, mode)
	return nil
}
func (r *recorder) RemoveWatches(_ context.Context, p string, wt int32, local bool) error {
	r.rec("removeWatches %s type=%d local=%v", p, wt, local)
	return nil
}
func (r *recorder) Reconfig(_ context.Context, j, l, m string, v int64) ([]byte, proto.Stat, error) {
	r.rec("reconfig join=%q leave=%q members=%q v=%d", j, l, m, v)
	return []byte("version=1"), proto.Stat{}, nil
}
func (r *recorder) AddAuth(_ context.Context, scheme string, auth []byte) error {
	r.rec("addauth %s %q", scheme, auth)
	return nil
}

// TestCommandParsing runs command lines against a recording backend and
// checks the request each one makes, or the message and exit code of a
// malformed one.
func TestCommandParsing(t *testing.T) {
	for _, tc := range []struct {
		line   string
		calls  []string // the requests made, in order
		stderr string   // a line stderr must contain
		code   int
	}{
		{line: "create /a", calls: []string{"create /a null [world:anyone:cdrwa] mode=0 ttl=0"}, stderr: "Created /a"},
		{line: "create /a data", calls: []string{`create /a "data" [world:anyone:cdrwa] mode=0 ttl=0`}},
		{line: `create /a "two words"`, calls: []string{`create /a "two words" [world:anyone:cdrwa] mode=0 ttl=0`}},
		{line: "create -e /a", calls: []string{"create /a null [world:anyone:cdrwa] mode=1 ttl=0"}},
		{line: "create -s /a-", calls: []string{"create /a- null [world:anyone:cdrwa] mode=2 ttl=0"}, stderr: "Created /a-0000000000"},
		{line: "create -s -e /a-", calls: []string{"create /a- null [world:anyone:cdrwa] mode=3 ttl=0"}},
		{line: "create -c /a", calls: []string{"create /a null [world:anyone:cdrwa] mode=4 ttl=0"}},
		{line: "create -t 500 /a", calls: []string{"create /a null [world:anyone:cdrwa] mode=5 ttl=500"}},
		{line: "create -s -t 500 /a", calls: []string{"create /a null [world:anyone:cdrwa] mode=6 ttl=500"}},
		{line: "create /a x world:anyone:r,digest:u:h:cdrwa", calls: []string{`create /a "x" [world:anyone:r,digest:u:h:cdrwa] mode=0 ttl=0`}},
		{line: "create /a x world:anyone:rz", calls: []string{`create /a "x" [world:anyone:r] mode=0 ttl=0`}, stderr: "Unknown perm type: z"},
		{line: "create /a x bad", stderr: "Acl is not valid : null", code: exitZooKeeper},
		{line: "create -c -e /a", stderr: "-c cannot be combined with -s or -e", code: exitUsage},
		{line: "create -t x /a", stderr: "-t argument must be a long value", code: exitUsage},
		{line: "create -e -t 5 /a", stderr: "TTLs cannot be used with Ephemeral znodes", code: exitUsage},
		{line: "create -c -t 5 /a", stderr: "TTLs cannot be used with Container znodes", code: exitUsage},
		{line: "create -t 0 /a", stderr: "ttl must be positive and cannot be larger than: 1099511627775", code: exitUsage},
		{line: "create", stderr: "create [-s] [-e] [-c] [-t ttl] path [data] [acl]", code: exitUsage},
		{line: "create a", stderr: "Path must start with / character", code: exitUsage},
		{line: "create -s /a/", calls: []string{"create /a/ null [world:anyone:cdrwa] mode=2 ttl=0"}},
		{line: "set /a v", calls: []string{`set /a "v" v=-1`}},
		{line: "set -v 3 /a v", calls: []string{`set /a "v" v=3`}},
		{line: "set -v x /a v", stderr: "-v argument must be an int value", code: exitUsage},
		{line: "set /a", stderr: "set [-s] [-v version] path data", code: exitUsage},
		{line: "set /a -1", stderr: "Unrecognized option: -1", code: exitUsage},
		{line: "delete /a", calls: []string{"delete /a v=-1"}},
		{line: "delete -v 2 /a", calls: []string{"delete /a v=2"}},
		{line: "delete /a 2", calls: []string{"delete /a v=-1"}, stderr: "'delete path [version]' has been deprecated"},
		{line: "get /a", calls: []string{"get /a w=false"}},
		{line: "get -w -s /a", calls: []string{"get /a w=true"}},
		{line: "get /a watch", calls: []string{"get /a w=true"}, stderr: "'get path [watch]' has been deprecated"},
		{line: "get", stderr: "get [-s] [-w] path", code: exitUsage},
		{line: "ls -w /a", calls: []string{"children /a w=true"}},
		{line: "ls -R /a", calls: []string{"get /a w=false", "children /a w=false"}},
		{line: "ls", stderr: "ls [-s] [-w] [-R] path", code: exitUsage},
		{line: "ls /a/", stderr: "Path must not end with / character", code: exitUsage},
		{line: "stat -w /a", calls: []string{"exists /a w=true"}},
		{line: "setAcl /a world:anyone:r", calls: []string{"setAcl /a n=1 v=-1"}},
		{line: "setAcl -v 4 /a world:anyone:r", calls: []string{"setAcl /a n=1 v=4"}},
		{line: "setAcl -R /a world:anyone:r", calls: []string{"get /a w=false", "setAcl /a n=1 v=-1", "children /a w=false"}},
		{line: "addWatch /a", calls: []string{"addWatch /a mode=1"}},
		{line: "addWatch -m persistent /a", calls: []string{"addWatch /a mode=0"}},
		{line: "addWatch -m PERSISTENT_RECURSIVE /a", calls: []string{"addWatch /a mode=1"}},
		{line: "addWatch -m bogus /a", stderr: "addWatch [-m mode] path", code: exitUsage},
		{line: "removewatches /a", calls: []string{"removeWatches /a type=3 local=false"}},
		{line: "removewatches /a -c", calls: []string{"removeWatches /a type=1 local=false"}},
		{line: "removewatches /a -d -l", calls: []string{"removeWatches /a type=2 local=true"}},
		{line: "deleteall /a -b x", stderr: "-b argument must be an int value", code: exitUsage},
		{line: "addauth digest u:p", calls: []string{`addauth digest "u:p"`}},
		{line: "reconfig -add server.4=h:1:2;3", calls: []string{`reconfig join="server.4=h:1:2;3" leave="" members="" v=-1`}},
		{line: "reconfig -remove 3 -v 1a", calls: []string{`reconfig join="" leave="3" members="" v=26`}},
		{line: "reconfig -members server.1=H:1:2;3", calls: []string{`reconfig join="" leave="" members="server.1=h:1:2;3" v=-1`}},
		{line: "reconfig", stderr: "reconfig [-s] [-v version]", code: exitUsage},
		{line: "reconfig -add x -members y", stderr: "Can't use -file or -members together with -add or -remove", code: exitUsage},
		{line: "reconfig -add x -v zz", stderr: "-v must be followed by a long (configuration version)", code: exitUsage},
		{line: "setquota /a", stderr: "Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]", code: exitUsage},
		{line: "setquota -n 1 -b 2 /a", stderr: "The option 'b' was specified but an option from this group has already been selected: 'n'", code: exitUsage},
		{line: "setquota -n 0 /a", stderr: "the num quota must be greater than zero", code: exitUsage},
		{line: "setquota -n 1 /zookeeper/quota/x", stderr: "cannot set a quota under the path: /zookeeper/quota", code: exitUsage},
		{line: "getAllChildrenNumber", stderr: "getAllChildrenNumber path", code: exitUsage},
		{line: "nosuch /a", stderr: "Command not found: nosuch", code: exitNotFound},
		{line: "redo 5", stderr: "Command index out of range", code: exitUsage},
	} {
		t.Run(tc.line, func(t *testing.T) {
			var out, errb bytes.Buffer
			rec := &recorder{}
			sh := NewShell(Config{Stdout: &out, Stderr: &errb, Dial: func(string) (Backend, error) { return rec, nil }})
			if err := sh.Connect(false); err != nil {
				t.Fatal(err)
			}
			code := sh.RunCommand(SplitLine(tc.line))
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !reflect.DeepEqual(rec.calls, tc.calls) {
				t.Errorf("calls %q, want %q", rec.calls, tc.calls)
			}
			if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.stderr)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		code proto.ErrCode
		want string
	}{
		{proto.ErrNoNode, "Node does not exist: /p"},
		{proto.ErrNodeExists, "Node already exists: /p"},
		{proto.ErrNotEmpty, "Node not empty: /p"},
		{proto.ErrBadVersion, "version No is not valid : /p"},
		{proto.ErrNoAuth, "Insufficient permission : /p"},
		{proto.ErrInvalidACL, "Acl is not valid : /p"},
		{proto.ErrNoChildrenForEphemerals, "Ephemerals cannot have children: /p"},
		{proto.ErrQuotaExceeded, "Quota has exceeded : /p"},
		{proto.ErrBadArguments, "Arguments are not valid : /p"},
		{proto.ErrNotReadOnly, "Not a read-only call: /p"},
		{proto.ErrNoWatcher, "KeeperErrorCode = No such watcher for /p"},
		{proto.ErrConnectionLoss, "KeeperErrorCode = ConnectionLoss for /p"},
		{proto.ErrSessionExpired, "KeeperErrorCode = Session expired for /p"},
		{proto.ErrUnimplemented, "KeeperErrorCode = Unimplemented for /p"},
		{proto.ErrReconfigDisabled, "KeeperErrorCode = Reconfig is disabled for /p"},
		{proto.ErrCode(-999), "KeeperErrorCode = Unknown error -999 for /p"},
	} {
		if got := (&zkError{code: tc.code, path: "/p"}).Error(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestComplete(t *testing.T) {
	sh := NewShell(Config{})
	head, got, tail := sh.Complete("getE", 4)
	if head != "" || tail != "" || !reflect.DeepEqual(got, []string{"getEphemerals "}) {
		t.Errorf("Complete(getE) = %q %q %q", head, got, tail)
	}
	_, got, _ = sh.Complete("del", 3)
	if !reflect.DeepEqual(got, []string{"delete ", "deleteall ", "delquota "}) {
		t.Errorf("Complete(del) = %q", got)
	}
	if _, got, _ := sh.Complete("ls -s", 5); got != nil {
		t.Errorf("Complete(ls -s) = %q", got)
	}
}
