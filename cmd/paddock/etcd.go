package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/paddockhq/paddock/etcdapi"
	"github.com/paddockhq/paddock/server"
)

// etcdFlags are the flags of the etcd v3 API (docs/ETCD.md).
type etcdFlags struct {
	listen, cert, key, ca, advertise string
	progressMs                       int
}

func addEtcdFlags(fs *flag.FlagSet) *etcdFlags {
	f := &etcdFlags{}
	fs.StringVar(&f.listen, "etcd-listen", "", `serve the etcd v3 API (gRPC) on this address, e.g. 127.0.0.1:2379; default: off`)
	fs.StringVar(&f.cert, "etcd-tls-cert", "", "PEM certificate: serve the etcd API over TLS")
	fs.StringVar(&f.key, "etcd-tls-key", "", "PEM private key for --etcd-tls-cert")
	fs.StringVar(&f.ca, "etcd-tls-ca", "", "PEM CA bundle: etcd clients must present a certificate that chains to it")
	fs.StringVar(&f.advertise, "etcd-advertise-url", "", "this member's etcd client URL in MemberList (default: from --etcd-listen)")
	fs.IntVar(&f.progressMs, "etcd-progress-notify-interval", 5000, "ms between watch progress notifications")
	return f
}

func (f *etcdFlags) tlsConfig() (*tls.Config, error) {
	if f.cert == "" && f.key == "" && f.ca == "" {
		return nil, nil
	}
	if f.cert == "" || f.key == "" {
		return nil, errors.New("--etcd-tls-cert and --etcd-tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd TLS CA: no certificate in %s", f.ca)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// start serves the etcd API next to srv when --etcd-listen is set; stop
// ends it (before the server closes).
func (f *etcdFlags) start(srv *server.Server, logger *slog.Logger, stdout io.Writer) (stop func(), err error) {
	if f.listen == "" {
		return func() {}, nil
	}
	tc, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("etcd API: %w", err)
	}
	api := etcdapi.New(srv, etcdapi.Config{
		TLS: tc, AdvertiseClientURL: f.advertise, Logger: logger,
		ProgressNotifyInterval: time.Duration(f.progressMs) * time.Millisecond,
	})
	scheme := "plain"
	if tc != nil {
		scheme = "TLS"
	}
	fmt.Fprintf(stdout, "paddock etcd v3 API (%s) listening on %s\n", scheme, ln.Addr())
	go func() {
		if err := api.Serve(ln); err != nil {
			logger.Error("etcd API stopped", "err", err)
		}
	}()
	return api.Close, nil
}
