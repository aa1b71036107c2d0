package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// command is one shell command: its name, zkCli's option string (the
// usage shown by help and on misuse), its options, and what it does.
type command struct {
	name  string
	usage string
	opts  optSpec
	// minArgs is the least number of words (the command name included)
	// below which the usage is reported as a parse error.
	minArgs int
	// local commands do not need a live session.
	local bool
	run   func(sh *Shell, ctx context.Context, p *parsed) error
}

func (c *command) usageLine() string { return c.name + " " + c.usage }

var commands map[string]*command

func commandTable() map[string]*command {
	if commands == nil {
		commands = buildCommands()
	}
	return commands
}

func buildCommands() map[string]*command {
	list := []*command{
		{name: "ls", usage: "[-s] [-w] [-R] path", opts: optSpec{"s": false, "w": false, "R": false, "?": false}, run: cmdLs},
		{name: "get", usage: "[-s] [-w] path", opts: optSpec{"s": false, "w": false}, minArgs: 2, run: cmdGet},
		{name: "set", usage: "[-s] [-v version] path data", opts: optSpec{"s": false, "v": true}, minArgs: 3, run: cmdSet},
		{name: "create", usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]", opts: optSpec{"s": false, "e": false, "c": false, "t": true}, minArgs: 2, run: cmdCreate},
		{name: "delete", usage: "[-v version] path", opts: optSpec{"v": true}, minArgs: 2, run: cmdDelete},
		{name: "deleteall", usage: "path [-b batch size]", opts: optSpec{"b": true}, minArgs: 2, run: cmdDeleteAll},
		{name: "stat", usage: "[-w] path", opts: optSpec{"w": false}, minArgs: 2, run: cmdStat},
		{name: "getAcl", usage: "[-s] path", opts: optSpec{"s": false}, minArgs: 2, run: cmdGetACL},
		{name: "setAcl", usage: "[-s] [-v version] [-R] path acl", opts: optSpec{"s": false, "v": true, "R": false}, minArgs: 3, run: cmdSetACL},
		{name: "addauth", usage: "scheme auth", minArgs: 2, run: cmdAddAuth},
		{name: "sync", usage: "path", minArgs: 2, run: cmdSync},
		{name: "config", usage: "[-c] [-w] [-s]", opts: optSpec{"c": false, "w": false, "s": false}, run: cmdConfig},
		{name: "reconfig", usage: "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
			opts: optSpec{"s": false, "v": true, "file": true, "members": true, "add": true, "remove": true}, run: cmdReconfig},
		{name: "addWatch", usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE", opts: optSpec{"m": true}, run: cmdAddWatch},
		{name: "removewatches", usage: "path [-c|-d|-a] [-l]", opts: optSpec{"c": false, "d": false, "a": false, "l": false}, minArgs: 2, run: cmdRemoveWatches},
		{name: "getEphemerals", usage: "path", run: cmdGetEphemerals},
		{name: "getAllChildrenNumber", usage: "path", run: cmdGetAllChildrenNumber},
		{name: "whoami", usage: "", run: cmdWhoAmI},
		{name: "setquota", usage: "-n|-b|-N|-B val path", opts: optSpec{"n": true, "b": true, "N": true, "B": true}, run: cmdSetQuota},
		{name: "listquota", usage: "path", minArgs: 2, run: cmdListQuota},
		{name: "delquota", usage: "[-n|-b|-N|-B] path", opts: optSpec{"n": false, "b": false, "N": false, "B": false}, minArgs: 2, run: cmdDelQuota},
		{name: "close", usage: "", local: true, run: cmdClose},
		{name: "version", usage: "", local: true, run: cmdVersion},
		{name: "connect", usage: "host:port", local: true, run: cmdConnect},
		{name: "history", usage: "", local: true, run: cmdHistory},
		{name: "redo", usage: "cmdno", local: true, run: cmdRedo},
		{name: "printwatches", usage: "on|off", local: true, run: cmdPrintWatches},
		{name: "quit", usage: "", local: true, run: cmdQuit},
		{name: "exit", usage: "", local: true, run: cmdQuit},
		{name: "help", usage: "", local: true, run: cmdHelp},
	}
	m := map[string]*command{}
	for _, c := range list {
		m[c.name] = c
	}
	return m
}

// zkError is a failed ZooKeeper request, worded as zkCli's
// CliWrapperException words it.
type zkError struct {
	code proto.ErrCode
	path string
	// noPath marks an error the Java client raises without a path
	// ("Acl is not valid : null").
	noPath bool
}

func (e *zkError) Unwrap() error { return e.code }

// codeMessage is KeeperException.getCodeMessage.
func codeMessage(c proto.ErrCode) string {
	switch c {
	case proto.ErrOK:
		return "ok"
	case proto.ErrNotEmpty:
		return "Directory not empty"
	case proto.ErrSessionExpired:
		return "Session expired"
	case proto.ErrInvalidCallback:
		return "Invalid callback"
	case proto.ErrSessionMoved:
		return "Session moved"
	case proto.ErrNotReadOnly:
		return "Not a read-only call"
	case proto.ErrEphemeralOnLocalSession:
		return "Ephemeral node on local session"
	case proto.ErrNoWatcher:
		return "No such watcher"
	case proto.ErrReconfigDisabled:
		return "Reconfig is disabled"
	case proto.ErrSessionClosedRequireSASL:
		return "Session closed because client failed to authenticate"
	case proto.ErrQuotaExceeded:
		return "Quota has exceeded"
	case proto.ErrThrottledOp:
		return "Op throttled due to high load"
	}
	s := c.String()
	if strings.HasPrefix(s, "ErrCode(") {
		return fmt.Sprintf("Unknown error %d", int32(c))
	}
	return s
}

// keeperMessage is KeeperException.getMessage.
func (e *zkError) keeperMessage() string {
	if e.path == "" || e.noPath {
		return "KeeperErrorCode = " + codeMessage(e.code)
	}
	return "KeeperErrorCode = " + codeMessage(e.code) + " for " + e.path
}

func (e *zkError) Error() string {
	p := e.path
	if e.noPath {
		p = "null"
	}
	switch e.code {
	case proto.ErrNoNode:
		return "Node does not exist: " + p
	case proto.ErrNoChildrenForEphemerals:
		return "Ephemerals cannot have children: " + p
	case proto.ErrNodeExists:
		return "Node already exists: " + p
	case proto.ErrNotEmpty:
		return "Node not empty: " + p
	case proto.ErrNotReadOnly:
		return "Not a read-only call: " + p
	case proto.ErrInvalidACL:
		return "Acl is not valid : " + p
	case proto.ErrNoAuth:
		return "Insufficient permission : " + p
	case proto.ErrBadArguments:
		return "Arguments are not valid : " + p
	case proto.ErrBadVersion:
		return "version No is not valid : " + p
	case proto.ErrReconfigInProgress:
		return "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
	case proto.ErrNewConfigNoQuorum:
		return "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced"
	case proto.ErrQuotaExceeded:
		return "Quota has exceeded : " + p
	}
	return e.keeperMessage()
}

// connectionCode reports whether c means the session, not the request,
// is in trouble.
func connectionCode(c proto.ErrCode) bool {
	switch c {
	case proto.ErrConnectionLoss, proto.ErrSessionExpired, proto.ErrAuthFailed, proto.ErrSessionMoved,
		proto.ErrOperationTimeout, proto.ErrSessionClosedRequireSASL, proto.ErrRequestTimeout:
		return true
	}
	return false
}

// wrap turns a backend error for path into the shell's error.
func wrap(err error, path string) error {
	if err == nil {
		return nil
	}
	if c, ok := errCode(err); ok {
		return &zkError{code: c, path: path}
	}
	return err
}

// exitFor is the exit code for a ZooKeeper error code.
func exitFor(c proto.ErrCode) int {
	if connectionCode(c) {
		return exitConnection
	}
	return exitZooKeeper
}

// cliError is any other failure, with its message and exit code.
type cliError struct {
	msg  string
	code int
}

func (e *cliError) Error() string { return e.msg }

func usageErr(c *command) error { return &parseError{c.usageLine()} }

// pathArg returns the command's path (its first argument), checked as
// zkCli's PathUtils.validatePath checks it.
func pathArg(p *parsed) (string, error) {
	path := p.args[1]
	return path, validatePath(path)
}

// versionOpt returns the -v option, or -1 (any version) without it.
func versionOpt(p *parsed) (int32, error) {
	v, ok := p.opts["v"]
	if !ok {
		return -1, nil
	}
	return parseVersion(v)
}

// emit prints a command's result: with -o json the object v, with the
// stat under "stat" when -s is given; otherwise what text prints, then
// the stat with -s, as zkCli prints it.
func (sh *Shell) emit(p *parsed, v map[string]any, stat proto.Stat, text func()) {
	if sh.json {
		if p.has("s") {
			v["stat"] = toJSONStat(stat)
		}
		writeJSON(sh.out, v)
		return
	}
	text()
	if p.has("s") {
		printStat(sh.out, stat)
	}
}

func parseVersion(s string) (int32, error) {
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, &parseError{"-v argument must be an int value"}
	}
	return int32(v), nil
}

