package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Main is `paddock cli`: with a command after the flags it runs that one
// command and exits (0 ok, 1 the server refused, 2 bad usage, 3 connection
// trouble, 127 unknown command); without one it reads commands from stdin,
// interactively when stdin and stdout are a terminal.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("paddock cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("PADDOCK_CLI_SERVER", "localhost:2181"), "connect string: host:port[,host:port...][/chroot]")
	timeoutMs := fs.Int("timeout", 30000, "session timeout in ms; also bounds connecting and each command")
	output := fs.String("o", "text", `output format of read commands: "text" (as zkCli) or "json"`)
	readOnly := fs.Bool("r", false, "allow a read-only server (as zkCli -r)")
	var digests multiFlag
	fs.Var(&digests, "auth", "digest credentials user:password, added to the session (repeatable)")
	tlsCA := fs.String("tls-ca", "", "connect with TLS, trusting this CA bundle (PEM)")
	tlsCert := fs.String("tls-cert", "", "client certificate (PEM) for TLS")
	tlsKey := fs.String("tls-key", "", "client private key (PEM) for TLS")
	tlsName := fs.String("tls-server-name", "", "server name to verify (default: the host of the address)")
	tlsInsecure := fs.Bool("tls-insecure", false, "TLS without verifying the server certificate (testing only)")
	history := fs.String("history-file", defaultHistoryFile(), `interactive history file ("" to disable)`)
	fs.Bool("waitforconnection", false, "accepted for zkCli compatibility (paddock cli always waits)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: paddock cli [flags] [command [args...]]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nRun 'paddock cli help' for the commands.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "paddock cli: -o must be text or json, not %q\n", *output)
		return exitUsage
	}
	var tlsCfg *tls.Config
	if *tlsCA != "" || *tlsCert != "" || *tlsInsecure {
		var err error
		if tlsCfg, err = clientTLS(*tlsCA, *tlsCert, *tlsKey, *tlsName, *tlsInsecure); err != nil {
			fmt.Fprintln(stderr, "paddock cli:", err)
			return exitUsage
		}
	}
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	cfg := Config{
		Server:      *server,
		Timeout:     timeout,
		JSON:        *output == "json",
		Digest:      digests,
		Version:     version,
		HistoryFile: *history,
		Stdout:      stdout,
		Stderr:      stderr,
		Dial: func(s string) (Backend, error) {
			return Dial(DialOptions{Servers: s, SessionTimeout: timeout, TLS: tlsCfg, ReadOnly: *readOnly})
		},
	}
	sh := NewShell(cfg)
	words := fs.Args()
	if len(words) > 0 {
		if c, ok := commandTable()[words[0]]; ok && c.local && words[0] != "connect" {
			return sh.RunCommand(words) // help, version: no server needed
		}
		if err := sh.Connect(true); err != nil {
			return sh.report(err)
		}
		code := sh.RunCommand(words)
		sh.Close()
		return code
	}
	tty := isTerminal(stdin) && isTerminal(stdout)
	if tty {
		fmt.Fprintf(stdout, "Connecting to %s\n", *server)
	}
	if err := sh.Connect(false); err != nil {
		return sh.report(err)
	}
	if tty {
		fmt.Fprintln(stdout, "Welcome to Paddock! Type help for the commands; Tab completes commands and paths.")
		return sh.RunTerminal()
	}
	return sh.RunScript(stdin)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultHistoryFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".paddock_cli_history")
}

func isTerminal(x any) bool {
	f, ok := x.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func clientTLS(ca, cert, key, name string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: name, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", ca)
		}
		cfg.RootCAs = pool
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, errors.New("-tls-cert and -tls-key go together")
		}
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}
