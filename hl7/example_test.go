package hl7_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/hl7"
)

func ExampleParse() {
	raw := []byte("MSH|^~\\&|SIL|LABO|PFI|CH|20240312093100||ORU^R01^ORU_R01|MSG1|P|2.5|||||FRA|8859/1\n" +
		"PID|||248017512345648^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||H\xc9RON^ANNE\n")
	m, err := hl7.Parse(raw, hl7.ParseOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	code, event, _ := m.Type()
	pid := m.Segment("PID")
	ins := pid.Field(3).Rep(0)
	fmt.Println(code, event, m.ControlID())
	fmt.Println(ins.Comp(1), ins.Sub(4, 2), ins.Comp(5))
	fmt.Println(pid.Component(5, 1), pid.Component(5, 2))
	// Output:
	// ORU R01 MSG1
	// 248017512345648 1.2.250.1.213.1.4.10 INS
	// HÉRON ANNE
}

func ExampleNewACK() {
	now := time.Date(2024, 3, 12, 9, 31, 5, 0, time.UTC)
	raw := []byte("MSH|^~\\&|SIL|LABO|PFI|CH|20240312093100||ORU^R01^ORU_R01|MSG1|P|2.5\rpid|1\r")
	m, err := hl7.Parse(raw, hl7.ParseOptions{})
	var ack *hl7.Message
	var pe *hl7.ParseError
	switch {
	case errors.As(err, &pe) && m != nil:
		// An error in the message: AE, it would fail again (AR means "try later").
		ack = hl7.NewACK(m, hl7.AckError, "ACK1", now, pe.Detail())
	case errors.As(err, &pe):
		// MSH itself is unreadable: mirror what can be salvaged of it.
		ack = hl7.NewACK(hl7.SalvageHeader(raw), hl7.AckError, "ACK1", now, pe.Detail())
	default:
		ack = hl7.NewACK(m, hl7.AckAccept, "ACK1", now)
	}
	fmt.Print(strings.ReplaceAll(string(ack.Encode()), "\r", "\n"))
	// Output:
	// MSH|^~\&|PFI|CH|SIL|LABO|20240312093105||ACK^R01^ACK|ACK1|P|2.5||||||UNICODE UTF-8
	// MSA|AE|MSG1
	// ERR|||100^Segment sequence error^messageErrorCondition|E||||segment 2 : nom de segment "pid" invalide
}

func ExampleSalvageHeader() {
	now := time.Date(2024, 3, 12, 9, 31, 5, 0, time.UTC)
	// The field separator inside MSH-2: Parse cannot read the header.
	raw := []byte("MSH|^~|&|SIL|LABO|PFI|CH|20240312093100||ORU^R01^ORU_R01|MSG2|P|2.5\rPID|1\r")
	m, err := hl7.Parse(raw, hl7.ParseOptions{})
	var pe *hl7.ParseError
	if m == nil && errors.As(err, &pe) {
		ack := hl7.NewACK(hl7.SalvageHeader(raw), hl7.AckError, "ACK2", now, pe.Detail())
		fmt.Print(strings.ReplaceAll(string(ack.Encode()), "\r", "\n"))
	}
	// Output:
	// MSH|^~\&|PFI|CH|SIL|LABO|20240312093105||ACK^R01^ACK|ACK2|P|2.5||||||UNICODE UTF-8
	// MSA|AE|MSG2
	// ERR||MSH^1^2|102^Data type error^messageErrorCondition|E||||les caractères d'encodage (MSH-2) doivent être 4 (ou 5 avec la troncature) caractères distincts, ni lettres ni chiffres
}