// deprecatedWatch handles zkCli's old "cmd path watch" form: a third word
// turns the watch on, with a deprecation notice.
func (sh *Shell) deprecatedWatch(p *parsed, old, now string) {
	if len(p.args) > 2 {
		fmt.Fprintf(sh.errw, "'%s' has been deprecated. Please use '%s' instead.\n", old, now)
		p.opts["w"] = ""
	}
}

func cmdLs(sh *Shell, ctx context.Context, p *parsed) error {
	if p.has("?") {
		fmt.Fprintln(sh.out, "usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch")
	}
	sh.deprecatedWatch(p, "ls path [watch]", "ls [-w] path")
	if len(p.args) < 2 {
		return usageErr(sh.cmd)
	}
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	watch := p.has("w")
	if p.has("R") {
		var paths []string
		emit := func(s string) {
			if sh.json {
				paths = append(paths, s)
			} else {
				fmt.Fprintln(sh.out, s)
			}
		}
		if _, _, err := sh.be.Get(ctx, path, watch); err != nil {
			return wrap(err, path)
		}
		emit(path)
		if err := visitDFS(ctx, sh.be, path, watch, emit); err != nil {
			return err
		}
		if sh.json {
			writeJSON(sh.out, map[string]any{"path": path, "paths": nonNil(paths)})
		}
		return nil
	}
	children, stat, err := sh.be.Children(ctx, path, watch)
	if err != nil {
		return wrap(err, path)
	}
	sort.Strings(children)
	sh.emit(p, map[string]any{"path": path, "children": nonNil(children)}, stat, func() {
		fmt.Fprintf(sh.out, "[%s]\n", strings.Join(children, ", "))
	})
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// parentPath returns the parent of an absolute path ("/" for "/a").
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// visitDFS walks the subtree below path as ZKUtil.visitSubTreeDFS does:
// all children of a node (sorted) first, then each child's subtree. Nodes
// that vanish during the walk are skipped.
func visitDFS(ctx context.Context, be Backend, path string, watch bool, fn func(string)) error {
	children, _, err := be.Children(ctx, path, watch)
	if c, ok := errCode(err); ok && c == proto.ErrNoNode {
		return nil
	}
	if err != nil {
		return wrap(err, path)
	}
	sort.Strings(children)
	for _, c := range children {
		fn(joinPath(path, c))
	}
	for _, c := range children {
		if err := visitDFS(ctx, be, joinPath(path, c), watch, fn); err != nil {
			return err
		}
	}
	return nil
}

func cmdGet(sh *Shell, ctx context.Context, p *parsed) error {
	sh.deprecatedWatch(p, "get path [watch]", "get [-s] [-w] path")
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	data, stat, err := sh.be.Get(ctx, path, p.has("w"))
	if err != nil {
		return wrap(err, path)
	}
	d := toJSONData(data)
	v := map[string]any{"path": path, "data": d.Data}
	if d.Base64 != "" {
		v["base64"] = d.Base64
	}
	sh.emit(p, v, stat, func() {
		if data == nil {
			data = []byte("null")
		}
		sh.out.Write(append(data, '\n'))
	})
	return nil
}

func cmdSet(sh *Shell, ctx context.Context, p *parsed) error {
	path := p.args[1]
	version, err := versionOpt(p)
	if err != nil {
		return err
	}
	if err := validatePath(path); err != nil {
		return err
	}
	stat, err := sh.be.Set(ctx, path, []byte(p.args[2]), version)
	if err != nil {
		return wrap(err, path)
	}
	if p.has("s") {
		sh.emit(p, map[string]any{"path": path}, stat, func() {})
	}
	return nil
}

func cmdCreate(sh *Shell, ctx context.Context, p *parsed) error {
	hasE, hasS, hasC, hasT := p.has("e"), p.has("s"), p.has("c"), p.has("t")
	if hasC && (hasE || hasS) {
		return &parseError{"-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential."}
	}
	var ttl int64
	if hasT {
		var err error
		if ttl, err = strconv.ParseInt(p.opts["t"], 10, 64); err != nil {
			return &parseError{"-t argument must be a long value"}
		}
	}
	if hasT && hasE {
		return &parseError{"TTLs cannot be used with Ephemeral znodes"}
	}
	if hasT && hasC {
		return &parseError{"TTLs cannot be used with Container znodes"}
	}
	var mode int32
	switch {
	case hasE && hasS:
		mode = proto.ModeEphemeralSequential
	case hasE:
		mode = proto.ModeEphemeral
	case hasS && hasT:
		mode = proto.ModePersistentSequentialTTL
	case hasS:
		mode = proto.ModePersistentSequential
	case hasC:
		mode = proto.ModeContainer
	case hasT:
		mode = proto.ModePersistentWithTTL
	default:
		mode = proto.ModePersistent
	}
	if hasT && (ttl <= 0 || ttl > proto.MaxTTL) {
		return &parseError{fmt.Sprintf("ttl must be positive and cannot be larger than: %d", proto.MaxTTL)}
	}
	path := p.args[1]
	check := path
	if hasS {
		check += "1"
	}
	if err := validatePath(check); err != nil {
		return err
	}
	var data []byte
	if len(p.args) > 2 {
		data = []byte(p.args[2])
	}
	acl := proto.OpenACLUnsafe
	if len(p.args) > 3 {
		acl = parseACL(p.args[3], sh.errw)
		if len(acl) == 0 {
			// The Java client refuses an empty ACL itself, without a path.
			e := &zkError{code: proto.ErrInvalidACL, noPath: true}
			fmt.Fprintln(sh.errw, e.keeperMessage())
			return e
		}
	}
	created, err := sh.be.Create(ctx, path, data, acl, mode, ttl)
	if err != nil {
		e := wrap(err, path)
		var ze *zkError
		if errors.As(e, &ze) {
			switch ze.code {
			case proto.ErrEphemeralOnLocalSession:
				fmt.Fprintln(sh.errw, "Unable to create ephemeral node on a local session")
			case proto.ErrInvalidACL:
				fmt.Fprintln(sh.errw, ze.keeperMessage())
			}
		}
		return e
	}
	if sh.json {
		writeJSON(sh.out, map[string]any{"created": created})
	} else {
		fmt.Fprintln(sh.errw, "Created "+created)
	}
	return nil
}

func cmdDelete(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) > 2 {
		fmt.Fprintln(sh.errw, "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.")
	}
	path := p.args[1]
	version, err := versionOpt(p)
	if err != nil {
		return err
	}
	if err := validatePath(path); err != nil {
		return err
	}
	return wrap(sh.be.Delete(ctx, path, version), path)
}

