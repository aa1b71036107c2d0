package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// The JSON API. Every response is a JSON object; errors are
//
//	{"error": "<ZooKeeper error name or console error>", "code": <ZooKeeper code>, "message": "..."}
//
// with an HTTP status that fits (404 NoNode, 409 NodeExists/BadVersion/
// NotEmpty, 403 NoAuth or read-only, 401 authentication required, 400 bad
// arguments). A BadVersion answer also carries the node's current stat in
// "current", so the page can show what changed.

// apiError is an error response.
type apiError struct {
	Error   string `json:"error"`
	Code    int32  `json:"code,omitempty"`
	Message string `json:"message"`
	Current *Stat  `json:"current,omitempty"`
}

// Stat is a znode's stat with ZooKeeper's field names. Zxids and the
// ephemeral owner are hex strings ("0x1f"), as zkCli prints them and
// because session ids do not fit a JavaScript number.
type Stat struct {
	Czxid          string `json:"czxid"`
	Mzxid          string `json:"mzxid"`
	Ctime          int64  `json:"ctime"`
	Mtime          int64  `json:"mtime"`
	Version        int32  `json:"version"`
	Cversion       int32  `json:"cversion"`
	Aversion       int32  `json:"aversion"`
	EphemeralOwner string `json:"ephemeralOwner"`
	DataLength     int32  `json:"dataLength"`
	NumChildren    int32  `json:"numChildren"`
	Pzxid          string `json:"pzxid"`
}

func statOf(s proto.Stat) *Stat {
	return &Stat{
		Czxid: hexID(s.Czxid), Mzxid: hexID(s.Mzxid), Ctime: s.Ctime, Mtime: s.Mtime,
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion,
		EphemeralOwner: hexID(s.EphemeralOwner), DataLength: s.DataLength,
		NumChildren: s.NumChildren, Pzxid: hexID(s.Pzxid),
	}
}

func hexID(v int64) string { return "0x" + strconv.FormatUint(uint64(v), 16) }

// ACL is one ACL entry; Perms is zkCli's "cdrwa" form.
type ACL struct {
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
	Perms  string `json:"perms"`
}

func aclsOf(in []proto.ACL) []ACL {
	out := make([]ACL, len(in))
	for i, a := range in {
		out[i] = ACL{Scheme: a.Id.Scheme, ID: a.Id.Id, Perms: permString(a.Perms)}
	}
	return out
}

// permString is zkCli's getPermString: "cdrwa" order.
func permString(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{proto.PermCreate, 'c'}, {proto.PermDelete, 'd'}, {proto.PermRead, 'r'}, {proto.PermWrite, 'w'}, {proto.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// ParseACL parses zkCli's ACL syntax, "scheme:id:perms[,scheme:id:perms]",
// where id may itself contain colons (digest:user:hash:cdrwa). Empty text
// is world:anyone:cdrwa.
func ParseACL(text string) ([]proto.ACL, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "world", Id: "anyone"}}}, nil
	}
	var out []proto.ACL
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		scheme, rest, ok := strings.Cut(part, ":")
		i := strings.LastIndexByte(rest, ':')
		if !ok || i < 0 || scheme == "" {
			return nil, fmt.Errorf("%q is not scheme:id:perms", part)
		}
		id, perms := rest[:i], rest[i+1:]
		var p int32
		for _, c := range perms {
			switch c {
			case 'c':
				p |= proto.PermCreate
			case 'd':
				p |= proto.PermDelete
			case 'r':
				p |= proto.PermRead
			case 'w':
				p |= proto.PermWrite
			case 'a':
				p |= proto.PermAdmin
			default:
				return nil, fmt.Errorf("%q: unknown permission %q (use c, d, r, w, a)", part, c)
			}
		}
		out = append(out, proto.ACL{Perms: p, Id: proto.Id{Scheme: scheme, Id: id}})
	}
	if len(out) == 0 {
		return nil, errors.New("empty ACL")
	}
	return out, nil
}

// apiFunc handles one API call: it returns the status and the value to
// encode.
type apiFunc func(r *http.Request, ids []proto.Id) (int, any)

