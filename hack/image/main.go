package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	tag := flag.String("tag", "ghcr.io/paddockhq/paddock:dev", "image reference written into the tarball")
	tarOut := flag.String("tar", "", "write a docker-loadable tarball here")
	layoutOut := flag.String("layout", "", "write (or add to) an OCI image layout directory here")
	binary := flag.String("binary", "", "prebuilt static linux binary (default: build ./cmd/paddock)")
	arch := flag.String("arch", "amd64", "target architecture (GOARCH)")
	version := flag.String("version", "dev", "image version label")
	revision := flag.String("revision", "", "source revision label")
	flag.Parse()
	if *tarOut == "" && *layoutOut == "" {
		fmt.Fprintln(os.Stderr, "image: give --tar and/or --layout")
		os.Exit(2)
	}
	bin := *binary
	if bin == "" {
		dir, err := os.MkdirTemp("", "paddock-image-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "paddock")
		if err := BuildBinary(bin, *arch, *version); err != nil {
			fail(err)
		}
	}
	img, err := Build(Options{Binary: bin, Arch: *arch, Version: *version, Revision: *revision, Created: time.Unix(0, 0).UTC()})
	if err != nil {
		fail(err)
	}
	if *tarOut != "" {
		ref, err := name.ParseReference(*tag)
		if err != nil {
			fail(err)
		}
		if err := tarball.WriteToFile(absPath(*tarOut), ref, img); err != nil {
			fail(err)
		}
		fmt.Println("wrote", *tarOut, "as", ref.Name())
	}
	if *layoutOut != "" {
		p, err := layout.FromPath(*layoutOut)
		if err != nil {
			if p, err = layout.Write(*layoutOut, empty.Index); err != nil {
				fail(err)
			}
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *tag})); err != nil {
			fail(err)
		}
		fmt.Println("wrote OCI layout", *layoutOut)
	}
	d, _ := img.Digest()
	fmt.Println("digest", d)
}

// BuildBinary builds the static paddock binary for linux/arch.
func BuildBinary(out, arch, version string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-s -w -X github.com/paddockhq/paddock/server.Version="+version, "-o", out, "./cmd/paddock")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the paddock module")
	}
	return filepath.Dir(mod), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}