func cmdDeleteAll(sh *Shell, ctx context.Context, p *parsed) error {
	batch := 1000
	if v, ok := p.opts["b"]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return &parseError{"-b argument must be an int value"}
		}
		batch = int(n)
	}
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	// Breadth first, then delete from the deepest (ZKUtil.deleteRecursive).
	tree := []string{path}
	for i := 0; i < len(tree); i++ {
		children, _, err := sh.be.Children(ctx, tree[i], false)
		if err != nil {
			return wrap(err, tree[i])
		}
		for _, c := range children {
			tree = append(tree, joinPath(tree[i], c))
		}
	}
	if batch <= 0 {
		for i := len(tree) - 1; i >= 0; i-- {
			if err := sh.be.Delete(ctx, tree[i], -1); err != nil {
				return wrap(err, tree[i])
			}
		}
		return nil
	}
	var ops []string
	ok := true
	for i := len(tree) - 1; i >= 0; i-- {
		ops = append(ops, tree[i])
		if len(ops) == batch || i == 0 {
			if err := sh.be.DeleteMulti(ctx, ops); err != nil {
				ok = false
				break
			}
			ops = nil
		}
	}
	if !ok {
		fmt.Fprintln(sh.errw, "Failed to delete some node(s) in the subtree!")
		return &cliError{code: exitZooKeeper}
	}
	return nil
}

