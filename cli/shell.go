package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/peterh/liner"
)

// Exit codes of `paddock cli`.
const (
	exitOK         = 0
	exitZooKeeper  = 1   // the server refused the request (NoNode, NodeExists, BadVersion, NoAuth, ...)
	exitUsage      = 2   // malformed command line, bad path, bad option value
	exitConnection = 3   // cannot connect, connection loss, session expired, auth failed
	exitNotFound   = 127 // unknown command (as zkCli)
)

// Config configures a [Shell].
type Config struct {
	// Server is the connect string, "host:port[,host:port][/chroot]".
	Server string
	// Timeout is the session timeout asked of the server and the longest
	// one command (or the first connection) may take.
	Timeout time.Duration
	// JSON makes the read commands print JSON (-o json).
	JSON bool
	// Digest holds "user:password" credentials added as digest auth on
	// every new session.
	Digest []string
	// Version is printed by the version command.
	Version string
	// HistoryFile keeps the interactive history across runs; "" disables.
	HistoryFile string
	// Dial opens a session to a connect string. Nil means [Dial] with
	// DialOptions{Servers, SessionTimeout: Timeout}.
	Dial func(server string) (Backend, error)
	// Stdout and Stderr receive the output; nil means os.Stdout/os.Stderr.
	Stdout, Stderr io.Writer
}

// Shell runs zkCli commands against a Backend, one at a time.
type Shell struct {
	cfg  Config
	out  io.Writer // both writers share outMu, so watch events never cut a line
	errw io.Writer

	outMu  sync.Mutex
	rawOut io.Writer

	be       Backend
	pumpDone chan struct{}
	host     string
	json     bool
	// async prints events as they arrive (terminal); otherwise they are
	// printed between commands.
	async bool

	printWatches atomic.Bool
	// showEvents is false in one-shot mode and at the end of a session.
	showEvents atomic.Bool
	// prompt describes the prompt to redraw after an event printed while
	// the line editor waits for input (zero when not at a prompt).
	prompt atomic.Value // promptState

	history  map[int]string
	count    int
	exitCode int
	quit     bool
	cmd      *command
}

// NewShell returns a shell; it connects on Connect (or the first command).
func NewShell(cfg Config) *Shell {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Dial == nil {
		timeout := cfg.Timeout
		cfg.Dial = func(server string) (Backend, error) {
			return Dial(DialOptions{Servers: server, SessionTimeout: timeout})
		}
	}
	sh := &Shell{cfg: cfg, host: cfg.Server, json: cfg.JSON, history: map[int]string{}, rawOut: cfg.Stdout}
	sh.out = &lockedWriter{mu: &sh.outMu, w: cfg.Stdout}
	sh.errw = &lockedWriter{mu: &sh.outMu, w: cfg.Stderr}
	sh.printWatches.Store(true)
	sh.prompt.Store(promptState{})
	return sh
}

type promptState struct {
	host  string
	be    Backend
	count int
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Backend returns the current session (nil before Connect).
func (sh *Shell) Backend() Backend { return sh.be }

// ExitCode is the exit code of the last command, as zkCli reports it.
func (sh *Shell) ExitCode() int { return sh.exitCode }

// connect replaces the session with a new one to host.
func (sh *Shell) connect(host string) error {
	if sh.be != nil && sh.be.State().Alive() {
		sh.closeBackend()
	}
	sh.host = host
	be, err := sh.cfg.Dial(host)
	if err != nil {
		return &cliError{msg: err.Error(), code: exitUsage}
	}
	sh.be = be
	sh.pumpDone = nil
	if sh.async {
		done := make(chan struct{})
		sh.pumpDone = done
		go sh.pump(be, done)
	}
	if len(sh.cfg.Digest) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
		defer cancel()
		for _, d := range sh.cfg.Digest {
			if err := be.AddAuth(ctx, "digest", []byte(d)); err != nil {
				return wrap(err, "")
			}
		}
	}
	return nil
}

// Connect opens the first session and, with wait, waits for it.
func (sh *Shell) Connect(wait bool) error {
	if err := sh.connect(sh.host); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
	defer cancel()
	if err := sh.be.WaitConnected(ctx); err != nil {
		var ce *client.ConnectError
		if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
			msg := fmt.Sprintf("Unable to connect to %s within %v", sh.host, sh.cfg.Timeout)
			if ce != nil && ce.Last != nil {
				msg += " (" + ce.Last.Error() + ")"
			}
			return &cliError{msg: msg, code: exitConnection}
		}
		return &cliError{msg: fmt.Sprintf("Unable to connect to %s: %v", sh.host, err), code: exitConnection}
	}
	return nil
}

