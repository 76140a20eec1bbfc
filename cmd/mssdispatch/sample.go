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
	defer client.Close()
	raw, err := client.Send(ctx, msg)
	if err != nil {
		return fmt.Errorf("send sample to %s: %w", addr, err)
	}
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	if err != nil {
		return fmt.Errorf("unreadable ACK from %s: %w", addr, err)
	}
	code := ack.Segment("MSA").Get(1)
	fmt.Fprintf(stdout, "sent ORU^R01 %s to %s: ACK %s\n", hl7.ControlIDOf(msg), addr, code)
	if code != "AA" {
		return fmt.Errorf("sample refused: %s", ack.Segment("ERR").Get(8))
	}
	fmt.Fprintf(stdout, "document_id: %s\n", documentID)
	fmt.Fprintf(stdout, "follow it:   curl -s -H \"Authorization: Bearer $MSSDISPATCH_API_TOKEN\" 'http://%s/api/v1/reports?document_id=%s'\n",
		e.get("HTTP_ADDR"), url.QueryEscape(documentID))
	return nil
}