func cmdStat(sh *Shell, ctx context.Context, p *parsed) error {
	sh.deprecatedWatch(p, "stat path [watch]", "stat [-w] path")
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	stat, err := sh.be.Exists(ctx, path, p.has("w"))
	if err != nil {
		return wrap(err, path)
	}
	if stat == nil {
		return &zkError{code: proto.ErrNoNode, path: path}
	}
	if sh.json {
		writeJSON(sh.out, map[string]any{"path": path, "stat": toJSONStat(*stat)})
		return nil
	}
	printStat(sh.out, *stat)
	return nil
}

func cmdGetACL(sh *Shell, ctx context.Context, p *parsed) error {
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	acl, stat, err := sh.be.GetACL(ctx, path)
	if err != nil {
		return wrap(err, path)
	}
	list := []jsonACL{}
	for _, a := range acl {
		list = append(list, jsonACL{a.Id.Scheme, a.Id.Id, permString(a.Perms)})
	}
	sh.emit(p, map[string]any{"path": path, "acl": list}, stat, func() {
		for _, a := range acl {
			fmt.Fprintf(sh.out, "'%s,'%s\n: %s\n", a.Id.Scheme, a.Id.Id, permString(a.Perms))
		}
	})
	return nil
}

func cmdSetACL(sh *Shell, ctx context.Context, p *parsed) error {
	path := p.args[1]
	acl := parseACL(p.args[2], sh.errw)
	version, err := versionOpt(p)
	if err != nil {
		return err
	}
	if err := validatePath(path); err != nil {
		return err
	}
	if p.has("R") {
		if _, _, err := sh.be.Get(ctx, path, false); err != nil {
			return wrap(err, path)
		}
		failed := false
		set := func(q string) {
			if _, err := sh.be.SetACL(ctx, q, acl, version); err != nil {
				failed = true
				if ze, ok := wrap(err, q).(*zkError); ok {
					fmt.Fprintln(sh.out, ze.keeperMessage())
				} else {
					fmt.Fprintln(sh.out, err)
				}
			}
		}
		set(path)
		if err := visitDFS(ctx, sh.be, path, false, set); err != nil {
			return err
		}
		if failed {
			return &cliError{code: exitZooKeeper}
		}
		return nil
	}
	stat, err := sh.be.SetACL(ctx, path, acl, version)
	if err != nil {
		return wrap(err, path)
	}
	if p.has("s") {
		sh.emit(p, map[string]any{"path": path}, stat, func() {})
	}
	return nil
}