func (sh *Shell) closeBackend() {
	sh.be.Close()
	if sh.pumpDone != nil {
		<-sh.pumpDone
		return
	}
	// After Close the stream holds the rest of the session's events, the
	// Closed event last.
	for {
		ev, err := sh.be.NextEvent(context.Background())
		if err != nil {
			return
		}
		sh.printEvent(ev)
	}
}

// Close ends the session without printing its Closed event.
func (sh *Shell) Close() {
	sh.showEvents.Store(false)
	if sh.be != nil {
		sh.closeBackend()
		sh.be = nil
	}
}

// pump prints the session's events as they arrive (terminal mode).
func (sh *Shell) pump(be Backend, done chan struct{}) {
	defer close(done)
	for {
		ev, err := be.NextEvent(context.Background())
		if err != nil {
			return // io.EOF: the session is over
		}
		sh.printEvent(ev)
	}
}

// printEvent prints a watch event as zkCli's watcher does.
func (sh *Shell) printEvent(ev Event) {
	if !sh.showEvents.Load() || !sh.printWatches.Load() {
		return
	}
	sh.outMu.Lock()
	defer sh.outMu.Unlock()
	var prompt string
	if at, ok := sh.prompt.Load().(promptState); ok && at.be != nil {
		prompt = fmt.Sprintf("[zk: %s(%s) %d] ", at.host, at.be.State(), at.count)
	}
	var b strings.Builder
	if prompt != "" {
		b.WriteString("\r\033[K") // clear the prompt line the event interrupts
	}
	b.WriteString("\nWATCHER::\n\n" + ev.String() + "\n")
	if prompt != "" {
		b.WriteString(prompt)
	}
	io.WriteString(sh.rawOut, b.String())
}

// drain prints the events received so far (script mode, where events are
// printed between commands: a watch fired by a command shows right after
// its output, deterministically, since every event is queued before the
// reply to any later request).
func (sh *Shell) drain() {
	if sh.be == nil || sh.async {
		return
	}
	for {
		ev, ok := sh.be.TryEvent()
		if !ok {
			return
		}
		sh.printEvent(ev)
	}
}

// Prompt is zkCli's prompt: "[zk: host:port(CONNECTED) 3] ".
func (sh *Shell) Prompt() string {
	state := StateNotConnected
	if sh.be != nil {
		state = sh.be.State()
	}
	return fmt.Sprintf("[zk: %s(%s) %d] ", sh.host, state, sh.count)
}

// ExecLine runs one line typed at the shell (history numbering included).
func (sh *Shell) ExecLine(line string) {
	words := SplitLine(line)
	if len(words) == 0 {
		return
	}
	sh.history[sh.count] = line
	sh.execWords(words)
	sh.count++
}

// RunCommand runs one command given as words (one-shot mode) and returns
// its exit code.
func (sh *Shell) RunCommand(words []string) int {
	sh.execWords(words)
	return sh.exitCode
}

func (sh *Shell) execWords(words []string) error {
	prev := sh.exitCode
	err := sh.run(words)
	if sh.quit && err == nil {
		sh.exitCode = prev // quit exits with the last command's code, as zkCli
		return nil
	}
	sh.exitCode = exitOK
	if err != nil {
		sh.exitCode = sh.report(err)
	}
	return nil
}

// report prints err as zkCli would and returns the exit code for it.
func (sh *Shell) report(err error) int {
	var pe *parseError
	var ze *zkError
	var ce *cliError
	switch {
	case errors.As(err, &pe):
		fmt.Fprintln(sh.errw, pe.msg)
		return exitUsage
	case errors.As(err, &ze):
		fmt.Fprintln(sh.errw, ze.Error())
		if connectionCode(ze.code) {
			return exitConnection
		}
		return exitZooKeeper
	case errors.As(err, &ce):
		if ce.msg != "" {
			fmt.Fprintln(sh.errw, ce.msg)
		}
		return ce.code
	}
	fmt.Fprintln(sh.errw, err.Error())
	return exitConnection
}

func (sh *Shell) run(words []string) error {
	c, ok := commandTable()[words[0]]
	if !ok {
		sh.usage(sh.errw)
		return &cliError{msg: "Command not found: " + words[0], code: exitNotFound}
	}
	p, err := parseOptions(c.opts, words)
	if err != nil {
		return err
	}
	if len(p.args) < c.minArgs {
		return usageErr(c)
	}
	if !c.local && (sh.be == nil || !sh.be.State().Alive()) {
		return &cliError{msg: "Not connected", code: exitConnection}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
	defer cancel()
	prev := sh.cmd
	sh.cmd = c
	defer func() { sh.cmd = prev }()
	return c.run(sh, ctx, p)
}

// usage lists the commands as zkCli does on a bad command.
func (sh *Shell) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("paddock cli [-server host:port[,host:port][/chroot]] [-timeout ms] [-o json] [-auth user:password] [-tls-ca file [-tls-cert file -tls-key file]] [cmd args]\n")
	names := CommandNames()
	for _, n := range names {
		b.WriteString("\t" + commandTable()[n].usageLine() + "\n")
	}
	io.WriteString(w, b.String())
}

