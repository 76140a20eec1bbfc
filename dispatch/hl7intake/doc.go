// Package hl7intake is the HL7 v2 edge of the service: it maps a message from
// the DPI (ORU^R01 and MDM^T02/T10/T04 per the ANS volet "Transmission d'un
// document CDA-R2 en HL7v2") to a dispatch.Report, hands it to the domain,
// and translates the outcome to an HL7 ACK, as the volet defines them: AA
// once the report is committed (with ERR segments of severity W for what was
// ignored); AE for a message that would fail again as is (unreadable,
// unsupported, content the DPI must fix); AR only for what may succeed when
// sent again later (the database unavailable, the service stopping). A
// retransmission gets the first ACK; every refused message is quarantined,
// its bytes whole, with whom and what it is about as far as it can be read;
// Reprocess runs one through the intake again once its cause is gone.
// It serves MLLP connections and the REST endpoint that takes raw HL7, and
// sends the DPI the business acknowledgements it asked for (Notifier: a
// ZAM^Z02 or ZAM^Z03 over MLLP, the domain's dispatch.DPINotifier).
package hl7intake
