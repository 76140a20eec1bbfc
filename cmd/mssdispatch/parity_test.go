package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
)

// postHL7 sends raw to POST /api/v1/hl7 and returns the ACK of the answer,
// which must be 200.
func postHL7(t *testing.T, httpAddr string, raw []byte) []byte {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/hl7", bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return body
}

// withoutIdentity blanks MSH-7 and MSH-10 of an ACK: the time and the
// control id of the acknowledgement itself, new for each answer.
func withoutIdentity(t *testing.T, raw []byte) string {
	t.Helper()
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	require.NoError(t, err, "%q", raw)
	msh := ack.Segment("MSH")
	msh.Set(7, nil)
	msh.Set(10, nil)
	return string(ack.Encode())
}

// TestRESTParity sends the same messages over MLLP and to POST /api/v1/hl7,
// as a DPI that uses both would: the REST API answers what MLLP answers. A
// message with a key (MSH-3, MSH-4, MSH-10) gets the very same ACK, bytes
// for bytes, whichever way it comes again; a message without a usable key
// (its MSH unreadable, or over the size limit) gets the same ACK but for
// the ACK's own time and control id. Nothing makes the REST API answer an
// HTTP error instead of the ACK.
func TestRESTParity(t *testing.T) {
	t.Parallel()
	r := start(t, serveConfig{DatabaseURL: demoDatabase(t), Transport: "outbox", OutboxDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := mllp.Dial(ctx, r.mllpAddr)
	require.NoError(t, err)
	defer c.Close()

	sample := func(edit func(string) string) []byte {
		msg, _, err := sampleReport(time.Now())
		require.NoError(t, err)
		return []byte(edit(string(msg)))
	}
	same := func(s string) string { return s }
	keyed := map[string][]byte{
		"accepted": sample(same),
		"raw NUL":  sample(func(s string) string { return strings.Replace(s, "DUPONT^Marie", "DUPONT\x00^Marie", 1) }),
		"escaped NUL": sample(func(s string) string {
			return strings.Replace(s, "DUPONT^Marie", `DUPONT\X00\^Marie`, 1)
		}),
		"unsupported type": sample(func(s string) string { return strings.Replace(s, "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1) }),
		"missing flag": sample(func(s string) string {
			return strings.Replace(s, "MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS", "AUTRE^Autre^MetaDMPMSS", 1)
		}),
	}
	for name, msg := range keyed {
		viaMLLP, err := c.Send(ctx, msg)
		require.NoError(t, err, name)
		viaREST := postHL7(t, r.httpAddr, msg)
		require.Equal(t, string(viaMLLP), string(viaREST), "%s: the very same ACK", name)
		ack, err := hl7.Parse(viaREST, hl7.ParseOptions{})
		require.NoError(t, err)
		want := "AE"
		if name == "accepted" {
			want = "AA"
		}
		require.Equal(t, want, ack.Segment("MSA").Get(1), name)
	}

	oversize := sample(func(s string) string {
		return strings.Replace(s, "^Base64^", "^Base64^"+strings.Repeat("QUFB", (hl7.DefaultMaxSize/4)+1), 1)
	})
	unkeyed := map[string][]byte{
		"malformed MSH-2": sample(func(s string) string { return strings.Replace(s, `MSH|^~\&|`, `MSH|^~^&|`, 1) }),
		"not HL7":         []byte("bonjour"),
		"empty":           []byte(" "),
		"oversize":        oversize,
	}
	for name, msg := range unkeyed {
		viaMLLP, err := c.Send(ctx, msg)
		require.NoError(t, err, name)
		viaREST := postHL7(t, r.httpAddr, msg)
		require.Equal(t, withoutIdentity(t, viaMLLP), withoutIdentity(t, viaREST), name)
		ack, err := hl7.Parse(viaREST, hl7.ParseOptions{})
		require.NoError(t, err)
		require.Equal(t, "AE", ack.Segment("MSA").Get(1), name)
	}
}
