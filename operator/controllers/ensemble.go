package controllers

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/client"
)

// MemberInfo is what a member's admin endpoint says about it.
type MemberInfo struct {
	Role    string // srvr server_state: leader, follower, observer, joining, refused, removed, standalone
	Zxid    int64
	Version string
	// Refusal is why a "refused" member takes no part (srvr's "refusal").
	Refusal string
}

// Ensemble is how the operator talks to the servers. The production
// implementation uses the admin HTTP endpoint and the ZooKeeper protocol;
// tests substitute their own. A context from WithAdminTLS makes the admin
// calls HTTPS.
type Ensemble interface {
	// Member asks one member (host = its stable DNS name) about itself.
	Member(ctx context.Context, host string) (MemberInfo, error)
	// Config reads /zookeeper/config through any of the servers.
	Config(ctx context.Context, servers []string, password string) (Membership, error)
	// Reconfig adds (joining: "server.N=spec") or removes (leaving) members
	// incrementally, as the super user.
	Reconfig(ctx context.Context, servers []string, password string, joining []string, leaving []uint64) error
	// TransferLeadership asks the leader to hand leadership to id.
	TransferLeadership(ctx context.Context, leaderHost string, to uint64) error
}

// LiveEnsemble is the real Ensemble.
type LiveEnsemble struct {
	HTTP *http.Client
	// Dial overrides how addresses are reached (tests on loopback).
	Resolve func(host string) string
}

func (e *LiveEnsemble) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return &http.Client{Timeout: 3 * time.Second}
}

type adminTLSKey struct{}

// WithAdminTLS returns a context under which LiveEnsemble's admin calls
// use HTTPS with cfg: the cluster's CA in RootCAs and, for clientAuth
// want or need, the operator's client certificate. The server name
// checked is each member's host name (its stable DNS name).
func WithAdminTLS(ctx context.Context, cfg *tls.Config) context.Context {
	return context.WithValue(ctx, adminTLSKey{}, cfg)
}

// AdminTLSFrom is the configuration WithAdminTLS put in ctx, or nil.
func AdminTLSFrom(ctx context.Context) *tls.Config {
	cfg, _ := ctx.Value(adminTLSKey{}).(*tls.Config)
	return cfg
}

// admin is the URL of path on host's admin port, and the client to fetch
// it with: plain HTTP, or HTTPS verifying host's certificate.
func (e *LiveEnsemble) admin(ctx context.Context, host, path string) (string, *http.Client) {
	cfg := AdminTLSFrom(ctx)
	if cfg == nil {
		return "http://" + e.addr(host, AdminPort) + path, e.client()
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return "https://" + e.addr(host, AdminPort) + path, &http.Client{
		Timeout:   e.client().Timeout,
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
	}
}

func (e *LiveEnsemble) addr(host string, port int) string {
	if e.Resolve != nil {
		if a := e.Resolve(net.JoinHostPort(host, strconv.Itoa(port))); a != "" {
			return a
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Member implements Ensemble with GET /commands/srvr.
func (e *LiveEnsemble) Member(ctx context.Context, host string) (MemberInfo, error) {
	u, hc := e.admin(ctx, host, "/commands/srvr")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return MemberInfo{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return MemberInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return MemberInfo{}, fmt.Errorf("srvr from %s: %s: %s", host, resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Version     string `json:"version"`
		Refusal     string `json:"refusal"`
		ServerStats struct {
			ServerState       string `json:"server_state"`
			LastProcessedZxid int64  `json:"last_processed_zxid"`
		} `json:"server_stats"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return MemberInfo{}, fmt.Errorf("srvr from %s: %w", host, err)
	}
	v := out.Version
	if i := strings.IndexAny(v, "- "); i > 0 {
		v = v[:i]
	}
	return MemberInfo{Role: out.ServerStats.ServerState, Zxid: out.ServerStats.LastProcessedZxid, Version: v, Refusal: out.Refusal}, nil
}

// connect opens a session with any of the servers, as the super user when
// password is set (digest super:password, which the servers check against
// their super digest), waiting at most 8s for it.
func (e *LiveEnsemble) connect(ctx context.Context, servers []string, password string) (*client.Client, error) {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = e.addr(s, ClientPort)
	}
	opts := []client.Option{client.WithSessionTimeout(10 * time.Second)}
	if password != "" {
		opts = append(opts, client.WithDigestAuth("super", password))
	}
	cctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	conn, err := client.Connect(cctx, addrs, opts...)
	if err != nil {
		return nil, fmt.Errorf("no session with %s: %w", strings.Join(addrs, ","), err)
	}
	return conn, nil
}

// Config implements Ensemble. It syncs first, so the answer is the
// leader's committed configuration, not a lagging member's.
func (e *LiveEnsemble) Config(ctx context.Context, servers []string, password string) (Membership, error) {
	conn, err := e.connect(ctx, servers, password)
	if err != nil {
		return Membership{}, err
	}
	defer conn.Close()
	if err := conn.Sync(ctx, "/zookeeper/config"); err != nil {
		return Membership{}, fmt.Errorf("sync: %w", err)
	}
	data, _, err := conn.GetConfig(ctx)
	if err != nil {
		return Membership{}, err
	}
	return ParseConfig(string(data))
}

// Reconfig implements Ensemble.
func (e *LiveEnsemble) Reconfig(ctx context.Context, servers []string, password string, joining []string, leaving []uint64) error {
	conn, err := e.connect(ctx, servers, password)
	if err != nil {
		return err
	}
	defer conn.Close()
	var leave []string
	for _, id := range leaving {
		leave = append(leave, strconv.FormatUint(id, 10))
	}
	_, _, err = conn.IncrementalReconfig(ctx, joining, leave, -1)
	return err
}

// TransferLeadership implements Ensemble with the member's admin endpoint
// POST /paddock/v1/transfer-leadership?to=N.
func (e *LiveEnsemble) TransferLeadership(ctx context.Context, leaderHost string, to uint64) error {
	u, hc := e.admin(ctx, leaderHost, fmt.Sprintf("/paddock/v1/transfer-leadership?to=%d", to))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNoTransfer
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("transfer-leadership: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// ErrNoTransfer: the server has no leadership-transfer endpoint.
var ErrNoTransfer = errors.New("the server cannot transfer leadership")

// ParseConfig parses /zookeeper/config text:
//
//	server.1=host:2888:3888:participant;host:2181
//	version=100000003
func ParseConfig(text string) (Membership, error) {
	m := Membership{Known: true, Voters: map[uint64]bool{}, Observers: map[uint64]bool{}}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Membership{}, fmt.Errorf("config line %q", line)
		}
		if k == "version" {
			m.Version = v
			continue
		}
		idStr, ok := strings.CutPrefix(k, "server.")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil {
			return Membership{}, fmt.Errorf("config line %q: %v", line, err)
		}
		addr, _, _ := strings.Cut(v, ";")
		if strings.HasSuffix(addr, ":observer") {
			m.Observers[id] = true
		} else {
			m.Voters[id] = true
		}
	}
	if len(m.Voters) == 0 {
		return Membership{}, errors.New("config lists no voter")
	}
	return m, nil
}
