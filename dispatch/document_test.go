package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPatientRecipient(t *testing.T) {
	t.Parallel()
	patient := Patient{Family: "DUPONT", Given: "Marie", INS: "280017512345678", INSQualified: true}
	pro := Recipient{Role: RoleResultCopiesTo, Kind: KindProfessional, NationalID: "899900000002"}
	listed := Recipient{Role: RolePatient, Kind: KindPatient, Address: "280017512345678@patient.mssante.fr"}
	toPatient := Flags{Present: true, ToPatient: true}
	tests := []struct {
		name    string
		flags   Flags
		patient Patient
		in      []Recipient
		want    []Recipient
	}{
		{"flags do not send to the patient: the listed patient is dropped", DefaultFlags, patient,
			[]Recipient{pro, listed}, []Recipient{pro}},
		{"listed patient completed with the name", toPatient, patient, []Recipient{listed},
			[]Recipient{{Role: RolePatient, Kind: KindPatient, Family: "DUPONT", Given: "Marie", Address: listed.Address}}},
		{"not listed: added with the patient's name (the resolver derives the mailbox from the INS)", toPatient, patient, []Recipient{pro},
			[]Recipient{pro, {Role: RolePatient, Kind: KindPatient, Family: "DUPONT", Given: "Marie"}}},
		{"invisible to the patient", Flags{Present: true, ToPatient: true, InvisiblePatient: true}, patient, []Recipient{listed}, []Recipient{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Report{Flags: tt.flags, Patient: tt.patient, Recipients: append([]Recipient(nil), tt.in...)}
			r.patientRecipient()
			require.Equal(t, tt.want, r.Recipients)
		})
	}
}
