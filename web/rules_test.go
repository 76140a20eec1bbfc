package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/rules"
)

func TestRulesAPIAuth(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/rules"}, {"PUT", "/api/v1/rules"}, {"GET", "/api/v1/rules/history"},
		{"GET", "/api/v1/rules/1"}, {"POST", "/api/v1/rules/dry-run"},
	} {
		req, err := http.NewRequestWithContext(context.Background(), r.method, b.URL+r.path, strings.NewReader(webtest.RulesYAML))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, r)
	}
	require.Zero(t, b.RuleVersions(t))
}

func TestRulesAPIGetPut(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)

	// Before any version: the built-in default.
	code, h, body := b.Call(t, "GET", "/api/v1/rules", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	rs := webtest.DecodeRuleSet(t, body)
	require.Equal(t, 0, rs.Version)
	require.Nil(t, rs.CreatedAt, "no creation time for the built-in rules")
	require.Equal(t, []rules.Rule{rules.Default}, rs.Rules)
	code, h, body = b.Call(t, "GET", "/api/v1/rules", "", "Accept", "text/yaml")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "text/yaml; charset=utf-8", h.Get("Content-Type"))
	_, err := rules.Parse([]byte(body))
	require.NoError(t, err, body)

	// A new version.
	code, _, body = b.Call(t, "PUT", "/api/v1/rules?comment=CME+du+12+mars", webtest.RulesYAML, "Content-Type", "application/yaml")
	require.Equal(t, http.StatusOK, code, body)
	rs = webtest.DecodeRuleSet(t, body)
	require.Equal(t, 1, rs.Version)
	require.Equal(t, "api", rs.CreatedBy)
	require.Equal(t, "CME du 12 mars", rs.Comment)
	require.NotNil(t, rs.CreatedAt)
	require.Equal(t, []string{"Psychiatrie relue", rules.Default.Name}, []string{rs.Rules[0].Name, rs.Rules[1].Name})
	require.Equal(t, rules.SendReview, rs.Rules[0].Action.Send)

	code, _, body = b.Call(t, "GET", "/api/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, webtest.DecodeRuleSet(t, body).Version)
	code, h, body = b.Call(t, "GET", "/api/v1/rules?format=yaml", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "application/yaml; charset=utf-8", h.Get("Content-Type"))
	require.Equal(t, webtest.RulesYAML, body, "the source as written")
	code, _, body = b.Call(t, "GET", "/api/v1/rules?format=json", "", "Accept", "application/yaml")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, webtest.DecodeRuleSet(t, body).Version, "?format wins over Accept")
	code, _, body = b.Call(t, "GET", "/api/v1/rules?format=xml", "")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "format must be json or yaml")

	// Invalid rules: 422 with the rule, field and line, nothing stored.
	code, _, body = b.Call(t, "PUT", "/api/v1/rules", "rules:\n  - name: Biologie\n    action:\n      send: delay\n      delay_hours: 900\n")
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	mistake := `"error": "règle 1 (ligne 5): action.delay_hours: 900: un délai va de 1 à 720 heures (règle « Biologie »)",
		"field": "action.delay_hours", "rule": 1, "line": 5, "rule_name": "Biologie"`
	require.JSONEq(t, `{`+mistake+`, "errors": [{`+mistake+`}]}`, body)
	code, _, body = b.Call(t, "PUT", "/api/v1/rules", "rules:\n  - name: x\n    actoin: {}\n")
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, body, `clé inconnue \"actoin\"`)
	code, _, body = b.Call(t, "PUT", "/api/v1/rules", "rules: [\n")
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, body, `"rule":0`)
	code, _, body = b.Call(t, "PUT", "/api/v1/rules", "  \n")
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "empty body")
	code, _, body = b.Call(t, "GET", "/api/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, webtest.DecodeRuleSet(t, body).Version)
}

