package hl7intake

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mssdispatch/mssdispatch/hl7"
)

// FuzzToReport checks that any parseable message maps to a report or to a
// refusal with a valid ACK code and a message, without panicking.
func FuzzToReport(f *testing.F) {
	tmpl, err := os.ReadFile("testdata/oru_r01.hl7")
	if err != nil {
		f.Fatal(err)
	}
	doc, err := os.ReadFile("../../cda/testdata/n1-pdf.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(strings.ReplaceAll(strings.Replace(string(tmpl), "{{CDA}}", base64.StdEncoding.EncodeToString(doc), 1), "\n", "\r"))
	samples, _ := filepath.Glob("../../hl7/testdata/*.hl7")
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		msg, err := hl7.Parse([]byte(raw), hl7.ParseOptions{})
		if err != nil {
			return
		}
		r, err := toReport(msg)
		if err != nil {
			var rej *rejection
			if !errors.As(err, &rej) {
				t.Fatalf("toReport returned %T, want *rejection", err)
			}
			if rej.code != hl7.AckError && rej.code != hl7.AckReject || rej.detail.Msg == "" || rej.detail.Code == 0 {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		if r.ControlID == "" || r.Document.ID == "" || len(r.Document.CDA) == 0 {
			t.Fatalf("accepted report without control id or document: %+v", r)
		}
	})
}