func (h *Handler) api(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ids, err := h.ids(r)
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "AuthRequired", Message: err.Error()})
			return
		}
		status, v := f(r, ids)
		writeJSON(w, status, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal","message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// zkError turns a ZooKeeper error into a response.
func zkError(code proto.ErrCode, path string) (int, apiError) {
	status := http.StatusInternalServerError
	msg := code.String()
	switch code {
	case proto.ErrNoNode:
		status, msg = http.StatusNotFound, "no node "+path
	case proto.ErrNodeExists:
		status, msg = http.StatusConflict, path+" already exists"
	case proto.ErrBadVersion:
		status, msg = http.StatusConflict, "version conflict on "+path+": the node changed since you loaded it"
	case proto.ErrNotEmpty:
		status, msg = http.StatusConflict, path+" has children; delete them first"
	case proto.ErrNoAuth:
		status, msg = http.StatusForbidden, "not authorized for this operation on "+path+" (check the ACL and sign in)"
	case proto.ErrBadArguments:
		status, msg = http.StatusBadRequest, "bad arguments (is "+strconv.Quote(path)+" a valid path?)"
	case proto.ErrInvalidACL:
		status, msg = http.StatusBadRequest, "invalid ACL"
	case proto.ErrNoChildrenForEphemerals:
		status, msg = http.StatusBadRequest, "ephemeral nodes cannot have children"
	case proto.ErrQuotaExceeded:
		status, msg = http.StatusForbidden, "quota exceeded under "+path
	case proto.ErrUnimplemented:
		status, msg = http.StatusBadRequest, "not supported by this server (TTL nodes need --extended-types)"
	case proto.ErrSessionExpired, proto.ErrConnectionLoss, proto.ErrOperationTimeout, proto.ErrRequestTimeout:
		status = http.StatusServiceUnavailable
	}
	return status, apiError{Error: code.String(), Code: int32(code), Message: msg}
}

func badRequest(format string, args ...any) (int, any) {
	return http.StatusBadRequest, apiError{Error: "BadRequest", Message: fmt.Sprintf(format, args...)}
}

func cleanPath(p string) (string, bool) {
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return p, false
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p, true
}

func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// info: GET /console/api/info — the member and the caller.
func (h *Handler) info(r *http.Request, ids []proto.Id) (int, any) {
	var who []string
	for _, id := range ids {
		if id.Scheme == "digest" {
			u, _, _ := strings.Cut(id.Id, ":")
			who = append(who, "digest:"+u)
		} else {
			who = append(who, id.Scheme+":"+id.Id)
		}
	}
	return http.StatusOK, map[string]any{
		"server":   h.b.Overview(),
		"writes":   h.opts.Writes,
		"identity": who,
		"session":  hexID(h.Session()),
	}
}

// ChildEntry is one child in a children listing.
type ChildEntry struct {
	Name        string `json:"name"`
	Path        string `json:"path"`
	NumChildren int32  `json:"numChildren"`
	DataLength  int32  `json:"dataLength"`
	Ephemeral   bool   `json:"ephemeral"`
}

// children: GET /console/api/children?path=&offset=&limit=&filter= — one
// page of a node's children (sorted), with each child's count.
func (h *Handler) children(r *http.Request, ids []proto.Id) (int, any) {
	q := r.URL.Query()
	path, ok := cleanPath(q.Get("path"))
	if !ok {
		return badRequest("path must start with /")
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	filter := q.Get("filter")
	resp, zxid, code := h.b.Read(ids, proto.OpGetChildren2, &proto.GetChildren2Request{Path: path})
	if code != proto.ErrOK {
		return zkError(code, path)
	}
	res := resp.(*proto.GetChildren2Response)
	names := res.Children
	sort.Strings(names)
	if filter != "" {
		kept := names[:0:0]
		for _, n := range names {
			if strings.Contains(n, filter) {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	total := len(names)
	if offset > total {
		offset = total
	}
	end := min(offset+limit, total)
	out := make([]ChildEntry, 0, end-offset)
	for _, n := range names[offset:end] {
		p := childPath(path, n)
		e := ChildEntry{Name: n, Path: p}
		if st, _, code := h.b.Read(ids, proto.OpExists, &proto.ExistsRequest{Path: p}); code == proto.ErrOK {
			s := st.(*proto.ExistsResponse).Stat
			e.NumChildren, e.DataLength, e.Ephemeral = s.NumChildren, s.DataLength, s.EphemeralOwner != 0
		}
		out = append(out, e)
	}
	return http.StatusOK, map[string]any{
		"path": path, "total": total, "offset": offset, "limit": limit,
		"children": out, "stat": statOf(res.Stat), "zxid": hexID(zxid),
	}
}

// getNode: GET /console/api/node?path= — data (base64), stat and ACL. A
// node the caller may not READ answers 403 with its stat (exists needs no
// permission), so the page can still show it.
func (h *Handler) getNode(r *http.Request, ids []proto.Id) (int, any) {
	path, ok := cleanPath(r.URL.Query().Get("path"))
	if !ok {
		return badRequest("path must start with /")
	}
	out := map[string]any{"path": path}
	resp, zxid, code := h.b.Read(ids, proto.OpGetData, &proto.GetDataRequest{Path: path})
	switch code {
	case proto.ErrOK:
		d := resp.(*proto.GetDataResponse)
		out["data"] = base64.StdEncoding.EncodeToString(d.Data)
		out["stat"] = statOf(d.Stat)
		out["readable"] = true
	case proto.ErrNoAuth:
		st, _, code := h.b.Read(ids, proto.OpExists, &proto.ExistsRequest{Path: path})
		if code != proto.ErrOK {
			return zkError(code, path)
		}
		out["stat"] = statOf(st.(*proto.ExistsResponse).Stat)
		out["readable"] = false
	default:
		return zkError(code, path)
	}
	out["zxid"] = hexID(zxid)
	if a, _, code := h.b.Read(ids, proto.OpGetACL, &proto.GetACLRequest{Path: path}); code == proto.ErrOK {
		out["acl"] = aclsOf(a.(*proto.GetACLResponse).Acl)
	} else {
		out["aclError"] = code.String()
	}
	if n, _, code := h.b.Read(ids, proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: path}); code == proto.ErrOK {
		out["descendants"] = n.(*proto.GetAllChildrenNumberResponse).TotalNumber
	}
	return http.StatusOK, out
}

// search: GET /console/api/search?q=&limit= — paths containing q.
func (h *Handler) search(r *http.Request, ids []proto.Id) (int, any) {
	q := r.URL.Query().Get("q")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if q == "" {
		return badRequest("empty search")
	}
	paths, more, truncated := h.searchTree(ids, q, limit, maxSearchVisits)
	return http.StatusOK, map[string]any{"query": q, "paths": paths, "more": more, "truncated": truncated}
}

// maxSearchVisits bounds the nodes one search visits.
const maxSearchVisits = 200000

// searchTree walks the tree depth first, children in order, listing each
// node with the caller's ids, so it finds exactly the names the caller may
// list (READ on the parent), and each step holds the server's read lock
// only for one node. It stops after limit matches (more: there are
// others) or maxVisits nodes (truncated).
func (h *Handler) searchTree(ids []proto.Id, q string, limit, maxVisits int) (paths []string, more, truncated bool) {
	paths = []string{}
	stack := []string{"/"}
	for visits := 0; len(stack) > 0; visits++ {
		if visits >= maxVisits {
			return paths, false, true
		}
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p != "/" && strings.Contains(p, q) {
			if len(paths) == limit {
				return paths, true, false
			}
			paths = append(paths, p)
		}
		resp, _, code := h.b.Read(ids, proto.OpGetChildren2, &proto.GetChildren2Request{Path: p})
		if code != proto.ErrOK {
			continue
		}
		kids := resp.(*proto.GetChildren2Response).Children
		sort.Strings(kids)
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, childPath(p, kids[i]))
		}
	}
	return paths, false, false
}

func (h *Handler) sessions(*http.Request, []proto.Id) (int, any) {
	ss := h.b.Sessions()
	if ss == nil {
		ss = []Session{}
	}
	mine := h.Session()
	for i := range ss {
		if mine != 0 && ss[i].ID == hexID(mine) {
			ss[i].Console = true
		}
		if ss[i].Ephemerals == nil {
			ss[i].Ephemerals = []string{}
		}
	}
	return http.StatusOK, map[string]any{"sessions": ss}
}

func (h *Handler) watches(*http.Request, []proto.Id) (int, any) {
	return http.StatusOK, h.b.Watches()
}

func (h *Handler) ensemble(*http.Request, []proto.Id) (int, any) {
	return http.StatusOK, h.b.Ensemble()
}

// writeFunc is a write handler; it runs only with writes enabled and with
// the console's anti-forgery header.
type writeFunc func(ctx context.Context, r *http.Request, ids []proto.Id) (int, any)

// writeHeader must accompany every write: a cross-site form cannot send
// it, and a cross-site script cannot without a CORS preflight, which the
// console never answers.
const writeHeader = "X-Paddock-Console"

func (h *Handler) write(f writeFunc) apiFunc {
	return func(r *http.Request, ids []proto.Id) (int, any) {
		if !h.opts.Writes {
			return http.StatusForbidden, apiError{Error: "ReadOnly", Message: "the console is read-only; start the server with --console-writes to enable writes"}
		}
		if r.Header.Get(writeHeader) == "" {
			return http.StatusForbidden, apiError{Error: "MissingHeader", Message: "writes need the " + writeHeader + " header"}
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.WriteTimeout)
		defer cancel()
		return f(ctx, r, ids)
	}
}

// writeBody is the body of POST/PUT /console/api/node and PUT
// /console/api/acl.
type writeBody struct {
	Path string `json:"path"`
	// Data is the node's data, as text (Encoding "text" or empty) or
	// base64 (Encoding "base64").
	Data     string `json:"data"`
	Encoding string `json:"encoding"`
	// Version is the expected version (setData/delete: version,
	// setACL: aversion); -1 matches any.
	Version *int32 `json:"version"`
	// Mode (create): persistent, persistent_sequential, container,
	// persistent_ttl, persistent_sequential_ttl.
	Mode string `json:"mode"`
	TTL  int64  `json:"ttl"`
	// ACL (create, setACL) in zkCli syntax; empty is world:anyone:cdrwa.
	ACL string `json:"acl"`
}

func readBody(r *http.Request) (*writeBody, error) {
	var b writeBody
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("bad JSON body: %v", err)
	}
	return &b, nil
}

// readBodyData reads a write's body and decodes its data.
func readBodyData(r *http.Request) (*writeBody, []byte, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	data, err := b.bytes()
	return b, data, err
}

func (b *writeBody) bytes() ([]byte, error) {
	switch b.Encoding {
	case "", "text":
		return []byte(b.Data), nil
	case "base64":
		return base64.StdEncoding.DecodeString(b.Data)
	}
	return nil, fmt.Errorf("unknown encoding %q (text or base64)", b.Encoding)
}

func (h *Handler) logWrite(op string, path string, ids []proto.Id, code proto.ErrCode, err error) {
	h.log.Info("console write", "op", op, "path", path, "user", userOf(ids), "result", code.String(), "err", err)
}

// createNode: POST /console/api/node.
func (h *Handler) createNode(ctx context.Context, r *http.Request, ids []proto.Id) (int, any) {
	b, data, err := readBodyData(r)
	if err != nil {
		return badRequest("%v", err)
	}
	acl, err := ParseACL(b.ACL)
	if err != nil {
		return badRequest("ACL: %v", err)
	}
	if !strings.HasPrefix(b.Path, "/") {
		return badRequest("path must start with /")
	}
	var op proto.OpCode
	var req proto.Record
	switch b.Mode {
	case "", "persistent", "persistent_sequential":
		flags := proto.ModePersistent
		if b.Mode == "persistent_sequential" {
			flags = proto.ModePersistentSequential
		}
		op, req = proto.OpCreate2, &proto.CreateRequest{Path: b.Path, Data: data, Acl: acl, Flags: flags}
	case "container":
		op, req = proto.OpCreateContainer, &proto.CreateRequest{Path: b.Path, Data: data, Acl: acl, Flags: proto.ModeContainer}
	case "persistent_ttl", "persistent_sequential_ttl":
		flags := proto.ModePersistentWithTTL
		if b.Mode == "persistent_sequential_ttl" {
			flags = proto.ModePersistentSequentialTTL
		}
		if b.TTL <= 0 {
			return badRequest("a TTL node needs ttl > 0 (milliseconds)")
		}
		op, req = proto.OpCreateTTL, &proto.CreateTTLRequest{Path: b.Path, Data: data, Acl: acl, Flags: flags, Ttl: b.TTL}
	default:
		// Ephemeral nodes would belong to the console's own session and
		// vanish with it; they are left to real clients.
		return badRequest("unknown or unsupported mode %q (persistent, persistent_sequential, container, persistent_ttl, persistent_sequential_ttl)", b.Mode)
	}
	return h.commit(ctx, op.String(), b.Path, op, req, ids, func(resp proto.Record, zxid int64) (int, any) {
		out := map[string]any{"zxid": hexID(zxid)}
		if c, ok := resp.(*proto.Create2Response); ok {
			out["path"], out["stat"] = c.Path, statOf(c.Stat)
		} else if c, ok := resp.(*proto.CreateResponse); ok {
			out["path"] = c.Path
		}
		return http.StatusCreated, out
	})
}

// commit submits a write for the caller's ids, logs it, and answers: an
// unknown outcome or a refusal (with the current stat for BadVersion) as
// such, a success as answer makes it from the reply and its zxid.
func (h *Handler) commit(ctx context.Context, name, path string, op proto.OpCode, req proto.Record, ids []proto.Id,
	answer func(resp proto.Record, zxid int64) (int, any)) (int, any) {
	resp, zxid, code, err := h.submit(ctx, op, req, ids)
	h.logWrite(name, path, ids, code, err)
	if err != nil {
		return writeUnknown(err)
	}
	if code != proto.ErrOK {
		return h.conflict(ids, path, code)
	}
	return answer(resp, zxid)
}

func writeUnknown(err error) (int, any) {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, apiError{Error: "Timeout", Message: "the write was not applied in time; its outcome is unknown (reload to check)"}
	}
	return http.StatusServiceUnavailable, apiError{Error: "Unavailable", Message: err.Error()}
}