func TestRulesAPIVersionsAndHistory(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	for _, comment := range []string{"un", "deux"} {
		code, _, body := b.Call(t, "PUT", "/api/v1/rules?comment="+comment, webtest.RulesYAML)
		require.Equal(t, http.StatusOK, code, body)
	}

	code, _, body := b.Call(t, "GET", "/api/v1/rules/1", "")
	require.Equal(t, http.StatusOK, code, body)
	rs := webtest.DecodeRuleSet(t, body)
	require.Equal(t, 1, rs.Version)
	require.Equal(t, "un", rs.Comment)
	code, h, body := b.Call(t, "GET", "/api/v1/rules/2?format=yaml", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Content-Type"), "yaml")
	require.Equal(t, webtest.RulesYAML, body)
	code, _, body = b.Call(t, "GET", "/api/v1/rules/0", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []rules.Rule{rules.Default}, webtest.DecodeRuleSet(t, body).Rules)

	code, _, body = b.Call(t, "GET", "/api/v1/rules/3", "")
	require.Equal(t, http.StatusNotFound, code)
	require.JSONEq(t, `{"error": "no such version of the rules"}`, body)
	for _, v := range []string{"abc", "-1", "1.5"} {
		code, _, _ = b.Call(t, "GET", "/api/v1/rules/"+v, "")
		require.Equal(t, http.StatusBadRequest, code, v)
	}
	code, _, _ = b.Call(t, "GET", "/api/v1/rules/1?format=toml", "")
	require.Equal(t, http.StatusBadRequest, code)

	code, _, body = b.Call(t, "GET", "/api/v1/rules/history", "")
	require.Equal(t, http.StatusOK, code, body)
	var history struct {
		Versions []webtest.RuleSetJSON `json:"versions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &history))
	require.Len(t, history.Versions, 2)
	require.Equal(t, []int{2, 1}, []int{history.Versions[0].Version, history.Versions[1].Version})
	require.Equal(t, []string{"deux", "un"}, []string{history.Versions[0].Comment, history.Versions[1].Comment})
	require.Equal(t, "api", history.Versions[0].CreatedBy)
	code, _, body = b.Call(t, "GET", "/api/v1/rules/history?limit=1", "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &history))
	require.Len(t, history.Versions, 1)
	for _, l := range []string{"0", "x"} {
		code, _, _ = b.Call(t, "GET", "/api/v1/rules/history?limit="+l, "")
		require.Equal(t, http.StatusBadRequest, code, l)
	}
}

func TestRulesAPIDryRun(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	code, _, ack := b.Call(t, "POST", "/api/v1/hl7", webtest.SampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA")
	require.Eventually(t, func() bool {
		_, _, body := b.Call(t, "GET", "/api/v1/reports/1", "")
		return strings.Contains(body, `"status":"resolved"`)
	}, 20*time.Second, 50*time.Millisecond)

	code, _, body := b.Call(t, "POST", "/api/v1/rules/dry-run?reports=5", "rules:\n  - name: Tout relu\n    action: {send: review}\n")
	require.Equal(t, http.StatusOK, code, body)
	var dr ruleset.DryRun
	require.NoError(t, json.Unmarshal([]byte(body), &dr))
	require.Equal(t, 1, dr.ReportsChecked)
	require.Zero(t, dr.CurrentVersion)
	require.NotEmpty(t, dr.Changed)
	for _, c := range dr.Changed {
		require.Equal(t, int64(1), c.ReportID)
		require.NotEmpty(t, c.DocumentID)
		require.NotNil(t, c.After)
		require.Equal(t, dispatch.StatusReview, c.After.Status)
		require.Equal(t, "Tout relu", c.After.Rule)
	}
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &raw))
	require.Contains(t, raw, "reports_checked")
	require.Contains(t, raw["changed"].([]any)[0], "before")

	code, _, body = b.Call(t, "POST", "/api/v1/rules/dry-run", "rules:\n  - name: défaut\n")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"changed":[]`)
	code, _, body = b.Call(t, "POST", "/api/v1/rules/dry-run", "rules:\n  - name: Règle générale\n    action: {send: auto}\n")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"changed":[]`, "the default rule renamed changes nothing for anyone")

	code, _, body = b.Call(t, "POST", "/api/v1/rules/dry-run", "rules:\n  - name: x\n    action: {paper: sometimes}\n")
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, body, `"field":"action.paper"`)
	for _, n := range []string{"0", "501", "x"} {
		code, _, body = b.Call(t, "POST", "/api/v1/rules/dry-run?reports="+n, webtest.RulesYAML)
		require.Equal(t, http.StatusBadRequest, code, n)
		require.Contains(t, body, "reports must be")
	}
	code, _, _ = b.Call(t, "POST", "/api/v1/rules/dry-run", "")
	require.Equal(t, http.StatusBadRequest, code)

	require.Zero(t, b.RuleVersions(t), "a dry run stores no rules")
}

// TestRulesAPIMistakes checks that the API lists every mistake of the
// rules with its line, the first one also at the top level as before.
func TestRulesAPIMistakes(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	bad := `rules:
  - name: Biologie
    action: {send: delay, delay_hours: 900}
  - name: Imagerie
    match: {document_codes: [18748-4]}
    action: {paper: sometimes}
  - name: Biologie
`
	for _, r := range []struct{ method, path string }{{"PUT", "/api/v1/rules"}, {"POST", "/api/v1/rules/dry-run"}} {
		code, _, body := b.Call(t, r.method, r.path, bad)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		type mistake struct {
			Error    string `json:"error"`
			Field    string `json:"field"`
			Rule     int    `json:"rule"`
			Line     int    `json:"line"`
			RuleName string `json:"rule_name"`
		}
		var got struct {
			mistake
			Errors []mistake `json:"errors"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got), body)
		require.Equal(t, []mistake{
			{`règle 1 (ligne 3): action.delay_hours: 900: un délai va de 1 à 720 heures (règle « Biologie »)`, "action.delay_hours", 1, 3, "Biologie"},
			{`règle 2 (ligne 6): action.paper: "sometimes": valeurs possibles directory, always, never (règle « Imagerie »)`, "action.paper", 2, 6, "Imagerie"},
			{`règle 3 (ligne 7): name: "Biologie" est déjà le nom de la règle 1`, "name", 3, 7, ""},
		}, got.Errors, r.path)
		require.Equal(t, got.Errors[0], got.mistake, "the first mistake, where it always was")
	}
	require.Zero(t, b.RuleVersions(t))
}

