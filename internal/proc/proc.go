// Package proc runs the child processes of Paddock's system tests: a
// standalone server (internal/testserver) or an ensemble member
// (internal/faults). Each runs in its own process group, so a signal meant
// for it never reaches the test binary, and is addressed by its PID only:
// tests end the processes they started and nothing else. Output of every
// run is appended to one log file, so a restart keeps the history that
// explains a failure.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a restartable child process. The zero value is ready to Start.
type Proc struct {
	mu      sync.Mutex
	pid     int
	done    chan struct{} // closed when the current run has exited
	waitErr error
	starts  int
}

// Start runs bin with args, appending its stdout and stderr to logFile
// after a header line naming the command. It does not wait for anything
// but the fork.
func (p *Proc) Start(logFile, bin string, args []string) error {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.pid, p.done, p.waitErr = cmd.Process.Pid, done, nil
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// PID returns the current (or last) process id; 0 if never started.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Starts reports how many times the process has been started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Done is closed when the current run exits; nil if never started.
func (p *Proc) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the process is alive (a stopped one counts).
func (p *Proc) Running() bool {
	done := p.Done()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// ExitError returns how the last run exited (nil while it runs).
func (p *Proc) ExitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Signal sends sig to the process if it runs; a process that has just
// exited is not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return nil
	}
	if err := syscall.Kill(p.PID(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// Wait waits up to d for the process to exit and reports whether it has.
func (p *Proc) Wait(d time.Duration) bool {
	done := p.Done()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// SignalAndWait sends sig and waits up to grace for the exit, then sends
// SIGKILL and waits for good. Stopping a stopped process is a no-op.
func (p *Proc) SignalAndWait(sig syscall.Signal, grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	if p.Wait(grace) {
		return nil
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.Done()
	return nil
}

// TailFile returns the last n lines of the file at path (the error text if
// it cannot be read), for failure messages.
func TailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