// conflict adds the node's current stat to a BadVersion answer.
func (h *Handler) conflict(ids []proto.Id, path string, code proto.ErrCode) (int, any) {
	status, e := zkError(code, path)
	if code == proto.ErrBadVersion {
		if st, _, c := h.b.Read(ids, proto.OpExists, &proto.ExistsRequest{Path: path}); c == proto.ErrOK {
			e.Current = statOf(st.(*proto.ExistsResponse).Stat)
		}
	}
	return status, e
}

// setData: PUT /console/api/node {path, data, encoding, version}.
func (h *Handler) setData(ctx context.Context, r *http.Request, ids []proto.Id) (int, any) {
	b, data, err := readBodyData(r)
	if err != nil {
		return badRequest("%v", err)
	}
	if b.Version == nil {
		return badRequest("version is required (the version you edited, or -1 to overwrite any)")
	}
	req := &proto.SetDataRequest{Path: b.Path, Data: data, Version: *b.Version}
	return h.commit(ctx, "setData", b.Path, proto.OpSetData, req, ids, answerStat(b.Path))
}

// answerStat answers a write that returns the node's new stat (setData,
// setACL).
func answerStat(path string) func(proto.Record, int64) (int, any) {
	return func(resp proto.Record, zxid int64) (int, any) {
		var st proto.Stat
		switch r := resp.(type) {
		case *proto.SetDataResponse:
			st = r.Stat
		case *proto.SetACLResponse:
			st = r.Stat
		}
		return http.StatusOK, map[string]any{"path": path, "zxid": hexID(zxid), "stat": statOf(st)}
	}
}