// TestRulesOpenAPI checks that the OpenAPI description names every key of
// the rules' refusals and of a dry run's deliveries, as the server sends them.
func TestRulesOpenAPI(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	b.ReviewReport(t, "openapi-1", "CARDIO")
	_, _, body := b.Call(t, "GET", "/api/v1/openapi.json", "")
	type schema struct {
		Properties map[string]any `json:"properties"`
		AllOf      []struct {
			Ref        string         `json:"$ref"`
			Properties map[string]any `json:"properties"`
		} `json:"allOf"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	schemas := doc.Components.Schemas
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}

	code, _, body := b.Call(t, "PUT", "/api/v1/rules", "rules:\n  - name: a\n    action: {send: later}\n")
	require.Equal(t, http.StatusUnprocessableEntity, code)
	var refusal map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &refusal))
	mistake := schemas["RuleMistake"].Properties
	described := keys(mistake)
	for _, part := range schemas["RuleError"].AllOf {
		described = append(described, keys(part.Properties)...)
	}
	require.ElementsMatch(t, keys(refusal), described, "RuleError")
	require.Subset(t, keys(mistake), keys(refusal["errors"].([]any)[0].(map[string]any)), "RuleMistake")

	code, _, body = b.Call(t, "POST", "/api/v1/rules/dry-run", "rules:\n  - name: Différé\n    action: {send: delay, delay_hours: 5}\n")
	require.Equal(t, http.StatusOK, code, body)
	var dr struct {
		Changed []struct {
			After map[string]any `json:"after"`
		} `json:"changed"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &dr))
	require.NotEmpty(t, dr.Changed)
	require.Contains(t, dr.Changed[0].After, "delay_hours")
	require.Subset(t, keys(schemas["DryRunOutcome"].Properties), keys(dr.Changed[0].After), "DryRunOutcome")
}
