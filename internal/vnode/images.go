package vnode

import (
	"fmt"
	"path"
	"strings"
)

// ImageRule maps container images to a local binary: the node has no
// image store, so "running an image" means running the binary its rule
// names, bind-mounted at the image's entrypoint path.
type ImageRule struct {
	// Match is a repository ("ghcr.io/paddockhq/paddock"), its last path
	// segment ("paddock"), or either with a tag ("paddock:v2"). A rule
	// with a tag wins over one without.
	Match string
	// Binary is the executable on the host.
	Binary string
	// Entrypoint is where the binary appears in the container and what
	// runs when the pod gives no command; default "/" + the last segment
	// of Match (the Paddock image's entrypoint is /paddock).
	Entrypoint string
	// Cmd is the image's default arguments, used when the pod gives
	// neither command nor args.
	Cmd []string
}

// ParseImageRule parses "match=binary" (the --image flag).
func ParseImageRule(s string) (ImageRule, error) {
	m, bin, ok := strings.Cut(s, "=")
	if !ok || m == "" || bin == "" {
		return ImageRule{}, fmt.Errorf("image rule %q: want match=binary", s)
	}
	return ImageRule{Match: m, Binary: bin}, nil
}

func (r ImageRule) entrypoint() string {
	if r.Entrypoint != "" {
		return r.Entrypoint
	}
	repo, _ := splitImage(r.Match)
	return "/" + path.Base(repo)
}

// splitImage splits an image reference into repository and tag (digest
// dropped; no tag → "latest").
func splitImage(img string) (repo, tag string) {
	if i := strings.Index(img, "@"); i >= 0 {
		img = img[:i]
	}
	slash := strings.LastIndex(img, "/")
	if j := strings.LastIndex(img[slash+1:], ":"); j >= 0 {
		return img[:slash+1+j], img[slash+1+j+1:]
	}
	return img, "latest"
}

// matchImage finds the rule for image.
func matchImage(rules []ImageRule, image string) (ImageRule, bool) {
	repo, tag := splitImage(image)
	base := path.Base(repo)
	for _, want := range []string{repo + ":" + tag, base + ":" + tag, repo, base} {
		for _, r := range rules {
			if r.Match == want {
				return r, true
			}
		}
	}
	return ImageRule{}, false
}
