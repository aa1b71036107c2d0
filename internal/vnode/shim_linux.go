package vnode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// devNodes are the device files a container gets, as container runtimes
// give them (runc's default set).
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

func runShim(s *ShimSpec) error {
	must := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("shim: %s: %w", what, err)
		}
		return nil
	}
	// Nothing we mount may leak back to the host (the provider starts us
	// with CLONE_NEWNS; Go already made "/" private, this makes sure).
	if err := must("make / private", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")); err != nil {
		return err
	}
	if err := must("scratch tmpfs", unix.Mount("tmpfs", s.Scratch, "tmpfs", 0, "mode=0755")); err != nil {
		return err
	}
	upper, work := filepath.Join(s.Scratch, "upper"), filepath.Join(s.Scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return must("mkdir", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", upper, work)
	if err := must("overlay root", unix.Mount("overlay", s.Root, "overlay", 0, opts)); err != nil {
		return err
	}
	r := func(p string) string { return filepath.Join(s.Root, p) }
	// /proc and /sys from the host (no PID namespace: the container sees
	// the node's processes, like hostPID); a /dev of its own so that the
	// termination log can be a file in it.
	for _, d := range []string{"/proc", "/sys"} {
		if err := os.MkdirAll(r(d), 0o755); err != nil {
			return must("mkdir "+d, err)
		}
		if err := must("bind "+d, unix.Mount(d, r(d), "", unix.MS_BIND|unix.MS_REC, "")); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(r("/dev"), 0o755); err != nil {
		return must("mkdir /dev", err)
	}
	if err := must("/dev tmpfs", unix.Mount("tmpfs", r("/dev"), "tmpfs", unix.MS_NOSUID, "mode=0755")); err != nil {
		return err
	}
	for _, n := range devNodes {
		if err := bindFile("/dev/"+n, r("/dev/"+n), false); err != nil {
			return must("/dev/"+n, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(r("/dev/"+d), 0o755); err != nil {
			return must("mkdir /dev/"+d, err)
		}
		if err := must("bind /dev/"+d, unix.Mount("/dev/"+d, r("/dev/"+d), "", unix.MS_BIND|unix.MS_REC, "")); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		if err := os.Symlink(target, r("/dev/"+name)); err != nil {
			return must("symlink /dev/"+name, err)
		}
	}
	var readOnly []string
	for _, m := range s.Mounts {
		if err := bindFile(m.Source, r(m.Target), !m.File); err != nil {
			return must("mount "+m.Target, err)
		}
		if m.ReadOnly {
			readOnly = append(readOnly, r(m.Target))
		}
	}
	for link, target := range s.Symlinks {
		p := r(link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return must("mkdir for "+link, err)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return must("replace "+link, err)
		}
		if err := os.Symlink(target, p); err != nil {
			return must("symlink "+link, err)
		}
	}
	for _, p := range readOnly {
		if err := must("read-only "+p, unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")); err != nil {
			return err
		}
	}
	if s.ReadOnlyRoot {
		if err := must("read-only root", unix.Mount("", s.Root, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")); err != nil {
			return err
		}
	}
	// Into the new root: pivot_root(".", ".") stacks the old root under
	// the new one, and the lazy unmount drops it (what runc does).
	if err := must("chdir root", unix.Chdir(s.Root)); err != nil {
		return err
	}
	if err := must("pivot_root", unix.PivotRoot(".", ".")); err != nil {
		return err
	}
	if err := must("unmount old root", unix.Unmount(".", unix.MNT_DETACH)); err != nil {
		return err
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := must("chdir "+dir, os.Chdir(dir)); err != nil {
		return err
	}
	path := s.Path
	if !strings.Contains(path, "/") {
		// A bare name is looked up in the container's PATH.
		os.Setenv("PATH", envValue(s.Env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
		p, err := exec.LookPath(path)
		if err != nil {
			return must("look up "+path, err)
		}
		path = p
	}
	if s.UID >= 0 {
		groups := make([]int, 0, len(s.Groups))
		for _, g := range s.Groups {
			groups = append(groups, int(g))
		}
		gid := s.GID
		if gid < 0 {
			gid = 0
		}
		if err := must("setgroups", syscall.Setgroups(groups)); err != nil {
			return err
		}
		if err := must("setgid", syscall.Setgid(int(gid))); err != nil {
			return err
		}
		if err := must("setuid", syscall.Setuid(int(s.UID))); err != nil {
			return err
		}
	}
	// A change of credentials clears the parent-death signal; set it
	// again so the container dies with the provider.
	ppid := os.Getppid()
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() != ppid {
		return errors.New("shim: the provider exited")
	}
	return must("exec "+path, syscall.Exec(path, s.Args, s.Env))
}

// bindFile bind-mounts source onto target, making the mount point (a
// directory when dir, else an empty file) and its parents.
func bindFile(source, target string, dir bool) error {
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	return unix.Mount(source, target, "", unix.MS_BIND|unix.MS_REC, "")
}

func envValue(env []string, name, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return def
}
