// Command image builds Paddock's container image without a Docker engine:
// the static paddock binary on an empty base, as an OCI image layout and/or
// a tarball that `docker load`, `podman load`, `ctr import`, `kind load
// image-archive` and `crane push` accept.
//
//	go run ./hack/image --tag ghcr.io/paddockhq/paddock:dev --tar paddock.tar --layout out/oci
//
// The image: one layer with /paddock (CGO_ENABLED=0, -trimpath), /etc/passwd
// and /etc/group naming the non-root user 65532 (nonroot), /tmp and /data
// owned by it; config User 65532:65532, Entrypoint ["/paddock"], Cmd
// ["server"], the ZooKeeper ports exposed, OCI labels. deploy/Dockerfile
// builds the same image with Docker.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options describe the image.
type Options struct {
	Binary   string // path of the static paddock binary
	Arch     string // amd64, arm64, ...
	Version  string // org.opencontainers.image.version
	Revision string // org.opencontainers.image.revision
	Created  time.Time
}

// User and group the image runs as (distroless' "nonroot").
const (
	UID = 65532
	GID = 65532
)

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	layerTar, err := rootfs(bin, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cf.Config.Entrypoint = []string{"/paddock"}
	cf.Config.Cmd = []string{"server"}
	cf.Config.WorkingDir = "/data"
	cf.Config.Env = []string{"PATH=/", "PADDOCK_DATA_DIR=/data"}
	cf.Config.ExposedPorts = map[string]struct{}{"2181/tcp": {}, "2281/tcp": {}, "2888/tcp": {}, "8080/tcp": {}}
	cf.Config.Volumes = map[string]struct{}{"/data": {}}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "paddock",
		"org.opencontainers.image.description": "ZooKeeper rebuilt in Go for Kubernetes: server, operator and tools in one static binary",
		"org.opencontainers.image.source":      "https://github.com/paddockhq/paddock",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the one layer: the binary and the few files a non-root static
// binary needs.
func rootfs(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)))
		},
		func() error { return file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID))) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("data", 0o750, UID) },
		func() error { return dir("home", 0o755, 0) },
		func() error { return dir("home/nonroot", 0o700, UID) },
		func() error { return file("paddock", 0o755, bin) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// absPath resolves p against the working directory.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func emptyIndex() v1.ImageIndex { return empty.Index }
