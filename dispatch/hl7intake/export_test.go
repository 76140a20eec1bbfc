package hl7intake

// LoadMessage is loadMessage, for the tests of package hl7intake_test.
var LoadMessage = loadMessage

// PatientOf and DocumentOf are patientOf and documentOf, for TestAbout.
var PatientOf, DocumentOf = patientOf, documentOf
