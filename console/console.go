package console

import (
	"context"
	"crypto/x509"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/proto"
)

//go:embed web
var webFS embed.FS

// Options configures the console.
type Options struct {
	// Writes enables create, edit and delete (paddock server
	// --console-writes). Without it the console is read-only.
	Writes bool
	// SessionTimeout is the timeout asked for the session the console
	// writes with; 0 asks for the server's maximum.
	SessionTimeout time.Duration
	// WriteTimeout bounds how long a write may wait to be applied;
	// default 15s.
	WriteTimeout time.Duration
	// Logger receives the console's logs (every write is logged with its
	// user); default slog.Default().
	Logger *slog.Logger
}

// Handler serves the console under /console/: the page and its assets,
// and the JSON API under /console/api/.
type Handler struct {
	b    Backend
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	// smu guards session, the session the console writes with (created
	// on the first write, recreated if it expired).
	smu     sync.Mutex
	session int64
}

// New returns the console for a backend.
func New(b Backend, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 15 * time.Second
	}
	h := &Handler{b: b, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(static)
	h.mux.Handle("/console/", http.StripPrefix("/console/", noCache(files)))
	h.mux.HandleFunc("GET /console/api/info", h.api(h.info))
	h.mux.HandleFunc("GET /console/api/children", h.api(h.children))
	h.mux.HandleFunc("GET /console/api/node", h.api(h.getNode))
	h.mux.HandleFunc("GET /console/api/search", h.api(h.search))
	h.mux.HandleFunc("GET /console/api/sessions", h.api(h.sessions))
	h.mux.HandleFunc("GET /console/api/watches", h.api(h.watches))
	h.mux.HandleFunc("GET /console/api/ensemble", h.api(h.ensemble))
	h.mux.HandleFunc("POST /console/api/node", h.api(h.write(h.createNode)))
	h.mux.HandleFunc("PUT /console/api/node", h.api(h.write(h.setData)))
	h.mux.HandleFunc("DELETE /console/api/node", h.api(h.write(h.deleteNode)))
	h.mux.HandleFunc("PUT /console/api/acl", h.api(h.write(h.setACL)))
	h.mux.HandleFunc("/console/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "NotFound", Message: "no such console API: " + r.Method + " " + r.URL.Path})
	})
	return h
}

// ServeHTTP serves /console/ and everything under it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func noCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The assets change with the binary; they are small.
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// sessionFor returns the console's write session, opening one if needed.
func (h *Handler) sessionFor(ctx context.Context) (int64, error) {
	h.smu.Lock()
	defer h.smu.Unlock()
	if h.session != 0 {
		return h.session, nil
	}
	id, err := h.b.OpenSession(ctx, h.opts.SessionTimeout)
	if err != nil {
		return 0, err
	}
	h.session = id
	h.log.Info("console session opened", "session", hexID(id))
	return id, nil
}

func (h *Handler) dropSession(id int64) {
	h.smu.Lock()
	if h.session == id {
		h.session = 0
	}
	h.smu.Unlock()
}

// Session returns the id of the session the console writes with, or 0
// before the first write.
func (h *Handler) Session() int64 {
	h.smu.Lock()
	defer h.smu.Unlock()
	return h.session
}

// submit runs one write with the console's session, opening a fresh
// session once if the current one expired.
func (h *Handler) submit(ctx context.Context, op proto.OpCode, req proto.Record, auth []proto.Id) (proto.Record, int64, proto.ErrCode, error) {
	for attempt := 0; ; attempt++ {
		sid, err := h.sessionFor(ctx)
		if err != nil {
			return nil, 0, 0, err
		}
		resp, zxid, code, err := h.b.Submit(ctx, sid, op, req, auth)
		if err == nil && code == proto.ErrSessionExpired && attempt == 0 {
			h.dropSession(sid)
			continue
		}
		return resp, zxid, code, err
	}
}

// ids returns the request's ZooKeeper ids. Over HTTPS with a client
// certificate the TLS handshake verified, they include its x509 id.
func (h *Handler) ids(r *http.Request) ([]proto.Id, error) {
	user, pass, ok := r.BasicAuth()
	var peer *x509.Certificate
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		peer = r.TLS.PeerCertificates[0]
	}
	return h.b.Identify(r.RemoteAddr, peer, user, pass, ok)
}

func userOf(ids []proto.Id) string {
	var names []string
	for _, id := range ids {
		switch id.Scheme {
		case "digest":
			u, _, _ := strings.Cut(id.Id, ":")
			names = append(names, "digest:"+u)
		case "super":
			names = append(names, "super")
		case "ip":
			names = append(names, "ip:"+id.Id)
		default:
			names = append(names, id.Scheme+":"+id.Id)
		}
	}
	return strings.Join(names, ",")
}
