package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

func TestProbes(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	code, _, body := b.Do(t, "GET", "/healthz", "", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, body)
	code, _, _ = b.Do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusOK, code)
	code, _, body = b.Do(t, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "mssdispatch_sends_total")

	b.Pool.Close()
	code, _, body = b.Do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"error":"database unreachable"}`, body)
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	for _, auth := range []string{"", "Bearer wrong", webtest.Token, "Basic " + webtest.Token} {
		code, h, body := b.Do(t, "GET", "/api/v1/reports/1", auth, "")
		require.Equal(t, http.StatusUnauthorized, code, auth)
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Contains(t, body, `"error"`)
	}
}

// TestHL7NUL posts messages holding a NUL byte, raw or escaped, as a DPI
// using the REST API would: each gets an AE (not a 503 the DPI would retry
// forever) and is kept whole in quarantine, and the next message goes
// through.
func TestHL7NUL(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	bearer := "Bearer " + webtest.Token
	for name, nul := range map[string]string{"raw": "\x00", "escaped": `\X00\`} {
		msg := strings.Replace(strings.Replace(webtest.SampleORU(t), "DUPONT^Marie", "DUPONT"+nul+"^Marie", 1), "|MSG0001|", "|NUL-"+name+"|", 1)
		code, _, ack := b.Do(t, "POST", "/api/v1/hl7", bearer, msg)
		require.Equal(t, http.StatusOK, code, name)
		require.Contains(t, ack, "MSA|AE|NUL-"+name, name)
		require.Contains(t, ack, "NUL", name)
		var kept bool
		require.NoError(t, b.Pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM quarantine WHERE raw = $1)",
			[]byte(msg)).Scan(&kept))
		require.True(t, kept, "%s: kept whole", name)
	}
	code, _, ack := b.Do(t, "POST", "/api/v1/hl7", bearer, webtest.SampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AA|MSG0001")
}

func TestHL7AndReports(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	bearer := "Bearer " + webtest.Token

	code, h, ack := b.Do(t, "POST", "/api/v1/hl7", bearer, webtest.SampleORU(t))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Content-Type"), "hl7")
	require.Contains(t, ack, "MSA|AA|MSG0001")

	code, _, ack = b.Do(t, "POST", "/api/v1/hl7", bearer, "not hl7")
	require.Equal(t, http.StatusOK, code, "an HL7 refusal is still an HL7 answer")
	require.Contains(t, ack, "MSA|AE")

	code, _, body := b.Do(t, "POST", "/api/v1/hl7", bearer, "  ")
	require.Equal(t, http.StatusOK, code, "an empty message gets the ACK MLLP would give it")
	require.Contains(t, body, "MSA|AE")
	_, _, metrics := b.Do(t, "GET", "/metrics", "", "")
	require.Contains(t, metrics, `mssdispatch_intake_duration_seconds_count{source="api"} 3`, "the messages timed to their ACK")
	require.Contains(t, metrics, `mssdispatch_intake_messages_total{ack="AE",source="api"} 2`)

	docID := "1.2.250.1.999.42.1.4^LDL-20240312-000123"
	code, _, body = b.Do(t, "GET", "/api/v1/reports?document_id="+url.QueryEscape(docID), bearer, "")
	require.Equal(t, http.StatusOK, code, body)
	var v struct {
		ID         int64  `json:"id"`
		DocumentID string `json:"document_id"`
		Status     string `json:"status"`
		Deliveries []any  `json:"deliveries"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, docID, v.DocumentID)
	require.Equal(t, dispatch.ReportReceived, v.Status)
	require.NotNil(t, v.Deliveries, "deliveries is a list, empty until resolved")

	code, _, body2 := b.Do(t, "GET", "/api/v1/reports/"+jsonNumber(v.ID), bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, body, body2)

	for path, want := range map[string]int{
		"/api/v1/reports/999999":         http.StatusNotFound,
		"/api/v1/reports/abc":            http.StatusBadRequest,
		"/api/v1/reports/-1":             http.StatusBadRequest,
		"/api/v1/reports":                http.StatusBadRequest,
		"/api/v1/reports?document_id=x^": http.StatusNotFound,
		"/api/v1/nothing":                http.StatusNotFound,
	} {
		code, h, body := b.Do(t, "GET", path, bearer, "")
		require.Equal(t, want, code, path)
		require.Equal(t, "application/json", h.Get("Content-Type"), path)
		require.Contains(t, body, `"error"`, path)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
