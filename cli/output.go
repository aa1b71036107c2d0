package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paddockhq/paddock/proto"
)

// javaDateLayout is java.util.Date.toString: "Tue Jan 02 15:04:05 UTC 2024".
const javaDateLayout = "Mon Jan 02 15:04:05 MST 2006"

// printStat writes a Stat as zkCli's StatPrinter does.
func printStat(w io.Writer, s proto.Stat) {
	fmt.Fprintf(w, "cZxid = 0x%x\n", uint64(s.Czxid))
	fmt.Fprintf(w, "ctime = %s\n", time.UnixMilli(s.Ctime).Format(javaDateLayout))
	fmt.Fprintf(w, "mZxid = 0x%x\n", uint64(s.Mzxid))
	fmt.Fprintf(w, "mtime = %s\n", time.UnixMilli(s.Mtime).Format(javaDateLayout))
	fmt.Fprintf(w, "pZxid = 0x%x\n", uint64(s.Pzxid))
	fmt.Fprintf(w, "cversion = %d\n", s.Cversion)
	fmt.Fprintf(w, "dataVersion = %d\n", s.Version)
	fmt.Fprintf(w, "aclVersion = %d\n", s.Aversion)
	fmt.Fprintf(w, "ephemeralOwner = 0x%x\n", uint64(s.EphemeralOwner))
	fmt.Fprintf(w, "dataLength = %d\n", s.DataLength)
	fmt.Fprintf(w, "numChildren = %d\n", s.NumChildren)
}

// permString spells permission bits as ZKUtil.getPermString: "cdrwa".
func permString(perms int32) string {
	var b strings.Builder
	for _, p := range []struct {
		bit int32
		c   byte
	}{{proto.PermCreate, 'c'}, {proto.PermDelete, 'd'}, {proto.PermRead, 'r'}, {proto.PermWrite, 'w'}, {proto.PermAdmin, 'a'}} {
		if perms&p.bit != 0 {
			b.WriteByte(p.c)
		}
	}
	return b.String()
}

// parseACL reads "scheme:id:perm[,scheme:id:perm...]" as zkCli's
// AclParser: malformed entries and unknown permission letters are
// reported on errw and skipped.
func parseACL(s string, errw io.Writer) []proto.ACL {
	acl := []proto.ACL{}
	for _, a := range strings.Split(s, ",") {
		first, last := strings.IndexByte(a, ':'), strings.LastIndexByte(a, ':')
		if first < 0 || first == last {
			fmt.Fprintln(errw, a+" does not have the form scheme:id:perm")
			continue
		}
		var perms int32
		for _, c := range a[last+1:] {
			switch c {
			case 'r':
				perms |= proto.PermRead
			case 'w':
				perms |= proto.PermWrite
			case 'c':
				perms |= proto.PermCreate
			case 'd':
				perms |= proto.PermDelete
			case 'a':
				perms |= proto.PermAdmin
			default:
				fmt.Fprintf(errw, "Unknown perm type: %c\n", c)
			}
		}
		acl = append(acl, proto.ACL{Perms: perms, Id: proto.Id{Scheme: a[:first], Id: a[first+1 : last]}})
	}
	return acl
}

// jsonStat is a Stat for -o json, with ZooKeeper's field names.
type jsonStat struct {
	Czxid          int64 `json:"czxid"`
	Mzxid          int64 `json:"mzxid"`
	Ctime          int64 `json:"ctime"`
	Mtime          int64 `json:"mtime"`
	Version        int32 `json:"version"`
	Cversion       int32 `json:"cversion"`
	Aversion       int32 `json:"aversion"`
	EphemeralOwner int64 `json:"ephemeralOwner"`
	DataLength     int32 `json:"dataLength"`
	NumChildren    int32 `json:"numChildren"`
	Pzxid          int64 `json:"pzxid"`
}

func toJSONStat(s proto.Stat) *jsonStat {
	return &jsonStat{s.Czxid, s.Mzxid, s.Ctime, s.Mtime, s.Version, s.Cversion, s.Aversion, s.EphemeralOwner, s.DataLength, s.NumChildren, s.Pzxid}
}

// jsonData renders node data for -o json: "data" is the text (null for a
// null value); binary data that is not UTF-8 also comes as "base64".
type jsonData struct {
	Data   *string `json:"data"`
	Base64 string  `json:"base64,omitempty"`
}

func toJSONData(b []byte) jsonData {
	if b == nil {
		return jsonData{}
	}
	s := string(b)
	d := jsonData{Data: &s}
	if !utf8.Valid(b) {
		d.Base64 = base64.StdEncoding.EncodeToString(b)
	}
	return d
}

type jsonACL struct {
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
	Perms  string `json:"perms"`
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

// statsTrack is a quota record (StatsTrack): "count=N,bytes=N" followed,
// when a hard limit is set, by "=;byteHardLimit=N;countHardLimit=N".
type statsTrack map[string]int64

func parseStatsTrack(s string) statsTrack {
	st := statsTrack{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		parts := strings.Split(kv, "=")
		if len(parts) == 0 || parts[0] == "" {
			continue
		}
		v := int64(-1)
		if len(parts) > 1 && parts[1] != "" {
			if n, err := strconv.ParseInt(parts[1], 10, 64); err == nil {
				v = n
			}
		}
		st[parts[0]] = v
	}
	return st
}

func (st statsTrack) get(k string) int64 {
	if v, ok := st[k]; ok {
		return v
	}
	return -1
}

func (st statsTrack) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "count=%d,bytes=%d", st.get("count"), st.get("bytes"))
	var keys []string
	for k := range st {
		if k != "count" && k != "bytes" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		b.WriteString("=")
		for _, k := range keys {
			fmt.Fprintf(&b, ";%s=%d", k, st[k])
		}
	}
	return b.String()
}

func (st statsTrack) jsonMap() map[string]int64 {
	return map[string]int64{
		"count": st.get("count"), "bytes": st.get("bytes"),
		"countHardLimit": st.get("countHardLimit"), "byteHardLimit": st.get("byteHardLimit"),
	}
}

// clientConfigString renders a dynamic config as ConfigUtils.getClientConfigStr:
// "<version> host:clientPort,host:clientPort".
func clientConfigString(cfg string) string {
	version := ""
	type member struct {
		id   int
		addr string
	}
	var ms []member
	for _, line := range strings.Split(cfg, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "version" {
			version = v
		}
		if !strings.HasPrefix(k, "server.") {
			continue
		}
		id, _ := strconv.Atoi(strings.TrimPrefix(k, "server."))
		_, client, ok := strings.Cut(v, ";")
		if !ok {
			ms = append(ms, member{id, ""})
			continue
		}
		client = strings.TrimSpace(client)
		if !strings.Contains(client, ":") {
			client = "0.0.0.0:" + client
		}
		ms = append(ms, member{id, client})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.addr)
	}
	return version + " " + strings.Join(addrs, ",")
}
