package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResentReport checks, case by case, which report a message sends
// again, and which reuse of a document id is refused.
func TestResentReport(t *testing.T) {
	t.Parallel()
	doc := func(id, content string) Document { return Document{ID: id, CDA: []byte(content)} }
	sum := func(content string) []byte { d := doc("", content); return d.sum() }
	stored := func(id string, report int64, action Action, content string) storedDocument {
		return storedDocument{ID: id, ReportID: report, Action: action, SHA256: sum(content)}
	}
	pair := func(action Action, a, b Document) Report { return Report{Action: action, Document: a, OtherFormat: &b} }
	tests := []struct {
		name   string
		r      Report
		stored []storedDocument
		want   int64
		err    string
	}{
		{"new", Report{Action: ActionNew, Document: doc("A", "a")}, nil, 0, ""},
		{"sent again", Report{Action: ActionNew, Document: doc("A", "a")}, []storedDocument{stored("A", 7, ActionNew, "a")}, 7, ""},
		{"other bytes", Report{Action: ActionNew, Document: doc("A", "b")}, []storedDocument{stored("A", 7, ActionNew, "a")}, 0,
			"envoyez la nouvelle version comme un remplacement"},
		{"a replacement sent again", Report{Action: ActionReplace, Document: doc("A2", "a2")},
			[]storedDocument{stored("A2", 9, ActionReplace, "a2")}, 9, ""},
		{"a version replaced since", Report{Action: ActionNew, Document: doc("A", "a")},
			[]storedDocument{stored("A", 7, ActionNew, "a"), {ID: "A2", ParentID: "A", ReportID: 9, Action: ActionReplace, SHA256: sum("a2")}}, 0,
			"a été remplacé depuis par A2 : envoyez la dernière version"},
		{"the replacement sent again, its parent listed", Report{Action: ActionReplace, Document: Document{ID: "A2", ParentID: "A", CDA: []byte("a2")}},
			[]storedDocument{{ID: "A2", ParentID: "A", ReportID: 9, Action: ActionReplace, SHA256: sum("a2")}}, 9, ""},
		{"a replacement reusing an id", Report{Action: ActionReplace, Document: doc("A2", "x")},
			[]storedDocument{stored("A2", 9, ActionReplace, "a2")}, 0, "une nouvelle version a son propre identifiant"},
		{"the latest carrying report", Report{Action: ActionNew, Document: doc("A", "a")},
			[]storedDocument{stored("A", 7, ActionNew, "a"), stored("A", 8, ActionNew, "a")}, 8, ""},
		{"deleted", Report{Action: ActionNew, Document: doc("A", "a")},
			[]storedDocument{stored("A", 7, ActionNew, "a"), {ID: "A", ReportID: 8, Action: ActionDelete}}, 0, "a été supprimé"},
		{"a pair sent again", pair(ActionNew, doc("N1", "1"), doc("N3", "3")),
			[]storedDocument{stored("N1", 4, ActionNew, "1"), stored("N3", 4, ActionNew, "3")}, 4, ""},
		{"half a pair known", pair(ActionNew, doc("N1", "1"), doc("N3", "3")),
			[]storedDocument{stored("N1", 4, ActionNew, "1")}, 0, "une partie des documents"},
		{"a pair from two reports", pair(ActionNew, doc("N1", "1"), doc("N3", "3")),
			[]storedDocument{stored("N1", 4, ActionNew, "1"), stored("N3", 5, ActionNew, "3")}, 0, "pas ensemble"},
		{"a deletion to apply", Report{Action: ActionDelete, Document: doc("A", "")}, []storedDocument{stored("A", 7, ActionNew, "a")}, 0, ""},
		{"a deletion sent again", Report{Action: ActionDelete, Document: doc("A", "")},
			[]storedDocument{stored("A", 7, ActionNew, "a"), {ID: "A", ReportID: 8, Action: ActionDelete}}, 8, ""},
		{"a pair's deletion half done", pair(ActionDelete, doc("N1", ""), doc("N3", "")),
			[]storedDocument{{ID: "N1", ReportID: 8, Action: ActionDelete}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resentReport(&tt.r, tt.stored)
			if tt.err != "" {
				var invalid *InvalidError
				require.ErrorAs(t, err, &invalid)
				require.Contains(t, invalid.Msg, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
