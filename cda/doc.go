// Package cda owns the HL7 CDA R2 documents the service receives and sends:
// it reads the header of a clinical document (identifiers, type, patient and
// INS, author, custodian, legal authenticator, recipients) and extracts the
// PDF rendering a recipient reads, from a level 1 nonXMLBody or from a
// level 3 structuredBody (observationMedia). It also wraps a bare PDF into a
// CDA level 1 document (WrapPDF) and packages a document in the IHE_XDM.ZIP
// MSSanté receivers expect (PrepareXDM once per document, Package once per
// recipient; PackageXDM for both), and reads the narrative of a level 3
// document as text sections (Text), for the paper letters.
//
// The package only works on bytes it is given: it never reads files, the
// network or the environment. XML is read with github.com/beevik/etree;
// documents larger than [MaxSize] or carrying a DOCTYPE are rejected, and
// no external entity is ever resolved.
package cda