func cmdAddAuth(sh *Shell, ctx context.Context, p *parsed) error {
	var auth []byte
	if len(p.args) >= 3 {
		auth = []byte(p.args[2])
	}
	return wrap(sh.be.AddAuth(ctx, p.args[1], auth), "")
}

func cmdSync(sh *Shell, ctx context.Context, p *parsed) error {
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	if err := sh.be.Sync(ctx, path); err != nil {
		if c, ok := errCode(err); ok {
			return &cliError{msg: fmt.Sprintf("Sync has failed. rc=%d", int32(c)), code: exitFor(c)}
		}
		return err
	}
	fmt.Fprintln(sh.out, "Sync is OK")
	return nil
}

func cmdConfig(sh *Shell, ctx context.Context, p *parsed) error {
	data, stat, err := sh.be.GetConfig(ctx, p.has("w"))
	if err != nil {
		return wrap(err, proto.ConfigPath)
	}
	v := map[string]any{"config": string(data)}
	if data == nil {
		v["config"] = nil
	}
	if p.has("c") {
		v["client"] = clientConfigString(string(data))
	}
	sh.emit(p, v, stat, func() {
		if data == nil {
			data = []byte("null")
		}
		if p.has("c") {
			fmt.Fprintln(sh.out, clientConfigString(string(data)))
		} else {
			sh.out.Write(append(data, '\n'))
		}
	})
	return nil
}

func cmdReconfig(sh *Shell, ctx context.Context, p *parsed) error {
	hasFile, hasMembers, hasAdd, hasRemove := p.has("file"), p.has("members"), p.has("add"), p.has("remove")
	if !hasFile && !hasMembers && !hasAdd && !hasRemove {
		return usageErr(sh.cmd)
	}
	version := int64(-1)
	if v, ok := p.opts["v"]; ok {
		n, err := strconv.ParseInt(v, 16, 64)
		if err != nil {
			return &parseError{"-v must be followed by a long (configuration version)"}
		}
		version = n
	}
	if (hasFile || hasMembers) && (hasAdd || hasRemove) {
		return &parseError{"Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)"}
	}
	if hasFile && hasMembers {
		return &parseError{"Can't use -file and -members together (conflicting non-incremental modes)"}
	}
	joining, leaving, members := strings.ToLower(p.opts["add"]), strings.ToLower(p.opts["remove"]), strings.ToLower(p.opts["members"])
	if hasFile {
		b, err := os.ReadFile(p.opts["file"])
		if err != nil {
			return &parseError{"Error processing " + p.opts["file"] + ": " + err.Error()}
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "server.") || strings.HasPrefix(l, "group.") || strings.HasPrefix(l, "weight.") {
				lines = append(lines, l)
			}
		}
		members = strings.Join(lines, ",")
	}
	data, stat, err := sh.be.Reconfig(ctx, joining, leaving, members, version)
	if err != nil {
		return wrap(err, "")
	}
	sh.emit(p, map[string]any{"config": string(data)}, stat, func() {
		fmt.Fprintf(sh.out, "Committed new configuration:\n%s\n", data)
	})
	return nil
}

func cmdAddWatch(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) != 2 {
		return usageErr(sh.cmd)
	}
	mode := proto.AddWatchPersistentRecursive
	if m, ok := p.opts["m"]; ok {
		switch strings.ToUpper(m) {
		case "PERSISTENT":
			mode = proto.AddWatchPersistent
		case "PERSISTENT_RECURSIVE":
		default:
			return usageErr(sh.cmd)
		}
	}
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	return wrap(sh.be.AddWatch(ctx, path, mode), path)
}

func cmdRemoveWatches(sh *Shell, ctx context.Context, p *parsed) error {
	path := p.args[1]
	wt := proto.WatcherAny
	switch {
	case p.has("c"):
		wt = proto.WatcherChildren
	case p.has("d"):
		wt = proto.WatcherData
	}
	if err := validatePath(path); err != nil {
		return err
	}
	return wrap(sh.be.RemoveWatches(ctx, path, wt, p.has("l")), path)
}

func cmdGetEphemerals(sh *Shell, ctx context.Context, p *parsed) error {
	path := "/"
	if len(p.args) >= 2 {
		path = p.args[1]
		if err := validatePath(path); err != nil {
			return err
		}
	}
	eph, err := sh.be.GetEphemerals(ctx, path)
	if err != nil {
		return wrap(err, path)
	}
	if sh.json {
		writeJSON(sh.out, map[string]any{"path": path, "ephemerals": nonNil(eph)})
		return nil
	}
	fmt.Fprintf(sh.out, "[%s]\n", strings.Join(eph, ", "))
	return nil
}

