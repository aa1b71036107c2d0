package main

import (
	"reflect"
	"testing"

	"github.com/paddockhq/paddock/config"
	"github.com/paddockhq/paddock/server"
)

// A zoo.cfg with server.N lines makes an ensemble member: participants
// vote, observers are learners, the cluster id is the same on every member
// sharing the lines, and command-line flags win.
func TestEnsembleFromZooCfg(t *testing.T) {
	const text = `tickTime=2000
dataDir=/nonexistent/paddock-zoocfg-test
clientPort=2181
reconfigEnabled=true
server.1=10.0.0.1:2888:3888
server.2=10.0.0.2:2888:3888;2182
server.3=10.0.0.3:2888:3888:observer
`
	zc, err := config.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	all := func(string) bool { return true }
	var cfg server.Config
	ensembleFromZooCfg(zc, &cfg, all)
	wantPeers := map[uint64]string{
		1: "10.0.0.1:2888:3888:participant",
		2: "10.0.0.2:2888:3888:participant;0.0.0.0:2182",
	}
	if !reflect.DeepEqual(cfg.Peers, wantPeers) || cfg.Observers[3] != "10.0.0.3:2888:3888:observer" {
		t.Fatalf("peers %v observers %v", cfg.Peers, cfg.Observers)
	}
	if !cfg.ReconfigEnabled || cfg.ClusterID == "" {
		t.Fatalf("reconfig %v cluster %q", cfg.ReconfigEnabled, cfg.ClusterID)
	}
	var again server.Config
	ensembleFromZooCfg(zc, &again, all)
	if again.ClusterID != cfg.ClusterID {
		t.Fatal("cluster id is not stable")
	}

	// --peers on the command line wins over the file.
	var flagged server.Config
	ensembleFromZooCfg(zc, &flagged, func(name string) bool { return name != "peers" })
	if flagged.Peers != nil {
		t.Fatal("zoo.cfg overrode --peers")
	}

	// One server line with standaloneEnabled (the default) stays standalone.
	one, err := config.Parse("tickTime=2000\ndataDir=/nonexistent/x\nclientPort=2181\nserver.1=10.0.0.1:2888:3888\n")
	if err != nil {
		t.Fatal(err)
	}
	var single server.Config
	ensembleFromZooCfg(one, &single, all)
	if single.Peers != nil {
		t.Fatal("a single server line made an ensemble")
	}
}
