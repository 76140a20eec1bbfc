// Package hl7intake is the HL7 v2 edge of the service: it maps a message from
// the DPI (ORU^R01 and MDM^T02/T10/T04 per the ANS volet "Transmission d'un
// document CDA-R2 en HL7v2") to a dispatch.Report, hands it to the domain,
// and translates the outcome to an HL7 ACK (AA once the report is committed;
// AE for content the DPI must fix; AR for what cannot be read or stored now).
// A retransmission gets the first ACK; every refused message is quarantined.
// It serves MLLP connections and the REST endpoint that takes raw HL7.
package hl7intake