func cmdGetAllChildrenNumber(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) < 2 {
		return usageErr(sh.cmd)
	}
	path, err := pathArg(p)
	if err != nil {
		return err
	}
	n, err := sh.be.GetAllChildrenNumber(ctx, path)
	if err != nil {
		return wrap(err, path)
	}
	if sh.json {
		writeJSON(sh.out, map[string]any{"path": path, "count": n})
		return nil
	}
	fmt.Fprintln(sh.out, n)
	return nil
}

func cmdWhoAmI(sh *Shell, ctx context.Context, p *parsed) error {
	infos, err := sh.be.WhoAmI(ctx)
	if err != nil {
		return wrap(err, "")
	}
	if sh.json {
		list := []map[string]string{}
		for _, ci := range infos {
			list = append(list, map[string]string{"scheme": ci.AuthScheme, "user": ci.User})
		}
		writeJSON(sh.out, map[string]any{"clientInfo": list})
		return nil
	}
	fmt.Fprintln(sh.out, "Auth scheme: User")
	for _, ci := range infos {
		fmt.Fprintf(sh.out, "%s: %s\n", ci.AuthScheme, ci.User)
	}
	return nil
}

// quotaOptions names setquota's and delquota's option group, in the order
// commons-cli lists it.
var quotaOptions = []struct{ opt, desc, key string }{
	{"n", "num soft quota", "count"},
	{"b", "bytes soft quota", "bytes"},
	{"N", "num hard quota", "countHardLimit"},
	{"B", "bytes hard quota", "byteHardLimit"},
}

// quotaGroup checks that at most one (with required, exactly one) option
// of the quota group was given, and returns it.
func quotaGroup(p *parsed, required bool) (string, error) {
	chosen := ""
	for _, q := range quotaOptions {
		if p.has(q.opt) {
			if chosen != "" {
				return "", &parseError{fmt.Sprintf("The option '%s' was specified but an option from this group has already been selected: '%s'", q.opt, chosen)}
			}
			chosen = q.opt
		}
	}
	if chosen == "" && required {
		var names []string
		for _, q := range quotaOptions {
			names = append(names, "-"+q.opt+" "+q.desc)
		}
		return "", &parseError{"Missing required option: [" + strings.Join(names, ", ") + "]"}
	}
	return chosen, nil
}

const quotaRoot = proto.QuotaPath

func cmdSetQuota(sh *Shell, ctx context.Context, p *parsed) error {
	opt, err := quotaGroup(p, true)
	if err != nil {
		return err
	}
	if len(p.args) < 2 {
		return usageErr(sh.cmd)
	}
	path := p.args[1]
	if strings.HasPrefix(path, quotaRoot) {
		fmt.Fprintln(sh.errw, "cannot set a quota under the path: "+quotaRoot)
		return &cliError{code: exitUsage}
	}
	quota := statsTrack{"count": -1, "bytes": -1, "countHardLimit": -1, "byteHardLimit": -1}
	val := p.opts[opt]
	switch opt {
	case "n", "N":
		n, err := strconv.ParseInt(val, 10, 32)
		if err != nil {
			fmt.Fprintln(sh.errw, "NumberFormatException happens when parsing the option value")
			return &cliError{code: exitUsage}
		}
		if n <= 0 {
			fmt.Fprintln(sh.errw, "the num quota must be greater than zero")
			return &cliError{code: exitUsage}
		}
		if opt == "n" {
			quota["count"] = n
		} else {
			quota["countHardLimit"] = n
		}
	case "b", "B":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			fmt.Fprintln(sh.errw, "NumberFormatException happens when parsing the option value")
			return &cliError{code: exitUsage}
		}
		if n < 0 {
			fmt.Fprintln(sh.errw, "the bytes quota must be greater than or equal to zero")
			return &cliError{code: exitUsage}
		}
		if opt == "b" {
			quota["bytes"] = n
		} else {
			quota["byteHardLimit"] = n
		}
	}
	if err := validatePath(path); err != nil {
		return err
	}
	return createQuota(sh, ctx, path, quota)
}

