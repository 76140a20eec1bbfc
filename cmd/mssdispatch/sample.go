package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
)

//go:embed sample
var sampleFiles embed.FS

var sampleTemplates = template.Must(template.ParseFS(sampleFiles, "sample/*.xml", "sample/*.hl7"))

// sampleDocumentRoot is the OID of the sample documents' ids.
const sampleDocumentRoot = "1.2.250.1.999.42.1.4"

// sampleReport returns a fresh ORU^R01 (new control id and document id) with
// three recipients of the demo directory, and its document id.
func sampleReport(now time.Time) (msg []byte, documentID string, err error) {
	pdf, err := sampleFiles.ReadFile("sample/compte-rendu.pdf")
	if err != nil {
		return nil, "", err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	data := map[string]string{
		"DocumentExtension": "DEMO-" + now.Format("20060102150405") + "-" + hex.EncodeToString(b),
		"ControlID":         hex.EncodeToString(b) + now.Format("150405"),
		"Time":              now.Format("20060102150405-0700"),
		"PDF":               base64.StdEncoding.EncodeToString(pdf),
	}
	var cda bytes.Buffer
	if err := sampleTemplates.ExecuteTemplate(&cda, "cda.xml", data); err != nil {
		return nil, "", err
	}
	data["CDA"] = base64.StdEncoding.EncodeToString(cda.Bytes())
	var oru bytes.Buffer
	if err := sampleTemplates.ExecuteTemplate(&oru, "oru.hl7", data); err != nil {
		return nil, "", err
	}
	segments := strings.Split(strings.TrimSpace(oru.String()), "\n")
	return []byte(strings.Join(segments, "\r") + "\r"), sampleDocumentRoot + "^" + data["DocumentExtension"], nil
}

func sendSampleCommand(ctx context.Context, e env, stdout io.Writer) error {
	msg, documentID, err := sampleReport(time.Now())
	if err != nil {
		return fmt.Errorf("build sample: %w", err)
	}
	addr := e.get("MLLP_ADDR")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := mllp.Dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("is `mssdispatch serve` running? %w", err)
	}
	defer func() { _ = client.Close() }() // the ACK, all that was awaited, is read and checked
	raw, err := client.Send(ctx, msg)
	if err != nil {
		return fmt.Errorf("send sample to %s: %w", addr, err)
	}
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	if err != nil {
		return fmt.Errorf("unreadable ACK from %s: %w", addr, err)
	}
	code := ack.Segment("MSA").Get(1)
	p := newPrinter(stdout)
	p.printf("sent ORU^R01 %s to %s: ACK %s\n", hl7.ControlIDOf(msg), addr, code)
	if code != "AA" {
		return fmt.Errorf("sample refused: %s", ack.Segment("ERR").Get(8))
	}
	p.printf("document_id: %s\n", documentID)
	p.printf("follow it:   %s\n", followCommand(e, documentID))
	return p.done()
}

// followCommand is the command that shows the report of documentID and its
// deliveries. It works when pasted into any shell, a new terminal's too: it
// spells out the API token (the caller's own, from MSSDISPATCH_API_TOKEN)
// and the address instead of naming variables that shell may not have.
// Without a token it points to the dashboard.
func followCommand(e env, documentID string) string {
	base := "http://" + e.get("HTTP_ADDR") + "/"
	token := e.get("API_TOKEN")
	if token == "" {
		return base + " (the dashboard; with MSSDISPATCH_API_TOKEN set, a curl command of the API)"
	}
	return "curl -s -H " + shellQuote("Authorization: Bearer "+token) + " " +
		shellQuote(base+"api/v1/reports?document_id="+url.QueryEscape(documentID))
}

// shellQuote quotes s as one word of sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