// RunScript reads commands line by line from r, without prompts, as zkCli
// does when its input is not a terminal; it returns the last command's
// exit code.
func (sh *Shell) RunScript(r io.Reader) int {
	sh.showEvents.Store(true)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if sh.be != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
		sh.be.WaitConnected(ctx)
		cancel()
	}
	sh.drain()
	for !sh.quit && sc.Scan() {
		sh.drain()
		sh.ExecLine(sc.Text())
		sh.drain()
	}
	sh.finish()
	return sh.exitCode
}

// finish closes the session: after quit its Closed event is shown (as
// zkCli shows it); at the end of input it is not.
func (sh *Shell) finish() {
	if !sh.quit {
		sh.showEvents.Store(false)
	}
	if sh.be != nil {
		sh.closeBackend()
		sh.be = nil
	}
}

// RunTerminal is the interactive shell on a terminal: line editing,
// history kept in cfg.HistoryFile, tab completion of commands and of
// znode paths, watch events printed as they arrive.
func (sh *Shell) RunTerminal() int {
	sh.showEvents.Store(true)
	sh.async = true
	if sh.be != nil && sh.pumpDone == nil {
		done := make(chan struct{})
		sh.pumpDone = done
		go sh.pump(sh.be, done)
	}
	line := liner.NewLiner()
	line.SetCtrlCAborts(true)
	line.SetTabCompletionStyle(liner.TabPrints)
	line.SetWordCompleter(sh.Complete)
	if sh.cfg.HistoryFile != "" {
		if f, err := os.Open(sh.cfg.HistoryFile); err == nil {
			line.ReadHistory(f)
			f.Close()
		}
	}
	saveHistory := func() {
		if sh.cfg.HistoryFile == "" {
			return
		}
		os.MkdirAll(filepath.Dir(sh.cfg.HistoryFile), 0o755)
		if f, err := os.OpenFile(sh.cfg.HistoryFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
			line.WriteHistory(f)
			f.Close()
		}
	}
	if sh.be != nil {
		// Show CONNECTED in the first prompt when the server answers
		// promptly; the shell works (and waits) either way.
		ctx, cancel := context.WithTimeout(context.Background(), min(sh.cfg.Timeout, 3*time.Second))
		sh.be.WaitConnected(ctx)
		cancel()
	}
	for !sh.quit {
		p := sh.Prompt()
		sh.prompt.Store(promptState{sh.host, sh.be, sh.count})
		l, err := line.Prompt(p)
		sh.prompt.Store(promptState{})
		if errors.Is(err, liner.ErrPromptAborted) {
			continue
		}
		if err != nil {
			fmt.Fprintln(sh.out)
			break
		}
		if strings.TrimSpace(l) != "" {
			line.AppendHistory(l)
		}
		sh.ExecLine(l)
	}
	saveHistory()
	line.Close()
	sh.finish()
	return sh.exitCode
}

// Complete is the tab completer: the first word completes to a command,
// a word starting with "/" to the children of its parent in the live
// tree (JLineZNodeCompleter).
func (sh *Shell) Complete(line string, pos int) (head string, completions []string, tail string) {
	if pos > len(line) {
		pos = len(line)
	}
	before, tail := line[:pos], line[pos:]
	start := strings.LastIndexByte(before, ' ') + 1
	head, token := before[:start], before[start:]
	if strings.HasPrefix(token, "/") {
		if sh.be == nil || !sh.be.State().Alive() {
			return head, nil, tail
		}
		i := strings.LastIndexByte(token, '/')
		dir, prefix := token[:i], token[i+1:]
		if dir == "" {
			dir = "/"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		children, _, err := sh.be.Children(ctx, dir, false)
		if err != nil {
			return head, nil, tail
		}
		sort.Strings(children)
		for _, c := range children {
			if strings.HasPrefix(c, prefix) {
				completions = append(completions, joinPath(dir, c))
			}
		}
		return head, completions, tail
	}
	if strings.TrimSpace(head) == "" {
		for _, c := range CommandNames() {
			if strings.HasPrefix(c, token) {
				completions = append(completions, c+" ")
			}
		}
	}
	return head, completions, tail
}
