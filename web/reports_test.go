package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

func b64File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func TestPostReportCDA(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	body := `{"patient": {"family": "DUPONT", "given": "Marie", "birth_date": "1980-01-15", "sex": "F", "ipp": "IPP1"},
		"document": {"cda": "` + b64File(t, "../cda/testdata/n1-pdf.xml") + `"},
		"recipients": [{"rpps": "99900000002", "family": "DUPONT-DEMO", "given": "Claire"},
		               {"address": "cardio@clinique-demo.mssante.fr", "organisation": "Clinique des Lilas"}]}`
	code, resp := b.PostReport(t, "req-1", body)
	require.Equal(t, http.StatusCreated, code, resp)
	var v struct {
		ID         int64     `json:"id"`
		DocumentID string    `json:"document_id"`
		Status     string    `json:"status"`
		ReceivedAt time.Time `json:"received_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp), &v))
	require.Positive(t, v.ID)
	require.Equal(t, "1.2.250.1.999.42.1.4^LDL-20240312-000123", v.DocumentID, "taken from the CDA header")
	require.Equal(t, "received", v.Status)
	var receivedAt time.Time
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT received_at FROM reports WHERE id = $1", v.ID).Scan(&receivedAt))
	require.True(t, receivedAt.Equal(v.ReceivedAt), "received_at is the database's, %s, not %s", receivedAt, v.ReceivedAt)

	code, again := b.PostReport(t, "req-1", body)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, resp, again, "the same key and body get the first answer")

	code, conflict := b.PostReport(t, "req-1", strings.Replace(body, "Marie", "Maria", 1))
	require.Equal(t, http.StatusConflict, code, conflict)

	var reports, kinds int
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT count(*) FROM reports").Scan(&reports))
	require.Equal(t, 1, reports)
	require.NoError(t, b.Pool.QueryRow(context.Background(),
		"SELECT count(DISTINCT kind) FROM recipients").Scan(&kinds))
	require.Equal(t, 2, kinds, "a professional and an organisation")
}

func TestPostReportPDF(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	body := `{"patient": {"family": "DUPONT", "given": "Marie", "birth_date": "19800115", "sex": "F",
			"ins": "280017512345678", "ins_oid": "1.2.250.1.213.1.4.10", "ins_qualified": true},
		"document": {"id": "1.2.250.1.999.42.1.4^API-1", "code": "11490-0", "title": "Lettre de liaison de sortie",
			"pdf": "` + b64File(t, "../cda/testdata/sample.pdf") + `"},
		"author": {"rpps": "99900000005", "family": "GIRARD", "given": "Anne"},
		"recipients": [{"rpps": "99900000002"}]}`
	code, resp := b.PostReport(t, "pdf-1", body)
	require.Equal(t, http.StatusCreated, code, resp)

	var doc []byte
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT cda FROM documents").Scan(&doc))
	header, err := cda.Parse(doc)
	require.NoError(t, err, "the PDF is wrapped into a CDA R2 document")
	require.Equal(t, "1.2.250.1.999.42.1.4^API-1", header.UniqueID())
	require.Equal(t, "1999000017", header.Custodian.ID.Extension, "the hospital is the custodian")
	pdf, err := cda.ExtractPDF(doc)
	require.NoError(t, err)
	want, err := os.ReadFile("../cda/testdata/sample.pdf")
	require.NoError(t, err)
	require.Equal(t, want, pdf)
}

func TestPostReportRefused(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	cdaB64 := b64File(t, "../cda/testdata/n1-pdf.xml")
	const patient = `"patient": {"family": "DUPONT", "ipp": "IPP1"}, `
	tests := []struct {
		name, key, body string
		code            int
		field           string
	}{
		{"no key", "", `{}`, http.StatusBadRequest, ""},
		{"not JSON", "k1", `{"patient": `, http.StatusUnprocessableEntity, ""},
		{"unknown field", "k2", `{"patient": {}, "document": {"cda": "` + cdaB64 + `"}, "urgent": true}`, http.StatusUnprocessableEntity, ""},
		{"no document", "k3", `{` + patient + `"document": {}}`, http.StatusUnprocessableEntity, "document"},
		{"bad RPPS", "k4", `{` + patient + `"service": "CARDIO", "document": {"cda": "` + cdaB64 + `"}, "recipients": [{"rpps": "123"}]}`, http.StatusUnprocessableEntity, "recipients[0].rpps"},
		{"empty recipient", "k5", `{` + patient + `"document": {"cda": "` + cdaB64 + `"}, "recipients": [{}]}`, http.StatusUnprocessableEntity, "recipients[0]"},
		{"flags outside the matrix", "k6", `{` + patient + `"document": {"cda": "` + cdaB64 + `"}, "flags": {"MASQUE_PS": true, "DESTMSSANTEPS": true}}`, http.StatusUnprocessableEntity, "flags.MASQUE_PS"},
		{"unknown parent", "k7", `{` + patient + `"document": {"action": "replace", "parent_id": "1.2.3^old", "cda": "` + cdaB64 + `"}}`, http.StatusUnprocessableEntity, "document.parent_id"},
		{"not a CDA", "k8", `{` + patient + `"document": {"cda": "` + base64.StdEncoding.EncodeToString([]byte("<html/>")) + `"}}`, http.StatusUnprocessableEntity, "document.cda"},
		{"PDF without id", "k9", `{` + patient + `"document": {"pdf": "` + b64File(t, "../cda/testdata/sample.pdf") + `"}}`, http.StatusUnprocessableEntity, "document.id"},
		// Issue #20, item 12: a report must identify its patient, as PID-3 and PID-5 must over HL7.
		{"no patient", "k10", `{"document": {"cda": "` + cdaB64 + `"}}`, http.StatusUnprocessableEntity, "patient"},
		{"patient without a name", "k11", `{"patient": {"given": "Marie", "ipp": "IPP1"}, "document": {"cda": "` + cdaB64 + `"}}`, http.StatusUnprocessableEntity, "patient.family"},
		{"patient without an identifier", "k12", `{"patient": {"family": "DUPONT", "given": "Marie"}, "document": {"cda": "` + cdaB64 + `"}}`, http.StatusUnprocessableEntity, "patient.ipp"},
		{"a deletion without patient", "k13", `{"document": {"action": "delete", "id": "1.2.3^gone"}}`, http.StatusUnprocessableEntity, "patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, resp := b.PostReport(t, tt.key, tt.body)
			require.Equal(t, tt.code, code, resp)
			var e struct{ Error, Field string }
			require.NoError(t, json.Unmarshal([]byte(resp), &e))
			require.NotEmpty(t, e.Error)
			require.Equal(t, tt.field, e.Field)
			if tt.key != "" {
				code2, resp2 := b.PostReport(t, tt.key, tt.body)
				require.Equal(t, code, code2)
				require.Equal(t, resp, resp2, "a retransmitted refusal gets the same answer")
			}
		})
	}
	var kept, reports int
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT count(*) FROM quarantine WHERE kind = 'json'").Scan(&kept))
	require.Equal(t, len(tests)-1, kept, "every refused request is kept once")
	var service, location, messageType string
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT service, error_location, message_type FROM quarantine
		WHERE message_control_id = 'k4'`).Scan(&service, &location, &messageType))
	require.Equal(t, []string{"CARDIO", "recipients[0].rpps", "report"}, []string{service, location, messageType},
		"what says who may read the reason, and where the error is without it")
	require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT count(*) FROM reports").Scan(&reports))
	require.Zero(t, reports)
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	code, h, body := b.Do(t, "GET", "/api/v1/openapi.json", "", "")
	require.Equal(t, http.StatusOK, code, "readable without a token")
	require.Equal(t, "application/json", h.Get("Content-Type"))
	var doc struct {
		OpenAPI    string                    `json:"openapi"`
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas struct {
				ReportRequest struct {
					Required   []string `json:"required"`
					Properties struct {
						Patient struct {
							Required []string `json:"required"`
							AnyOf    []struct {
								Required []string `json:"required"`
							} `json:"anyOf"`
						} `json:"patient"`
					} `json:"properties"`
				} `json:"ReportRequest"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Equal(t, "3.0.3", doc.OpenAPI)
	// What TestPostReportRefused sees the server refuse: no patient, no
	// family name, neither ipp nor ins.
	req := doc.Components.Schemas.ReportRequest
	require.Contains(t, req.Required, "patient")
	require.Equal(t, []string{"family"}, req.Properties.Patient.Required)
	var anyOf [][]string
	for _, alt := range req.Properties.Patient.AnyOf {
		anyOf = append(anyOf, alt.Required)
	}
	require.Equal(t, [][]string{{"ipp"}, {"ins"}}, anyOf, "ipp or ins")
	for path, methods := range map[string][]string{
		"/api/v1/hl7": {"post"}, "/api/v1/reports": {"post", "get"}, "/api/v1/reports/{id}": {"get"},
		"/api/v1/directory": {"get"}, "/api/v1/directory/resolve": {"get"}, "/api/v1/correspondents": {"get", "post"},
		"/api/v1/correspondents/{id}": {"get", "put", "delete"}, "/api/v1/rules": {"get", "put"},
		"/api/v1/rules/history": {"get"}, "/api/v1/rules/{version}": {"get"}, "/api/v1/rules/dry-run": {"post"},
	} {
		for _, m := range methods {
			require.Contains(t, doc.Paths[path], m, path)
		}
	}
}
