package vnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vals := map[string]string{"A": "1", "B": "two"}
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"cost $5", "cost $5"},
		{"$(A", "$(A"},
		{"end$", "end$"},
	} {
		if got := expand(c.in, vals); got != c.want {
			t.Errorf("expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBindToPod(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0.0.0.0:2181", "127.10.0.5:2181"},
		{":8080", "127.10.0.5:8080"},
		{"0.0.0.0", "127.10.0.5"},
		{"--addr=0.0.0.0:1", "--addr=127.10.0.5:1"},
		{"zk-1.zk-hs:2181", "zk-1.zk-hs:2181"},
		{"a:8080", "a:8080"},
	} {
		if got := bindToPod(c.in, "127.10.0.5"); got != c.want {
			t.Errorf("bindToPod(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMatchImage(t *testing.T) {
	rules := []ImageRule{
		{Match: "paddock", Binary: "/new"},
		{Match: "paddock:old", Binary: "/old"},
		{Match: "registry.example/tools/sh", Binary: "/bin/sh"},
	}
	for _, c := range []struct{ image, want, entry string }{
		{"ghcr.io/paddockhq/paddock:v1", "/new", "/paddock"},
		{"paddock", "/new", "/paddock"},
		{"ghcr.io/paddockhq/paddock:old", "/old", "/paddock"},
		{"paddock:old@sha256:abc", "/old", "/paddock"},
		{"registry.example/tools/sh:1", "/bin/sh", "/sh"},
		{"other/sh", "", ""},
	} {
		r, ok := matchImage(rules, c.image)
		if (c.want == "") == ok || r.Binary != c.want || (ok && r.entrypoint() != c.entry) {
			t.Errorf("matchImage(%q) = %+v %v, want %s at %s", c.image, r, ok, c.want, c.entry)
		}
	}
}

func TestHostsFile(t *testing.T) {
	recs := []dnsRecord{{ns: "zk", name: "zk-1.zk-hs", ip: "127.10.0.2"}, {ns: "other", name: "x", ip: "127.10.0.9"}}
	got := string(hostsFile(recs, "zk", &podView{ns: "zk", host: "zk-2", sub: "zk-hs", ip: "127.10.0.3"}))
	for _, want := range []string{
		"127.10.0.3\tzk-2.zk-hs.zk.svc.cluster.local\tzk-2\n",
		"127.10.0.2\tzk-1.zk-hs.zk.svc.cluster.local zk-1.zk-hs.zk.svc zk-1.zk-hs.zk zk-1.zk-hs\n",
		"127.10.0.9\tx.other.svc.cluster.local x.other.svc x.other\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
}

// TestWriteProjection: files appear through ..data symlinks, an update
// swaps them all at once, and removed keys disappear.
func TestWriteProjection(t *testing.T) {
	dir := t.TempDir()
	if err := writeProjection(dir, map[string]projFile{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if read("a") != "1" || read("sub/b") != "2" {
		t.Fatalf("first write: a=%q sub/b=%q", read("a"), read("sub/b"))
	}
	if err := writeProjection(dir, map[string]projFile{"a": {[]byte("3"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	if read("a") != "3" || !strings.HasPrefix(read("sub/b"), "<") {
		t.Fatalf("after update: a=%q sub/b=%q", read("a"), read("sub/b"))
	}
	entries, _ := os.ReadDir(dir)
	var versions int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..vnode_") {
			versions++
		}
	}
	if versions != 1 {
		t.Fatalf("%d versions kept, want 1", versions)
	}
}
