package server

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Member is one server of an ensemble, as a ZooKeeper configuration line
// describes it:
//
//	server.<ID>=<host>:<peerPort>:<electionPort>[:participant|:observer][;[<clientHost>:]<clientPort>]
//
// Paddock's members talk Raft on the peer port; ZooKeeper's separate
// leader-election port has no use here and is only kept so that the text
// in /zookeeper/config stays in ZooKeeper's format (0 when not given).
type Member struct {
	ID uint64
	// Host and PeerPort make the Raft peer address.
	Host, PeerPort string
	// ElectionPort is kept for the configuration text only ("0" if unset).
	ElectionPort string
	// Observer marks a non-voting member (a Raft learner).
	Observer bool
	// ClientAddr is the client address "host:port", or "" if unknown.
	ClientAddr string
}

// PeerAddr is the member's Raft peer address, host:peerPort.
func (m Member) PeerAddr() string { return net.JoinHostPort(m.Host, m.PeerPort) }

// Role is "participant" or "observer", as ZooKeeper spells it.
func (m Member) Role() string {
	if m.Observer {
		return "observer"
	}
	return "participant"
}

// String renders the member as a /zookeeper/config line (without newline).
func (m Member) String() string {
	host := m.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	ep := m.ElectionPort
	if ep == "" {
		ep = "0"
	}
	s := fmt.Sprintf("server.%d=%s:%s:%s:%s", m.ID, host, m.PeerPort, ep, m.Role())
	if m.ClientAddr != "" {
		s += ";" + m.ClientAddr
	}
	return s
}

// ParseMemberSpec parses the right-hand side of a server.N line (or of a
// --peers/--observers entry): host:peerPort[:electionPort][:role][;client].
// client is "port" (meaning 0.0.0.0:port) or "host:port". A role in spec
// overrides observer.
func ParseMemberSpec(id uint64, spec string, observer bool) (Member, error) {
	m := Member{ID: id, Observer: observer}
	addr, client, hasClient := strings.Cut(strings.TrimSpace(spec), ";")
	if hasClient {
		client = strings.TrimSpace(client)
		if client == "" {
			return m, fmt.Errorf("server.%d: empty client address in %q", id, spec)
		}
		if _, err := strconv.ParseUint(client, 10, 16); err == nil {
			client = "0.0.0.0:" + client
		} else if _, _, err := net.SplitHostPort(client); err != nil {
			return m, fmt.Errorf("server.%d: bad client address %q: %v", id, client, err)
		}
		m.ClientAddr = client
	}
	var rest string
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return m, fmt.Errorf("server.%d: unterminated [ in %q", id, spec)
		}
		m.Host, rest = addr[1:end], strings.TrimPrefix(addr[end+1:], ":")
	} else {
		var ok bool
		m.Host, rest, ok = strings.Cut(addr, ":")
		if !ok {
			return m, fmt.Errorf("server.%d: %q has no peer port (want host:peerPort)", id, spec)
		}
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 0 {
		switch last := parts[len(parts)-1]; last {
		case "participant":
			m.Observer = false
			parts = parts[:len(parts)-1]
		case "observer":
			m.Observer = true
			parts = parts[:len(parts)-1]
		}
	}
	if m.Host == "" || len(parts) == 0 || len(parts) > 2 {
		return m, fmt.Errorf("server.%d: %q is not host:peerPort[:electionPort][:role][;clientPort]", id, spec)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return m, fmt.Errorf("server.%d: bad port %q in %q", id, p, spec)
		}
	}
	m.PeerPort = parts[0]
	if len(parts) == 2 {
		m.ElectionPort = parts[1]
	}
	return m, nil
}

// ParseServerLine parses one "server.N=..." line.
func ParseServerLine(line string) (Member, error) {
	key, val, ok := strings.Cut(strings.TrimSpace(line), "=")
	if !ok {
		return Member{}, fmt.Errorf("%q is not server.N=...", line)
	}
	ids, ok := strings.CutPrefix(strings.TrimSpace(key), "server.")
	if !ok {
		return Member{}, fmt.Errorf("%q is not server.N=...", line)
	}
	id, err := strconv.ParseUint(ids, 10, 64)
	if err != nil || id == 0 || id > 254 {
		return Member{}, fmt.Errorf("%q: server id must be 1..254", line)
	}
	return ParseMemberSpec(id, val, false)
}

// members is an ensemble configuration by id.
type members map[uint64]Member

// parseConfigText parses a /zookeeper/config text (server lines and a
// version line; other lines are ignored).
func parseConfigText(text string) (members, error) {
	out := members{}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "server.") {
			continue
		}
		m, err := ParseServerLine(line)
		if err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, nil
}

// ids returns the voters and the observers, sorted.
func (ms members) ids() (voters, observers []uint64) {
	for id, m := range ms {
		if m.Observer {
			observers = append(observers, id)
		} else {
			voters = append(voters, id)
		}
	}
	sort.Slice(voters, func(i, j int) bool { return voters[i] < voters[j] })
	sort.Slice(observers, func(i, j int) bool { return observers[i] < observers[j] })
	return voters, observers
}

// text renders the configuration as ZooKeeper does (QuorumMaj.toString):
// one line per server, ordered by id, each followed by a newline; the
// version line is appended when the configuration is applied.
func (ms members) text() string {
	ids := make([]uint64, 0, len(ms))
	for id := range ms {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(ms[id].String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (ms members) clone() members {
	out := make(members, len(ms))
	for id, m := range ms {
		out[id] = m
	}
	return out
}

// splitList splits a reconfig argument: comma-separated, blanks dropped.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// reconfigure computes the configuration a reconfig request asks for
// (ZooKeeper's PrepRequestProcessor): newMembers replaces everything
// (non-incremental); otherwise leavingServers (ids) are removed and
// joiningServers (server lines) added or updated.
func reconfigure(cur members, joining, leaving, newMembers string) (members, error) {
	if strings.TrimSpace(newMembers) != "" {
		if strings.TrimSpace(joining) != "" || strings.TrimSpace(leaving) != "" {
			return nil, fmt.Errorf("newMembers cannot be combined with joiningServers or leavingServers")
		}
		out := members{}
		for _, line := range splitList(newMembers) {
			m, err := ParseServerLine(line)
			if err != nil {
				return nil, err
			}
			out[m.ID] = m
		}
		return out, nil
	}
	out := cur.clone()
	for _, s := range splitList(leaving) {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad leaving server id %q", s)
		}
		delete(out, id)
	}
	for _, line := range splitList(joining) {
		m, err := ParseServerLine(line)
		if err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, nil
}
