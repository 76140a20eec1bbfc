package worker

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// TestComposeEmailOneMSSanteRecipient checks that a message goes to exactly
// the delivery's one MSSanté address, so that the operators' "at most 40
// recipients" and "never mix MSSanté and non-MSSanté recipients" rules hold
// by construction.
func TestComposeEmailOneMSSanteRecipient(t *testing.T) {
	t.Parallel()
	cfg := WorkerConfig{Sender: "bal@ch-demo.mssante.fr", NIL: DefaultNIL, SourceID: DemoSourceID}
	o := outgoing{DeliveryID: 7, Action: dispatch.ActionDelete, Channel: correspondents.ChannelMSSante,
		Address: "dr@medecin-demo.mssante.fr", MessageID: "id@ch-demo.mssante.fr",
		Recipient: dispatch.Recipient{Kind: dispatch.KindProfessional}, Document: dispatch.Document{Title: "Lettre"}}
	m, err := composeEmail(cfg, o, sendDocument{}, time.Now())
	require.NoError(t, err)
	require.Equal(t, []string{o.Address}, m.To)
	env := envelope(m, o.DeliveryID)
	require.Equal(t, cfg.Sender, env.From)
	require.Equal(t, []string{o.Address}, env.To)
	require.Equal(t, "mssdispatch-7", env.EnvelopeID, "the DSNs come back with the delivery's id")
	require.Empty(t, m.Attachments, "a deletion without its CDA")
	require.Equal(t, []mail.Field{{Name: "X-MSS-NIL", Value: DefaultNIL}}, m.Headers)
	require.True(t, strings.HasPrefix(m.Body, "Bonjour,"))

	for name, mutate := range map[string]func(*outgoing){
		"paper":           func(o *outgoing) { o.Channel = correspondents.ChannelPaper },
		"no address":      func(o *outgoing) { o.Address = "" },
		"several address": func(o *outgoing) { o.Address = "a@medecin-demo.mssante.fr, b@gmail.com" },
	} {
		bad := o
		mutate(&bad)
		_, err := composeEmail(cfg, bad, sendDocument{}, time.Now())
		require.ErrorIs(t, err, errNotOneMSSanteRecipient, name)
		require.False(t, mail.IsPermanent(err), "%s: the domain's refusal, not the mail server's", name)
	}
}

// TestComposeEmailUnpackable checks that documents cda.Package refuses (here
// the same document twice) make an ErrUnpackable, the domain's permanent
// failure, not a mail server's.
func TestComposeEmailUnpackable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../cda/testdata/n1-pdf.xml")
	require.NoError(t, err)
	twice, err := prepareDocuments([]storedDocumentBytes{{cda: doc}, {cda: doc}})
	require.NoError(t, err)
	_, err = composeEmail(WorkerConfig{SourceID: DemoSourceID},
		outgoing{DeliveryID: 9, Channel: correspondents.ChannelMSSante, Address: "dr@medecin-demo.mssante.fr"}, twice, time.Now())
	require.ErrorIs(t, err, ErrUnpackable)
	require.ErrorIs(t, err, cda.ErrXDM)
	require.False(t, mail.IsPermanent(err), "the domain's failure, not the mail server's")
	require.Regexp(t, `^delivery 9: document cannot be packaged: IHE_XDM.ZIP: .*have the same id`, err.Error())
}

func TestIsOID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"1.2.250.1.71.4.2.2": true, DemoSourceID: true, "2.25.0": true,
		"": false, "1": false, "1.2.": false, "1.02.3": false, "3.1": false, "1.2.a": false, "urn:oid:1.2.3": false,
	} {
		require.Equal(t, want, IsOID(s), s)
	}
}

func TestEmailBody(t *testing.T) {
	t.Parallel()
	pro := outgoing{Action: dispatch.ActionNew, Recipient: dispatch.Recipient{Kind: dispatch.KindProfessional}, BodyPatient: "Madame,"}
	patient := outgoing{Action: dispatch.ActionNew, Recipient: dispatch.Recipient{Kind: dispatch.KindPatient}, BodyProfessional: "Cher confrère,"}
	require.Contains(t, emailBody(pro, "CR"), "le document « CR » concernant votre patient(e)", "CORPSMAIL_PATIENT is not for professionals")
	require.Contains(t, emailBody(patient, "CR"), "votre document « CR »", "CORPSMAIL_PS is not for the patient")
	require.Contains(t, emailBody(outgoing{Action: dispatch.ActionReplace, Recipient: dispatch.Recipient{Kind: dispatch.KindOrganisation}}, "CR"), "annule et remplace")
	patient.Action = dispatch.ActionDelete
	require.Contains(t, emailBody(patient, "CR"), "est annulé")
	pro.BodyProfessional = "Cher confrère,\nci-joint"
	require.Equal(t, "Cher confrère,\r\nci-joint\r\n", emailBody(pro, "CR"))
}

func TestComposeEmailDeletionWithCDA(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../cda/testdata/n1-pdf.xml")
	require.NoError(t, err)
	cfg := WorkerConfig{Sender: "bal@ch-demo.mssante.fr", NIL: DefaultNIL, SourceID: DemoSourceID}
	o := outgoing{DeliveryID: 8, Action: dispatch.ActionDelete, Channel: correspondents.ChannelMSSante,
		Address: "dr@medecin-demo.mssante.fr", MessageID: "id@ch-demo.mssante.fr",
		Recipient: dispatch.Recipient{Kind: dispatch.KindProfessional, NationalID: "899900000002"},
		Patient:   dispatch.Patient{INS: "280017512345678", INSOID: "1.2.250.1.213.1.4.10", INSQualified: true},
		Document:  dispatch.Document{Code: "11490-0", Title: "Lettre"}}
	prepared, err := prepareDocuments([]storedDocumentBytes{{cda: doc, pdf: []byte("%PDF-1.4 x")}})
	require.NoError(t, err)
	m, err := composeEmail(cfg, o, prepared, time.Now())
	require.NoError(t, err)
	require.Equal(t, []mail.Field{{Name: "X-MSS-NIL", Value: DefaultNIL}, {Name: "X-MSS-CODECDA", Value: "11490-0"},
		{Name: "X-MSS-INS", Value: "O"}}, m.Headers)
	require.Len(t, m.Attachments, 2)
	require.Equal(t, "IHE_XDM.ZIP", m.Attachments[0].Filename)
	require.Equal(t, "Lettre.pdf", m.Attachments[1].Filename)
	zr, err := zip.NewReader(bytes.NewReader(m.Attachments[0].Data), int64(len(m.Attachments[0].Data)))
	require.NoError(t, err)
	var metadata []byte
	for _, f := range zr.File {
		if f.Name == "IHE_XDM/SUBSET01/METADATA.XML" {
			rc, err := f.Open()
			require.NoError(t, err)
			metadata, err = io.ReadAll(rc)
			require.NoError(t, err)
			rc.Close()
		}
	}
	require.Regexp(t, `name="urn:asip:ci-sis:2010:action">\s*<rim:ValueList>\s*<rim:Value>D</rim:Value>`, string(metadata))
	require.Contains(t, string(metadata), "899900000002^", "the recipient's national id")
}
