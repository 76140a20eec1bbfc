package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/rules"
)

// ruleSetView is a version of the rules as the API shows it.
type ruleSetView struct {
	Version   int          `json:"version"`
	CreatedBy string       `json:"created_by,omitempty"`
	CreatedAt time.Time    `json:"created_at,omitzero"`
	Comment   string       `json:"comment"`
	Rules     []rules.Rule `json:"rules"`
}

func viewRuleSet(rs rules.Set) ruleSetView {
	list := rs.Rules
	if list == nil {
		list = []rules.Rule{}
	}
	return ruleSetView{Version: rs.Version, CreatedBy: rs.CreatedBy, CreatedAt: rs.CreatedAt, Comment: rs.Comment, Rules: list}
}

// getRules answers GET /api/v1/rules: the rules in force, as JSON, or their
// YAML source with ?format=yaml or an Accept of YAML.
func (s *server) getRules(w http.ResponseWriter, r *http.Request) {
	format, ok := rulesFormat(w, r)
	if !ok {
		return
	}
	rs, err := s.cfg.Rules.InForce(r.Context())
	if err != nil {
		s.internalError(w, r, "load the rules", err)
		return
	}
	if format == "json" {
		writeJSON(w, http.StatusOK, viewRuleSet(rs))
		return
	}
	_, source, err := s.cfg.Rules.Version(r.Context(), rs.Version)
	if err != nil {
		s.internalError(w, r, "load the rules", err)
		return
	}
	writeYAML(w, r, source)
}

// getRulesVersion answers GET /api/v1/rules/{version}: JSON, or the YAML
// source as written with ?format=yaml (or an Accept of YAML).
func (s *server) getRulesVersion(w http.ResponseWriter, r *http.Request) {
	version, err := strconv.Atoi(chi.URLParam(r, "version"))
	if err != nil || version < 0 {
		writeError(w, http.StatusBadRequest, "the version must be a whole number (0 is the built-in default)")
		return
	}
	format, ok := rulesFormat(w, r)
	if !ok {
		return
	}
	rs, source, err := s.cfg.Rules.Version(r.Context(), version)
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such version of the rules")
	case err != nil:
		s.internalError(w, r, "load the rules", err)
	case format == "yaml":
		writeYAML(w, r, source)
	default:
		writeJSON(w, http.StatusOK, viewRuleSet(rs))
	}
}

// getRulesHistory answers GET /api/v1/rules/history?limit=: the stored
// versions, newest first.
func (s *server) getRulesHistory(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	history, err := s.cfg.Rules.History(r.Context(), limit)
	if err != nil {
		s.internalError(w, r, "list the rules versions", err)
		return
	}
	out := make([]ruleSetView, 0, len(history))
	for _, rs := range history {
		out = append(out, viewRuleSet(rs))
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": out})
}

// putRules answers PUT /api/v1/rules?comment=: the YAML body becomes the
// next version of the rules.
func (s *server) putRules(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	rs, err := s.cfg.Rules.Set(r.Context(), body, audit.ActorAPI, r.URL.Query().Get("comment"))
	if s.ruleError(w, r, "store the rules", err) {
		return
	}
	writeJSON(w, http.StatusOK, viewRuleSet(rs))
}

// postDryRun answers POST /api/v1/rules/dry-run?reports=N: what the rules
// of the YAML body would change on the newest reports.
func (s *server) postDryRun(w http.ResponseWriter, r *http.Request) {
	reports := 0
	if v := r.URL.Query().Get("reports"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > ruleset.MaxDryRunReports {
			writeError(w, http.StatusBadRequest, "reports must be a whole number from 1 to "+strconv.Itoa(ruleset.MaxDryRunReports))
			return
		}
		reports = n
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	dr, err := s.cfg.Rules.DryRun(r.Context(), body, reports)
	if s.ruleError(w, r, "dry run", err) {
		return
	}
	writeJSON(w, http.StatusOK, dr)
}

// ruleMistake is a mistake of rules as the API shows it.
type ruleMistake struct {
	Error string `json:"error"`
	Field string `json:"field"`
	Rule  int    `json:"rule"`
	Line  int    `json:"line,omitempty"`
	// RuleName is the name of the rule, when the text gives it.
	RuleName string `json:"rule_name,omitempty"`
}

// ruleError writes err, if any: 422 for rules to fix, with the first
// mistake ({"error","field","rule","line","rule_name"}) and all of them
// ("errors": a list of the same), else 500. It reports whether there was
// an error.
func (s *server) ruleError(w http.ResponseWriter, r *http.Request, what string, err error) bool {
	if err == nil {
		return false
	}
	mistakes, ok := rules.Mistakes(err)
	if !ok {
		s.internalError(w, r, what, err)
		return true
	}
	out := struct {
		ruleMistake
		Errors []ruleMistake `json:"errors"`
	}{}
	for _, e := range mistakes {
		out.Errors = append(out.Errors, ruleMistake{Error: e.Error(), Field: e.Field, Rule: e.Rule, Line: e.Line, RuleName: e.Name})
	}
	out.ruleMistake = out.Errors[0]
	writeJSON(w, http.StatusUnprocessableEntity, out)
	return true
}

// rulesFormat reads ?format= (json or yaml), else the Accept header; it
// answers 400 itself for another format.
func rulesFormat(w http.ResponseWriter, r *http.Request) (string, bool) {
	switch f := r.URL.Query().Get("format"); f {
	case "json", "yaml":
		return f, true
	case "":
		if acceptsYAML(r) {
			return "yaml", true
		}
		return "json", true
	}
	writeError(w, http.StatusBadRequest, "format must be json or yaml")
	return "", false
}

// acceptsYAML reports whether the Accept header asks for YAML.
func acceptsYAML(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		media, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(media)) {
		case "text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml":
			return true
		}
	}
	return false
}

// writeYAML writes a YAML document, as text/yaml when the client asked for
// it, else as application/yaml.
func writeYAML(w http.ResponseWriter, r *http.Request, source []byte) {
	ct := "application/yaml; charset=utf-8"
	if strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/yaml") {
		ct = "text/yaml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(source)
}
