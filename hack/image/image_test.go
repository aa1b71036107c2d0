package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the real static binary and the image, writes both
// output forms, reads the tarball back and checks what a runtime sees.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the paddock binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	if err := BuildBinary(bin, "amd64", "test"); err != nil {
		t.Fatal(err)
	}
	// Static: no interpreter, nothing dynamic to load on an empty base.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary has a dynamic interpreter; CGO_ENABLED=0 was not honoured")
		}
	}
	f.Close()

	img, err := Build(Options{Binary: bin, Arch: "amd64", Version: "test", Created: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "paddock.tar")
	ref, _ := name.ParseReference("paddock:test")
	if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(dir, "oci"), emptyIndex())
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci", "index.json")); err != nil {
		t.Fatal(err)
	}

	back, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/paddock"}) || !slices.Equal(c.Cmd, []string{"server"}) {
		t.Errorf("config user=%q entrypoint=%v cmd=%v", c.User, c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if _, ok := c.ExposedPorts["2181/tcp"]; !ok {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v (want one: empty base)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
	if h := files["paddock"]; h == nil || h.Mode&0o111 == 0 || h.Size < 1<<20 {
		t.Errorf("/paddock missing or not executable: %+v", h)
	}
	for _, want := range []string{"etc/passwd", "etc/group", "tmp/", "data/"} {
		if files[want] == nil {
			t.Errorf("%s missing from the layer", want)
		}
	}
	if h := files["data/"]; h != nil && h.Uid != UID {
		t.Errorf("/data owned by %d", h.Uid)
	}
	if len(files) > 10 {
		t.Errorf("the layer holds %d entries; the base should be empty", len(files))
	}
}
