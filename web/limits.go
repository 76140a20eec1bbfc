package web

import (
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/rules"
)

// This file bounds what a client, authenticated or not, may make the
// service hold or choke on: the body of the dashboard's forms, text that
// PostgreSQL refuses in a URL, wrong API tokens.

// Body limits of the dashboard's requests. No dashboard form uploads a file
// (none is multipart/form-data), so multipart bodies are refused: parsing
// one would spill its files to temporary files.
const (
	// maxFormBytes bounds every form of the dashboard but the rules'
	// (login, actions on deliveries, local correspondents, accounts) and
	// the JSON of River's UI.
	maxFormBytes = 256 << 10
	// maxRulesFormBytes bounds the rules' forms (save, dry run, move): their YAML
	// may take rules.MaxSize bytes, each up to three once
	// percent-encoded.
	maxRulesFormBytes = 3*rules.MaxSize + maxFormBytes
)

// formBodyLimit returns the body limit of a dashboard request.
func formBodyLimit(r *http.Request) int64 {
	switch r.URL.Path {
	case "/rules", "/rules/dry-run", "/rules/move":
		return maxRulesFormBytes
	}
	return maxFormBytes
}

// limitForms bounds the body of the dashboard's requests before anything
// reads it (the CSRF check reads the form): 413 beyond formBodyLimit, 415
// for a multipart body. A URL-encoded form is parsed here, so that a body
// too large or unreadable is answered, not taken for an empty form, and so
// that no later handler parses it otherwise; its values must be text
// PostgreSQL takes (400 otherwise, see validText).
func limitForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		limit := formBodyLimit(r)
		if r.ContentLength > limit {
			http.Error(w, "Formulaire trop volumineux.", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch mediaType {
		case "multipart/form-data", "multipart/mixed":
			http.Error(w, "Formulaire multipart refusé : aucun formulaire n’envoie de fichier.", http.StatusUnsupportedMediaType)
			return
		case "application/x-www-form-urlencoded":
			if err := r.ParseForm(); err != nil {
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					http.Error(w, "Formulaire trop volumineux.", http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "Formulaire illisible.", http.StatusBadRequest)
				return
			}
			for _, values := range r.PostForm {
				for _, v := range values {
					if !validText(v) {
						http.Error(w, "Formulaire invalide : caractère de contrôle ou texte non UTF-8.", http.StatusBadRequest)
						return
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// validURL answers 400 to a request whose path, query keys or query values
// are not text PostgreSQL takes (see validText), before a handler passes
// them to a query that would fail with a 500.
func validURL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := validText(r.URL.Path)
		for k, values := range r.URL.Query() {
			ok = ok && validText(k)
			for _, v := range values {
				ok = ok && validText(v)
			}
		}
		if !ok {
			const msg = "caractère de contrôle ou texte non UTF-8 dans l’URL"
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeError(w, http.StatusBadRequest, "control character or invalid UTF-8 in the URL")
			} else {
				http.Error(w, "Requête invalide : "+msg+".", http.StatusBadRequest)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validText reports whether s is valid UTF-8 without control characters
// but tab, line feed and carriage return (a textarea's): PostgreSQL refuses
// NUL and invalid UTF-8 in text, and no field of the service takes the
// others.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
			return false
		}
	}
	return true
}

// retryAfterSeconds is the value of a Retry-After header for d: whole
// seconds, at least one.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// apiTokenLimiter returns the throttle of wrong API tokens: ten free
// failures per client address, then 1 s, 2 s… up to a minute between
// attempts, forgotten an hour after the last failure.
func apiTokenLimiter() *auth.AddressLimiter {
	return auth.NewAddressLimiter(auth.LimiterConfig{
		Backoff: auth.Backoff{Free: 10, Base: time.Second, Max: time.Minute},
		Forget:  time.Hour,
	})
}
