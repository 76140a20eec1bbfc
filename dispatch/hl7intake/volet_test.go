package hl7intake

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
)

// completeMessages are testdata messages that fill every field the volet
// requires: the service accepts them without any warning.
var completeMessages = map[string]string{oruOnly: "oru_r01_volet_complete.hl7", mdmOnly: "mdm_t02_new.hl7"}

// TestVoletFields takes each field of voletFields out of a complete message
// of each type it applies to, as a DPI that leaves it empty would send it,
// and checks what the README's table says the service does: an AE located
// at the field, or an AA with a warning located at it.
func TestVoletFields(t *testing.T) {
	t.Parallel()
	for kind, name := range completeMessages {
		_, warnings, err := toReport(parseMessage(t, loadMessage(t, name)))
		require.NoError(t, err, name)
		require.Empty(t, warnings, "%s is complete", name)
		for _, f := range voletFields {
			if !strings.Contains(f.In, kind) || (f.Segment == "MSH" && f.Field <= 2) {
				continue // MSH-1 and MSH-2 cannot be left out: TestParseErrors
			}
			t.Run(fmt.Sprintf("%s %s-%d %s", kind, f.Segment, f.Field, f.Label), func(t *testing.T) {
				t.Parallel()
				msg := parseMessage(t, loadMessage(t, name))
				target := fieldSegment(t, msg, f)
				if f.Field == 0 {
					msg.Segments = slices.DeleteFunc(msg.Segments, func(s *hl7.Segment) bool { return s == target })
				} else {
					target.Set(f.Field, nil)
				}
				if f.Segment == "MSH" && f.Field == 18 {
					msg.Charset = "" // or Encode writes it
				}
				at := fmt.Sprintf("%s^%d", f.Segment, sequenceOf(msg, target))
				if f.Field > 0 {
					at += fmt.Sprintf("^%d", f.Field)
				}
				parsed, err := hl7.Parse(msg.Encode(), hl7.ParseOptions{})
				if err != nil { // MSH-9, MSH-10: the parser refuses it
					require.True(t, f.Refused, "the parser refuses a message without a field the service does without: %v", err)
					var pe *hl7.ParseError
					require.ErrorAs(t, err, &pe)
					require.Equal(t, at, where(pe.Detail()))
					return
				}
				_, warnings, err := toReport(parsed)
				if f.Refused {
					var rej *rejection
					require.ErrorAs(t, err, &rej, "refused")
					require.Equal(t, hl7.AckError, rej.code)
					require.Equal(t, f.Segment, rej.detail.Segment, rej.detail.Msg)
					if f.Segment != "OBX" || f.Field != 0 {
						require.Equal(t, at, where(rej.detail), rej.detail.Msg)
					}
					return
				}
				require.NoError(t, err, "accepted")
				require.NotEmpty(t, warnings, "with a warning")
				require.True(t, slices.ContainsFunc(warnings, func(w hl7.ErrDetail) bool {
					return w.Segment == f.Segment && (f.Field == 0 || w.Field == f.Field)
				}), "a warning at %s in %+v", at, warnings)
			})
		}
	}
}

// fieldSegment returns the segment of msg that holds f: the first of its
// name, the document's OBX, the OBX of a flag, or the PRT of the role the
// field concerns.
func fieldSegment(t *testing.T, msg *hl7.Message, f voletField) *hl7.Segment {
	t.Helper()
	for _, s := range msg.Segments {
		if s.Name != f.Segment {
			continue
		}
		switch f.Segment {
		case "OBX":
			obx := hl7.OBX{Segment: s}
			code := flagCode(obx.Identifier().Identifier)
			if f.Field == 0 && code == f.Label || f.Field > 0 && !isMetadata(obx.Identifier()) {
				return s
			}
		case "PRT":
			want := "SB" // PRT-2, PRT-4, and the segment itself
			if f.Field == 15 {
				want = "RCT"
			}
			if norm(hl7.PRT{Segment: s}.Participation().Identifier) == want {
				return s
			}
		default:
			return s
		}
	}
	t.Fatalf("no segment for %s-%d %s", f.Segment, f.Field, f.Label)
	return nil
}

// sequenceOf returns the occurrence of s among the segments of its name in
// msg (1 when s is no longer there).
func sequenceOf(msg *hl7.Message, s *hl7.Segment) int {
	if i := slices.Index(msg.SegmentsNamed(s.Name), s); i >= 0 {
		return i + 1
	}
	return 1
}

// TestREADMERequiredFields checks that the README's table of the volet's
// required fields is voletFields; -update rewrites it.
func TestREADMERequiredFields(t *testing.T) {
	t.Parallel()
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	require.NoError(t, err)
	const begin, end = "<!-- volet-fields -->\n", "<!-- /volet-fields -->"
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	require.True(t, i >= 0 && j > i, "the README has the markers %q and %q", begin, end)
	var b strings.Builder
	b.WriteString("| field | what it is | in | when missing |\n|---|---|---|---|\n")
	for _, f := range voletFields {
		name := f.Segment
		switch {
		case f.Segment == "OBX" && f.Field == 0:
			name = "OBX " + f.Label
		case f.Field > 0:
			name = fmt.Sprintf("%s-%d", f.Segment, f.Field)
		}
		what := "refused (AE)"
		if !f.Refused {
			what = "accepted with a warning (AA, ERR W): " + f.Instead
		}
		label := f.Label
		if f.Segment == "OBX" && f.Field == 0 {
			label = "métadonnée MetaDMPMSS"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, label, f.In, what)
	}
	table := b.String()
	if *update {
		updated := string(readme[:i+len(begin)]) + table + string(readme[j:])
		require.NoError(t, os.WriteFile(path, []byte(updated), 0o644))
		return
	}
	require.Equal(t, table, string(readme[i+len(begin):j]), "run go test ./dispatch/hl7intake -run TestREADMERequiredFields -update")
}
