package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

func TestDirectorySearch(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	bearer := "Bearer " + webtest.Token

	code, _, body := b.Do(t, "GET", "/api/v1/directory?q=dupont-demo&limit=5", bearer, "")
	require.Equal(t, http.StatusOK, code, body)
	var res struct {
		Entries []correspondents.SearchResult `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Len(t, res.Entries, 1)
	require.Equal(t, "claire.dupont-demo@medecin-demo.mssante.fr", res.Entries[0].Address)
	require.Equal(t, "99900000002", res.Entries[0].RPPS)
	require.Equal(t, "BORDEAUX", res.Entries[0].PostalAddress.City)

	code, _, body = b.Do(t, "GET", "/api/v1/directory?q=zzz", bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"entries":[]}`, body)

	code, _, body = b.Do(t, "GET", "/api/v1/directory?q=a&limit=-1", bearer, "")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "limit")
	code, _, _ = b.Do(t, "GET", "/api/v1/directory?q=a", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestDirectoryResolve(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	bearer := "Bearer " + webtest.Token

	code, _, body := b.Do(t, "GET", "/api/v1/directory/resolve?rpps=99900000002", bearer, "")
	require.Equal(t, http.StatusOK, code, body)
	var res struct {
		Routes []struct {
			Channel, Address, ReasonText string
			Reason                       correspondents.Reason
			Review                       bool
			PostalAddress                correspondents.PostalAddress `json:"postal_address"`
		} `json:"routes"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Len(t, res.Routes, 2, body)
	require.Equal(t, "mssante", res.Routes[0].Channel)
	require.Equal(t, correspondents.ReasonDirectoryAddress, res.Routes[0].Reason)
	require.Equal(t, correspondents.ReasonPaperCopy, res.Routes[1].Reason)
	require.Equal(t, "33000", res.Routes[1].PostalAddress.PostalCode)

	code, _, body = b.Do(t, "GET", "/api/v1/directory/resolve?rpps=123", bearer, "")
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.JSONEq(t, `{"error":"un numéro RPPS a 11 chiffres","field":"rpps"}`, body)
	code, _, _ = b.Do(t, "GET", "/api/v1/directory/resolve", bearer, "")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestLocalCorrespondentsAPI(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	bearer := "Bearer " + webtest.Token

	code, _, body := b.Do(t, "POST", "/api/v1/correspondents", bearer,
		`{"rpps":"99900000002","family":"DUPONT-DEMO","given":"Claire","preference":"electronic"}`)
	require.Equal(t, http.StatusCreated, code, body)
	var c correspondents.LocalCorrespondent
	require.NoError(t, json.Unmarshal([]byte(body), &c))
	require.Equal(t, "899900000002", c.NationalID)
	require.Equal(t, "api", c.UpdatedBy)

	// The override changes the resolution: no paper copy any more.
	code, _, body = b.Do(t, "GET", "/api/v1/directory/resolve?rpps=99900000002", bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, correspondents.ReasonDirectoryAddress)
	require.NotContains(t, body, correspondents.ReasonPaperCopy)

	path := fmt.Sprintf("/api/v1/correspondents/%d", c.ID)
	code, _, body = b.Do(t, "PUT", path, bearer, `{"rpps":"99900000002","family":"DUPONT-DEMO","preference":"paper"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"preference":"paper"`)
	code, _, body = b.Do(t, "GET", path, bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"preference":"paper"`)
	code, _, body = b.Do(t, "GET", "/api/v1/correspondents?q=dupont", bearer, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"national_id":"899900000002"`)

	for _, tt := range []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"POST", "/api/v1/correspondents", `{"rpps":"99900000002","family":"X"}`, http.StatusConflict, "already exists"},
		{"POST", "/api/v1/correspondents", `{"rpps":"12","family":"X"}`, http.StatusUnprocessableEntity, `"field":"rpps"`},
		{"POST", "/api/v1/correspondents", `{"family":"X"}`, http.StatusUnprocessableEntity, `"field":"national_id"`},
		{"POST", "/api/v1/correspondents", `{"rpps":"99900000003","family":"X","preference":"fax"}`, http.StatusUnprocessableEntity, `"field":"preference"`},
		{"POST", "/api/v1/correspondents", `{"rpps":"99900000003","fax":"X"}`, http.StatusBadRequest, "unknown field"},
		{"PUT", "/api/v1/correspondents/999", `{"rpps":"99900000009","family":"X"}`, http.StatusNotFound, "no such correspondent"},
		{"GET", "/api/v1/correspondents/abc", "", http.StatusBadRequest, "positive integer"},
		{"DELETE", path, "", http.StatusNoContent, ""},
		{"DELETE", path, "", http.StatusNotFound, "no such correspondent"},
	} {
		code, _, body := b.Do(t, tt.method, tt.path, bearer, tt.body)
		require.Equal(t, tt.code, code, "%s %s %s: %s", tt.method, tt.path, tt.body, body)
		require.Contains(t, body, tt.contains)
	}
}
