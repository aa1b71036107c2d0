package faults

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// SuperPassword is the super user's password of an ensemble started with
// Options.Reconfig; SuperDigest is its digest (--super-digest).
const (
	SuperPassword = "test"
	SuperDigest   = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
)

// roleRe matches the role of a /zookeeper/config server line:
// ...:participant[;client] or ...:observer[;client].
var roleRe = regexp.MustCompile(`:(?:participant|observer)(;|$)`)

// superConn opens a session to addrs authenticated as the super user.
func superConn(addrs []string) (*zk.Conn, error) {
	conn, err := Connect(addrs, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := conn.AddAuth("digest", []byte("super:"+SuperPassword)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Reconfig runs an incremental reconfig as the super user through the
// members other than those in skip, retrying until it succeeds (the
// ensemble may be electing) or timeout passes. The ensemble must have been
// started with Options.Reconfig.
func (c *Cluster) Reconfig(timeout time.Duration, joining, leaving []string, skip ...int) error {
	var last error
	err := WaitFor(timeout, fmt.Sprintf("reconfig +%v -%v", joining, leaving), func() bool {
		conn, err := superConn(c.addrsWithout(skip))
		if err != nil {
			last = err
			return false
		}
		defer conn.Close()
		_, last = conn.IncrementalReconfig(joining, leaving, -1)
		return last == nil
	})
	if err != nil {
		return fmt.Errorf("%w: %v", err, last)
	}
	return nil
}

func (c *Cluster) addrsWithout(skip []int) []string {
	var out []string
	for _, m := range c.Members {
		if !containsInt(skip, m.ID) {
			out = append(out, m.ClientAddr)
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ConfigLine returns server.<id>'s line of /zookeeper/config, read after
// a sync through the members other than id.
func (c *Cluster) ConfigLine(id int) (string, error) {
	conn, err := superConn(c.addrsWithout([]int{id}))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Sync("/zookeeper/config"); err != nil {
		return "", err
	}
	data, _, err := conn.Get("/zookeeper/config")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, fmt.Sprintf("server.%d=", id)) {
			return line, nil
		}
	}
	return "", fmt.Errorf("faults: no server.%d in /zookeeper/config:\n%s", id, data)
}

// WaitMode waits until the member reports mode.
func (m *Member) WaitMode(timeout time.Duration, mode string) error {
	var last string
	err := WaitFor(timeout, fmt.Sprintf("member %d to be %s", m.ID, mode), func() bool {
		s, err := m.Srvr()
		last = s.Mode
		return err == nil && s.Mode == mode
	})
	if err != nil {
		return fmt.Errorf("%w (last mode %q)", err, last)
	}
	return nil
}

// Rebuild brings back a voter that restarted on an empty data directory
// and is refused (it does not vote: its data, which quorums may have
// counted on, is gone), the way docs/OPERATIONS.md says: remove it with
// reconfig (it is then admitted as a new member and reports "joining"),
// add it back as an observer, and once it has caught up with the leader,
// promote it to participant. The ensemble must have been started with
// Options.Reconfig, and the other voters must make a quorum.
func (c *Cluster) Rebuild(id int, timeout time.Duration) error {
	m := c.Member(id)
	line, err := c.ConfigLine(id)
	if err != nil {
		return err
	}
	observer := roleRe.ReplaceAllString(line, ":observer$1")
	c.logf("rebuild member %d: remove, add back as %s, promote", id, observer)
	if err := c.Reconfig(timeout, nil, []string{strconv.Itoa(id)}, id); err != nil {
		return err
	}
	if err := m.WaitMode(timeout, "joining"); err != nil {
		return err
	}
	if err := c.Reconfig(timeout, []string{observer}, nil, id); err != nil {
		return err
	}
	if err := m.WaitMode(timeout, "observer"); err != nil {
		return err
	}
	// Caught up: its zxid reaches what the leader had once it observed.
	target := int64(-1)
	if l := c.Leader(); l != 0 {
		if s, err := c.Member(l).Srvr(); err == nil {
			target = s.Zxid
		}
	}
	if err := WaitFor(timeout, fmt.Sprintf("member %d to catch up to zxid %#x", id, target), func() bool {
		s, err := m.Srvr()
		return err == nil && s.Zxid >= target
	}); err != nil {
		return err
	}
	if err := c.Reconfig(timeout, []string{roleRe.ReplaceAllString(line, ":participant$1")}, nil, id); err != nil {
		return err
	}
	return WaitFor(timeout, fmt.Sprintf("member %d to be a voter again", id), func() bool {
		s, err := m.Srvr()
		return err == nil && (s.Mode == "follower" || s.Mode == "leader")
	})
}

// RebuildRefused rebuilds every running member that reports "refused"
// (see Rebuild) and returns their ids.
func (c *Cluster) RebuildRefused(timeout time.Duration) ([]int, error) {
	// A member restarted a moment ago may not answer yet: wait until
	// every running member says what it is.
	var modes map[int]string
	err := WaitFor(timeout, "every running member to answer srvr", func() bool {
		modes = c.Modes()
		for _, m := range c.Members {
			if m.Up() && modes[m.ID] == "" {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	var out []int
	for id, mode := range modes {
		if mode != "refused" {
			continue
		}
		if err := c.Rebuild(id, timeout); err != nil {
			return out, fmt.Errorf("rebuild member %d: %w", id, err)
		}
		out = append(out, id)
	}
	return out, nil
}
