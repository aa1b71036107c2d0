package testserver

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/paddockhq/paddock/internal/zkref"
)

// StartMain starts a Paddock server outside any test, for a TestMain that
// serves runnable examples (which get no *testing.T). The caller must call
// Stop and then RemoveAll.
func StartMain(opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "paddock-main-")
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(base, "data")
	}
	if opts.Port == 0 {
		ports, err := zkref.FreePorts(1)
		if err != nil {
			os.RemoveAll(base)
			return nil, err
		}
		opts.Port = ports[0]
	}
	s := &Server{
		Addr:    fmt.Sprintf("127.0.0.1:%d", opts.Port),
		DataDir: opts.DataDir,
		LogFile: filepath.Join(base, "server.log"),
		opts:    opts,
		base:    base,
	}
	if err := s.start(bin); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	return s, nil
}

// RemoveAll deletes the directory StartMain made for a stopped server.
func (s *Server) RemoveAll() error {
	if s.base == "" {
		return nil
	}
	return os.RemoveAll(s.base)
}
