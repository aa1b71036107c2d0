package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/server"
)

// ensembleFlags are the flags that make `paddock server` an ensemble
// member (server.EnsembleConfig). Absent --peers and --observers, the
// server is standalone.
type ensembleFlags struct {
	peers, observers, peerAddr, clusterID  string
	peerCert, peerKey, peerCA              string
	join, reconfig, readOnly               bool
	requestTimeout, raftTick, electionTick int
}

func addEnsembleFlags(fs *flag.FlagSet) *ensembleFlags {
	e := &ensembleFlags{}
	fs.StringVar(&e.peers, "peers", "", `voting members' peer (Raft) addresses: "1=host:port,2=host:port,3=host:port"; `+
		`an entry may add ZooKeeper's ":electionPort" (unused) and ";clientPort" or ";host:clientPort" (advertised in /zookeeper/config)`)
	fs.StringVar(&e.observers, "observers", "", `non-voting members (observers, Raft learners), same format as --peers`)
	fs.StringVar(&e.peerAddr, "peer-addr", "", "peer (Raft) listen address (default: this member's entry in --peers/--observers)")
	fs.StringVar(&e.clusterID, "cluster-id", "", "ensemble name; peers of another cluster are refused and the data directory is stamped with it (required with --peers)")
	fs.StringVar(&e.peerCert, "peer-tls-cert", "", "PEM certificate for mutual TLS between members")
	fs.StringVar(&e.peerKey, "peer-tls-key", "", "PEM private key for mutual TLS between members")
	fs.StringVar(&e.peerCA, "peer-tls-ca", "", "PEM CA bundle that members' certificates must chain to")
	fs.BoolVar(&e.join, "join", false, "start an empty data directory as a new member of a running ensemble (added with reconfig) instead of bootstrapping")
	fs.BoolVar(&e.reconfig, "reconfig-enabled", false, "allow the reconfig operation (ZooKeeper's reconfigEnabled)")
	fs.BoolVar(&e.readOnly, "read-only-mode", false, "a member that lost the quorum serves read-only clients from its local state (ZooKeeper's readonlymode.enabled)")
	fs.IntVar(&e.requestTimeout, "request-timeout", 0, "ms a write may wait for commit before its client is disconnected to retry elsewhere (default 10000)")
	fs.IntVar(&e.raftTick, "raft-tick", 0, "Raft tick in ms (default 100)")
	fs.IntVar(&e.electionTick, "election-ticks", 0, "Raft election timeout in ticks (default 10)")
	return e
}

// apply fills cfg.EnsembleConfig from the flags.
func (e *ensembleFlags) apply(cfg *server.Config) error {
	peers, err := parseMemberList("--peers", e.peers)
	if err != nil {
		return err
	}
	observers, err := parseMemberList("--observers", e.observers)
	if err != nil {
		return err
	}
	ec := &cfg.EnsembleConfig
	if len(peers) > 0 {
		ec.Peers = peers
	}
	if len(observers) > 0 {
		ec.Observers = observers
	}
	if e.peerAddr != "" {
		ec.PeerListenAddr = e.peerAddr
	}
	if e.clusterID != "" {
		ec.ClusterID = e.clusterID
	}
	if e.peerCert != "" || e.peerKey != "" || e.peerCA != "" {
		ec.PeerTLSCert, ec.PeerTLSKey, ec.PeerTLSCA = e.peerCert, e.peerKey, e.peerCA
	}
	ec.Join = ec.Join || e.join
	ec.ReconfigEnabled = ec.ReconfigEnabled || e.reconfig
	ec.ReadOnlyMode = ec.ReadOnlyMode || e.readOnly
	if e.requestTimeout > 0 {
		ec.RequestTimeout = time.Duration(e.requestTimeout) * time.Millisecond
	}
	if e.raftTick > 0 {
		ec.RaftTick = time.Duration(e.raftTick) * time.Millisecond
	}
	if e.electionTick > 0 {
		ec.ElectionTicks = e.electionTick
	}
	return nil
}

// parseMemberList parses "1=host:port,2=host:port" into a map by id.
func parseMemberList(name, s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not id=host:port", name, item)
		}
		id, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(k), "server."), 10, 64)
		if err != nil || id == 0 || id > 254 {
			return nil, fmt.Errorf("%s: %q: id must be 1..254", name, item)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("%s: id %d listed twice", name, id)
		}
		if _, err := server.ParseMemberSpec(id, v, false); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out[id] = strings.TrimSpace(v)
	}
	return out, nil
}
