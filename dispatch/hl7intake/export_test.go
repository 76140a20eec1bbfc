package hl7intake

// LoadMessage is loadMessage, for the tests of package hl7intake_test.
var LoadMessage = loadMessage
