package main

import (
	"flag"

	"github.com/paddockhq/paddock/server"
)

// securityFlags holds the `paddock server` flags of server.SecurityConfig
// (docs/SECURITY.md); like every server flag each has a PADDOCK_*
// environment variable.
type securityFlags struct {
	cfg            server.SecurityConfig
	enforceSchemes string
}

// addSecurityFlags registers the TLS, x509, SASL and auth enforcement
// flags on fs.
func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	f := &securityFlags{}
	c := &f.cfg
	fs.StringVar(&c.SecureListenAddr, "secure-addr", "", "TLS client listen address (secureClientPortAddress:secureClientPort); empty = no TLS")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM server certificate (chain) for --secure-addr")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key for --tls-cert (empty: the key is in the --tls-cert file)")
	fs.StringVar(&c.TLSCAFile, "tls-ca", "", "PEM CA certificates that client certificates must chain to")
	fs.StringVar(&c.TLSClientAuth, "tls-client-auth", "need", "client certificates: none, want or need (ssl.clientAuth)")
	fs.StringVar(&c.SuperUserX509, "x509-super-user", "", "client certificate subject DN that is super (X509AuthenticationProvider.superUser)")
	fs.StringVar(&c.JAASFile, "jaas-file", "", "JAAS file with the SASL DIGEST-MD5 users, user_<name>=\"<password>\" (java.security.auth.login.config)")
	fs.StringVar(&c.JAASSection, "jaas-section", "Server", "JAAS section to read (zookeeper.sasl.serverconfig)")
	fs.StringVar(&c.SaslSuperUser, "sasl-super-user", "", "SASL user that is super (zookeeper.superUser)")
	fs.StringVar(&c.SaslSuperPassword, "sasl-super-password", "", "password of the SASL user \"super\" (zookeeper.SASLAuthenticationProvider.superPassword)")
	fs.BoolVar(&c.EnforceAuth, "enforce-auth", false, "close sessions that are not authenticated with one of --enforce-auth-schemes (enforce.auth.enabled)")
	fs.StringVar(&f.enforceSchemes, "enforce-auth-schemes", "", "comma-separated schemes for --enforce-auth: ip, digest, x509, sasl (enforce.auth.schemes)")
	fs.BoolVar(&c.SessionRequireClientSASLAuth, "require-sasl", false, "require SASL authentication (sessionRequireClientSASLAuth)")
	fs.StringVar(&c.AdminTLSCertFile, "admin-tls-cert", "", "PEM certificate (chain) of the admin server: it serves HTTPS only (admin.forceHttps with ssl.quorum.keyStore.location)")
	fs.StringVar(&c.AdminTLSKeyFile, "admin-tls-key", "", "PEM private key for --admin-tls-cert (empty: the key is in the --admin-tls-cert file)")
	fs.StringVar(&c.AdminTLSCAFile, "admin-tls-ca", "", "PEM CA certificates that admin clients' certificates must chain to (ssl.quorum.trustStore.location)")
	fs.StringVar(&c.AdminTLSClientAuth, "admin-tls-client-auth", "none", "admin client certificates: none, want or need (admin.needClientAuth=true is need)")
	fs.BoolVar(&c.AdminPortUnification, "admin-port-unification", false, "with --admin-tls-cert, also serve plain HTTP on the admin port (admin.portUnification)")
	return f
}

// config returns the parsed security configuration.
func (f *securityFlags) config() server.SecurityConfig {
	c := f.cfg
	if f.enforceSchemes != "" {
		c.EnforceAuthSchemes = splitList(f.enforceSchemes)
	}
	return c
}