// createQuota is SetQuotaCommand.createQuota: the quota node mirrors the
// path under /zookeeper/quota with a zookeeper_limits and a
// zookeeper_stats child; nested quotas are refused.
func createQuota(sh *Shell, ctx context.Context, path string, quota statsTrack) error {
	st, err := sh.be.Exists(ctx, path, false)
	if err != nil {
		return wrap(err, path)
	}
	if st == nil {
		return &parseError{path + " does not exist."}
	}
	// No quota below this path...
	qp := quotaRoot + path
	if _, _, err := sh.be.Get(ctx, qp, false); err == nil {
		var found string
		visitDFS(ctx, sh.be, qp, false, func(q string) {
			if found == "" && strings.HasSuffix(q, "/zookeeper_limits") && parentPath(q) != qp {
				found = strings.TrimPrefix(parentPath(q), quotaRoot)
			}
		})
		if found != "" {
			return &parseError{path + " has a child " + found + " which has a quota"}
		}
	}
	// ...nor above it.
	parts := strings.Split(path, "/")
	cur := quotaRoot
	for i := 1; i < len(parts)-1; i++ {
		cur += "/" + parts[i]
		children, _, err := sh.be.Children(ctx, cur, false)
		if c, ok := errCode(err); ok && c == proto.ErrNoNode {
			break
		}
		if err != nil {
			return wrap(err, cur)
		}
		if len(children) == 0 {
			break
		}
		for _, c := range children {
			if c == "zookeeper_limits" {
				return &parseError{path + " has a parent " + strings.TrimPrefix(cur, quotaRoot) + " which has a quota"}
			}
		}
	}
	mk := func(p string, data []byte) error {
		_, err := sh.be.Create(ctx, p, data, proto.OpenACLUnsafe, proto.ModePersistent, 0)
		if c, ok := errCode(err); ok && c == proto.ErrNodeExists {
			return nil
		}
		return wrap(err, p)
	}
	if st, err := sh.be.Exists(ctx, quotaRoot, false); err != nil {
		return wrap(err, quotaRoot)
	} else if st == nil {
		if err := mk(proto.ZooKeeperPath, nil); err != nil {
			return err
		}
		if err := mk(quotaRoot, nil); err != nil {
			return err
		}
	}
	cur = quotaRoot
	for i := 1; i < len(parts); i++ {
		cur += "/" + parts[i]
		if st, err := sh.be.Exists(ctx, cur, false); err != nil {
			return wrap(err, cur)
		} else if st == nil {
			if err := mk(cur, nil); err != nil {
				return err
			}
		}
	}
	statPath, limitPath := cur+"/zookeeper_stats", cur+"/zookeeper_limits"
	if st, err := sh.be.Exists(ctx, limitPath, false); err != nil {
		return wrap(err, limitPath)
	} else if st == nil {
		if _, err := sh.be.Create(ctx, limitPath, []byte(quota.String()), proto.OpenACLUnsafe, proto.ModePersistent, 0); err != nil {
			return wrap(err, limitPath)
		}
		zero := statsTrack{"count": 0, "bytes": 0}
		if _, err := sh.be.Create(ctx, statPath, []byte(zero.String()), proto.OpenACLUnsafe, proto.ModePersistent, 0); err != nil {
			return wrap(err, statPath)
		}
		return checkQuota(sh, ctx, limitPath, statPath, nil)
	}
	data, _, err := sh.be.Get(ctx, limitPath, false)
	if err != nil {
		return wrap(err, limitPath)
	}
	cur2 := parseStatsTrack(string(data))
	for _, k := range []string{"count", "bytes", "countHardLimit", "byteHardLimit"} {
		if quota[k] > -1 {
			cur2[k] = quota[k]
		}
	}
	if err := checkQuota(sh, ctx, limitPath, statPath, cur2); err != nil {
		return err
	}
	_, err = sh.be.Set(ctx, limitPath, []byte(cur2.String()), -1)
	return wrap(err, limitPath)
}

// checkQuota warns when the new limits are already below the usage.
func checkQuota(sh *Shell, ctx context.Context, limitPath, statPath string, quota statsTrack) error {
	if quota == nil {
		data, _, err := sh.be.Get(ctx, limitPath, false)
		if err != nil {
			return wrap(err, limitPath)
		}
		quota = parseStatsTrack(string(data))
	}
	data, _, err := sh.be.Get(ctx, statPath, false)
	if err != nil {
		return wrap(err, statPath)
	}
	stats := parseStatsTrack(string(data))
	below := func(limit, used int64) bool { return limit > -1 && limit < used }
	if below(quota.get("count"), stats.get("count")) || below(quota.get("countHardLimit"), stats.get("count")) {
		fmt.Fprintf(sh.out, "[Warning]: the count quota you create is less than the existing count:%d\n", stats.get("count"))
	}
	if below(quota.get("bytes"), stats.get("bytes")) || below(quota.get("byteHardLimit"), stats.get("bytes")) {
		fmt.Fprintf(sh.out, "[Warning]: the bytes quota you create is less than the existing bytes:%d\n", stats.get("bytes"))
	}
	return nil
}

