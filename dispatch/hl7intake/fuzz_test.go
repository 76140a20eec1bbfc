package hl7intake

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// FuzzToReport checks that any parseable message maps to a report the domain
// can take, with located warnings, or to a located refusal (AE: a message
// the DPI must fix), without panicking, and that locate answers for every
// field the domain may name.
func FuzzToReport(f *testing.F) {
	for _, name := range testdataMessages(f) {
		f.Add(string(loadMessage(f, name)))
	}
	samples, err := filepath.Glob("../../hl7/testdata/*.hl7")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	actions := []dispatch.Action{dispatch.ActionNew, dispatch.ActionReplace, dispatch.ActionDelete}
	kinds := []string{dispatch.KindProfessional, dispatch.KindOrganisation, dispatch.KindPatient}
	fields := []string{"control_id", "document.id", "document.cda", "document.parent_id", "action", "patient.ins",
		"flags.MASQUE_PS", "flags.INVISIBLE_PATIENT", "flags.INVISIBLE_REP_LEGAUX", "flags.CONNEXION_SECRETE",
		"flags.DESTMSSANTEPS", "flags.DESTDMP", "recipients[0].kind", "other_format.id", "patient.mailbox"}
	f.Fuzz(func(t *testing.T, raw string) {
		msg, err := hl7.Parse([]byte(raw), hl7.ParseOptions{})
		if err != nil {
			return
		}
		for _, field := range fields {
			if d := locate(msg, field); d.Code == 0 {
				t.Fatalf("locate(%q) = %+v", field, d)
			}
		}
		r, warnings, err := toReport(msg)
		if err != nil {
			var rej *rejection
			if !errors.As(err, &rej) {
				t.Fatalf("toReport returned %T, want *rejection", err)
			}
			d := rej.detail
			if rej.code != hl7.AckError || d.Msg == "" || d.Code == 0 || d.Severity != "E" || d.Segment == "" || d.Sequence < 1 {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		for _, w := range warnings {
			if w.Severity != "W" || w.Msg == "" || w.Code == 0 || w.Segment == "" || w.Sequence < 1 {
				t.Fatalf("bad warning %+v", w)
			}
		}
		if len(r.Warnings) != len(warnings) {
			t.Fatalf("%d warnings for the ACK, %d for the report's history", len(warnings), len(r.Warnings))
		}
		switch {
		case msg.ControlID() == "":
			t.Fatal("accepted a message without MSH-10")
		case !slices.Contains(actions, r.Action):
			t.Fatalf("action %q", r.Action)
		case r.Document.ID == "":
			t.Fatalf("accepted report without document id: %+v", r)
		case len(r.Document.CDA) == 0 && r.Action != dispatch.ActionDelete:
			t.Fatalf("accepted %s without CDA", r.Action)
		case r.OtherFormat != nil && (len(r.OtherFormat.CDA) == 0 || msg.Segment("TXA") != nil && r.Action != dispatch.ActionDelete):
			t.Fatalf("a second document without CDA, or in an MDM: %+v", r.OtherFormat)
		case !r.Flags.Present && r.Flags != dispatch.DefaultFlags:
			t.Fatalf("flags absent but not the defaults: %+v", r.Flags)
		}
		for _, rc := range r.Recipients {
			if rc.Role == "" || !slices.Contains(kinds, rc.Kind) {
				t.Fatalf("recipient without role or kind: %+v", rc)
			}
		}
	})
}
