package hl7intake_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// FuzzIntake sends any input through the whole intake, parse, mapping and
// the domain's checks, down to PostgreSQL, as a DPI's feed would: every
// input gets an ACK that parses, AA (with warnings only) or AE (with an
// error, the input kept whole in quarantine, or the answer given to the
// same message before); never AR, which the volet keeps for what may
// succeed later, while the database is up.
func FuzzIntake(f *testing.F) {
	b := setup(f)
	files, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(f, err)
	for _, file := range files {
		msg := hl7intake.LoadMessage(f, filepath.Base(file))
		f.Add(msg)
		f.Add(bytes.Replace(msg, []byte("DUPONT"), []byte("DUP\x00ONT"), 1))
		f.Add(bytes.Replace(msg, []byte("DUPONT"), []byte(`DUP\X00\ONT`), 1))
		f.Add(bytes.Replace(msg, []byte(`MSH|^~\&|`), []byte(`MSH|^~^&|`), 1))
		// Bytes that are not UTF-8 in a message that says it is: in the
		// patient's name, in the message's key.
		f.Add(bytes.Replace(msg, []byte("DUPONT"), []byte("DUP\xa1ONT"), 1))
		f.Add(bytes.Replace(msg, []byte("|P|2."), []byte("\xe9|P|2."), 1))
	}
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rPID|1"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ack, err := hl7.Parse(b.handler.HandleHL7(b.ctx, raw), hl7.ParseOptions{})
		require.NoError(t, err, "the ACK parses")
		var errors, warnings int
		for _, e := range ack.SegmentsNamed("ERR") {
			switch e.Get(4) {
			case "E":
				errors++
				require.NotEmpty(t, e.Get(8), "an error says why")
			case "W":
				warnings++
			}
		}
		switch code := ack.Segment("MSA").Get(1); code {
		case hl7.AckAccept:
			require.Zero(t, errors, "an AA carries no error")
		case hl7.AckError:
			require.NotZero(t, errors, "an AE says why")
			var kept bool
			require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT EXISTS (SELECT 1 FROM quarantine WHERE raw = $1)
				OR EXISTS (SELECT 1 FROM inbound_messages WHERE outcome = 'rejected' AND response = $2)`,
				raw, ack.Encode()).Scan(&kept))
			require.True(t, kept, "refused and not kept whole")
		default:
			t.Fatalf("MSA-1 %q with the database up: %s", code, ack.Encode())
		}
	})
}