// deleteNode: DELETE /console/api/node?path=&version=.
func (h *Handler) deleteNode(ctx context.Context, r *http.Request, ids []proto.Id) (int, any) {
	q := r.URL.Query()
	path := q.Get("path")
	v, err := strconv.ParseInt(q.Get("version"), 10, 32)
	if err != nil {
		return badRequest("version is required (the version you saw, or -1)")
	}
	req := &proto.DeleteRequest{Path: path, Version: int32(v)}
	return h.commit(ctx, "delete", path, proto.OpDelete, req, ids, func(_ proto.Record, zxid int64) (int, any) {
		return http.StatusOK, map[string]any{"path": path, "zxid": hexID(zxid), "deleted": true}
	})
}

// setACL: PUT /console/api/acl {path, acl, version (aversion)}.
func (h *Handler) setACL(ctx context.Context, r *http.Request, ids []proto.Id) (int, any) {
	b, err := readBody(r)
	if err != nil {
		return badRequest("%v", err)
	}
	acl, err := ParseACL(b.ACL)
	if err != nil {
		return badRequest("ACL: %v", err)
	}
	if b.Version == nil {
		return badRequest("version (the aversion you saw, or -1) is required")
	}
	req := &proto.SetACLRequest{Path: b.Path, Acl: acl, Version: *b.Version}
	return h.commit(ctx, "setACL", b.Path, proto.OpSetACL, req, ids, answerStat(b.Path))
}