func cmdListQuota(sh *Shell, ctx context.Context, p *parsed) error {
	path := p.args[1]
	limitPath := quotaRoot + path + "/zookeeper_limits"
	if !sh.json {
		fmt.Fprintln(sh.errw, "absolute path is "+limitPath)
	}
	if err := validatePath(limitPath); err != nil {
		return err
	}
	limits, _, err := sh.be.Get(ctx, limitPath, false)
	if err == nil {
		var stats []byte
		stats, _, err = sh.be.Get(ctx, quotaRoot+path+"/zookeeper_stats", false)
		if err == nil {
			q, s := parseStatsTrack(string(limits)), parseStatsTrack(string(stats))
			if sh.json {
				writeJSON(sh.out, map[string]any{"path": path, "quota": q.jsonMap(), "stat": s.jsonMap()})
				return nil
			}
			fmt.Fprintf(sh.out, "Output quota for %s %s\n", path, q)
			fmt.Fprintf(sh.out, "Output stat for %s %s\n", path, s)
			return nil
		}
	}
	if c, ok := errCode(err); ok && c == proto.ErrNoNode {
		msg := "quota for " + path + " does not exist."
		if sh.json {
			return &cliError{msg: msg, code: exitZooKeeper}
		}
		fmt.Fprintln(sh.errw, msg)
		return nil
	}
	return wrap(err, limitPath)
}

func cmdDelQuota(sh *Shell, ctx context.Context, p *parsed) error {
	opt, err := quotaGroup(p, false)
	if err != nil {
		return err
	}
	path := p.args[1]
	parent := quotaRoot + path
	limitPath := parent + "/zookeeper_limits"
	if err := validatePath(limitPath); err != nil {
		return err
	}
	st, err := sh.be.Exists(ctx, limitPath, false)
	if err != nil {
		return wrap(err, limitPath)
	}
	if st == nil {
		fmt.Fprintln(sh.out, "Quota does not exist for "+path)
		return nil
	}
	data, _, err := sh.be.Get(ctx, limitPath, false)
	if c, ok := errCode(err); ok && c == proto.ErrNoNode {
		fmt.Fprintln(sh.errw, "quota for "+path+" does not exist.")
		return nil
	} else if err != nil {
		return wrap(err, limitPath)
	}
	if opt == "" {
		children, _, err := sh.be.Children(ctx, parent, false)
		if err != nil {
			return wrap(err, parent)
		}
		for _, c := range children {
			if err := sh.be.Delete(ctx, parent+"/"+c, -1); err != nil {
				return wrap(err, parent+"/"+c)
			}
		}
		// Trim the now empty quota nodes up to /zookeeper/quota.
		for q := parent; q != quotaRoot && strings.HasPrefix(q, quotaRoot); q = parentPath(q) {
			children, _, err := sh.be.Children(ctx, q, false)
			if err != nil {
				return wrap(err, q)
			}
			if len(children) > 0 {
				break
			}
			if err := sh.be.Delete(ctx, q, -1); err != nil {
				return wrap(err, q)
			}
		}
		return nil
	}
	st2 := parseStatsTrack(string(data))
	for _, q := range quotaOptions {
		if q.opt == opt {
			st2[q.key] = -1
		}
	}
	_, err = sh.be.Set(ctx, limitPath, []byte(st2.String()), -1)
	return wrap(err, limitPath)
}

func cmdClose(sh *Shell, ctx context.Context, p *parsed) error {
	if sh.be != nil {
		sh.closeBackend()
	}
	return nil
}

func cmdVersion(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) > 1 {
		return usageErr(sh.cmd)
	}
	fmt.Fprintln(sh.out, "Paddock CLI version: "+sh.cfg.Version)
	return nil
}

func cmdConnect(sh *Shell, ctx context.Context, p *parsed) error {
	host := sh.host
	if len(p.args) >= 2 {
		host = p.args[1]
	}
	return sh.connect(host)
}

func cmdHistory(sh *Shell, ctx context.Context, p *parsed) error {
	for i := sh.count - 10; i <= sh.count; i++ {
		if i < 0 {
			continue
		}
		fmt.Fprintf(sh.out, "%d - %s\n", i, sh.history[i])
	}
	return nil
}

func cmdRedo(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) < 2 {
		return nil
	}
	i, err := strconv.ParseInt(p.args[1], 0, 32)
	if err != nil {
		return &parseError{"Command index out of range"}
	}
	if int(i) >= sh.count || i < 0 {
		return &parseError{"Command index out of range"}
	}
	line := sh.history[int(i)]
	words := SplitLine(line)
	if len(words) > 0 && words[0] == "redo" {
		return &parseError{"No redoing redos"}
	}
	sh.history[sh.count] = line
	return sh.execWords(words)
}

func cmdPrintWatches(sh *Shell, ctx context.Context, p *parsed) error {
	if len(p.args) == 1 {
		state := "off"
		if sh.printWatches.Load() {
			state = "on"
		}
		fmt.Fprintln(sh.out, "printwatches is "+state)
		return nil
	}
	sh.printWatches.Store(p.args[1] == "on")
	return nil
}

func cmdQuit(sh *Shell, ctx context.Context, p *parsed) error {
	sh.quit = true
	return nil
}

func cmdHelp(sh *Shell, ctx context.Context, p *parsed) error {
	sh.usage(sh.out)
	return nil
}
