package web

import (
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
)

// pprofRoutes mounts Go's profiler for administrators (r requires
// PermAdmin): /admin/debug/pprof/ lists the profiles, e.g.
// `go tool pprof -seconds 30 'https://host/admin/debug/pprof/profile'` with
// the admin's session cookie, or from a browser.
func pprofRoutes(r chi.Router) {
	r.HandleFunc("/admin/debug/pprof/", pprof.Index)
	r.HandleFunc("/admin/debug/pprof/cmdline", pprof.Cmdline)
	r.HandleFunc("/admin/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/admin/debug/pprof/symbol", pprof.Symbol)
	r.HandleFunc("/admin/debug/pprof/trace", pprof.Trace)
	r.Handle("/admin/debug/pprof/{profile}", pprofNamed{})
}

// pprofNamed serves one of the runtime's named profiles (heap, goroutine, allocs…).
type pprofNamed struct{}

func (pprofNamed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pprof.Handler(chi.URLParam(r, "profile")).ServeHTTP(w, r)
}
