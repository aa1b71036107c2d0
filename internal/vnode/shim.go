package vnode

import (
	"encoding/json"
	"fmt"
	"os"
)

// ShimSpec is what the shim needs to turn itself into a container: the
// provider writes it as JSON next to the pod's other files and starts
// `vnode shim <spec.json>` in a new mount namespace.
type ShimSpec struct {
	// Root is an empty directory that becomes the container's "/": an
	// overlay of the host's root file system (read through, written to a
	// private tmpfs mounted on Scratch), so that mount points for volumes
	// can be made anywhere without touching the host.
	Root    string `json:"root"`
	Scratch string `json:"scratch"`
	// Mounts are bind mounts into the container, parents first.
	Mounts []ShimMount `json:"mounts"`
	// Symlinks are made inside the container after the mounts (/etc/hosts
	// pointing into the pod's hosts directory, so that the provider can
	// replace the file atomically).
	Symlinks map[string]string `json:"symlinks,omitempty"`
	// ReadOnlyRoot remounts the container's root read-only
	// (securityContext.readOnlyRootFilesystem); volumes stay as mounted.
	ReadOnlyRoot bool `json:"readOnlyRoot,omitempty"`
	// UID/GID/Groups are the credentials the program runs with
	// (securityContext runAsUser/runAsGroup, fsGroup and
	// supplementalGroups); UID < 0 keeps root.
	UID    int64   `json:"uid"`
	GID    int64   `json:"gid"`
	Groups []int64 `json:"groups,omitempty"`
	// Path, Args, Env and Dir are the program (a path inside the
	// container), its argv (Args[0] included), environment and working
	// directory.
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
}

// ShimMount is one bind mount: Source on the host, Target inside the
// container. File mounts bind a single file (the termination log).
type ShimMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	File     bool   `json:"file,omitempty"`
}

// Shim is the `vnode shim <spec.json>` subcommand: it must run as root, in
// a mount namespace of its own (the provider starts it with
// CLONE_NEWNS). It builds the container's file system, pivots into it,
// drops to the pod's user and execs the program, so the container's
// process is the shim's process (its PID is the one the provider
// watches and signals). It returns only on failure.
func Shim(specFile string) error {
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var s ShimSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	return runShim(&s)
}
