package hl7intake

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
)

// INS authority OIDs (PID-3 with identifier type INS).
var insOIDs = map[string]bool{
	"1.2.250.1.213.1.4.8": true, "1.2.250.1.213.1.4.9": true,
	"1.2.250.1.213.1.4.10": true, "1.2.250.1.213.1.4.11": true,
}

// toReport maps an ORU^R01 to a dispatch.Report, or returns a *rejection.
func toReport(msg *hl7.Message) (dispatch.Report, error) {
	code, event, _ := msg.Type()
	if code != "ORU" || event != "R01" {
		return dispatch.Report{}, reject(hl7.AckReject, "MSH", 9, hl7.CodeUnsupportedMessageType, "message type %s^%s is not supported: send ORU^R01", code, event)
	}
	msh := msg.Segment("MSH")
	r := dispatch.Report{
		SendingApplication: msh.Get(3),
		SendingFacility:    msh.Get(4),
		ControlID:          msg.ControlID(),
		MessageType:        code + "^" + event,
		Action:             dispatch.ActionNew,
	}
	if r.ControlID == "" {
		return r, reject(hl7.AckReject, "MSH", 10, hl7.CodeRequiredField, "MSH-10 (message control id) is empty")
	}
	pid := msg.Segment("PID")
	if pid == nil {
		return r, reject(hl7.AckError, "PID", 0, hl7.CodeSegmentSequence, "the PID segment is missing")
	}
	for _, rep := range pid.Field(3) {
		switch rep.Comp(5) {
		case "INS":
			if oid := rep.Sub(4, 2); insOIDs[oid] {
				r.Patient.INS, r.Patient.INSOID = rep.Comp(1), oid
			}
		case "PI":
			r.Patient.IPP = rep.Comp(1)
		}
	}
	name := pid.Field(5).Rep(0)
	r.Patient.Family, r.Patient.Given = name.Comp(1), name.Comp(2)
	r.Patient.BirthDate = pid.Get(7)
	if len(r.Patient.BirthDate) > 8 {
		r.Patient.BirthDate = r.Patient.BirthDate[:8]
	}
	r.Patient.Sex = pid.Get(8)

	doc, err := document(msg)
	if err != nil {
		return r, err
	}
	r.Document = doc
	for i, prt := range msg.SegmentsNamed("PRT") {
		if prt.Component(4, 1) != "RCT" {
			continue
		}
		rc := dispatch.Recipient{Role: "RCT"}
		person := prt.Field(5).Rep(0)
		rc.Family, rc.Given = person.Comp(2), person.Comp(3)
		if id := person.Comp(1); id != "" {
			rc.NationalID = id
			if person.Sub(9, 2) == "1.2.250.1.71.4.2.1" && len(id) == 12 && id[0] == '8' {
				rc.RPPS = id[1:]
			}
		}
		for _, tel := range prt.Field(15) {
			if tel.Comp(3) == "X.400" && tel.Comp(4) != "" {
				rc.Address = strings.ToLower(strings.TrimSpace(tel.Comp(4)))
				break
			}
		}
		if rc.NationalID == "" && rc.Address == "" && rc.Family == "" {
			return r, &rejection{code: hl7.AckError, detail: hl7.ErrDetail{Segment: "PRT", Sequence: i + 1, Field: 5, Code: hl7.CodeRequiredField,
				Severity: "E", Msg: "a PRT RCT recipient has neither an id, a name nor an address"}}
		}
		r.Recipients = append(r.Recipients, rc)
	}
	return r, nil
}

// document reads the CDA carried by the message's OBX of type ED.
func document(msg *hl7.Message) (dispatch.Document, error) {
	for i, obx := range msg.SegmentsNamed("OBX") {
		if obx.Get(2) != "ED" || strings.HasPrefix(obx.Component(3, 1), "CORPSMAIL") {
			continue
		}
		doc, err := obxDocument(obx)
		var rej *rejection
		if errors.As(err, &rej) {
			rej.detail.Sequence = i + 1
		}
		return doc, err
	}
	return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeRequiredField, "no OBX of type ED carries the CDA document")
}

func obxDocument(obx *hl7.Segment) (dispatch.Document, error) {
	if status := obx.Get(11); status != "F" {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 11, hl7.CodeTableValue,
			"OBX-11 %q is not supported yet: only new validated documents (F) are accepted", status)
	}
	cdaBytes, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, obx.Component(5, 5)))
	if err != nil || len(cdaBytes) == 0 {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "OBX-5.5 is not a base64 document")
	}
	header, err := cda.Parse(cdaBytes)
	if err != nil {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "OBX-5 is not a CDA R2 document: %v", err)
	}
	pdf, err := cda.ExtractPDF(cdaBytes)
	if err != nil && !errors.Is(err, cda.ErrNoPDF) {
		return dispatch.Document{}, reject(hl7.AckError, "OBX", 5, hl7.CodeDataType, "the CDA's PDF cannot be read: %v", err)
	}
	doc := dispatch.Document{ID: header.UniqueID(), Code: header.Code.Code, Title: header.Title, CDA: cdaBytes, PDF: pdf}
	if doc.Code == "" {
		doc.Code = obx.Component(3, 1)
	}
	if doc.Title == "" {
		doc.Title = obx.Component(3, 2)
	}
	return doc, nil
}

func dropSpace(r rune) rune {
	switch r {
	case ' ', '\t', '\r', '\n':
		return -1
	}
	return r
}
