package cda_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/mssdispatch/mssdispatch/cda"
)

func ExampleParse() {
	data, err := os.ReadFile("testdata/n1-pdf.xml")
	if err != nil {
		log.Fatal(err)
	}
	d, err := cda.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	ins, oid, ok := d.Patient.INS()
	fmt.Println(d.UniqueID())
	fmt.Println(d.Code.Code, d.Title)
	fmt.Println(d.Patient.Family, d.Patient.Given, d.Patient.BirthDate)
	fmt.Println(ins, oid, ok)
	fmt.Println(d.Author.ID.Extension, d.Custodian.Name, d.HasPDF)
	// Output:
	// 1.2.250.1.999.42.1.4^LDL-20240312-000123
	// 11490-0 Lettre de liaison de sortie
	// DUPONT Marie 19800115
	// 280017512345678 1.2.250.1.213.1.4.10 true
	// 810001234567 Centre Hospitalier de Test true
}

func ExampleExtractPDF() {
	for _, name := range []string{"testdata/n1-pdf.xml", "testdata/cr-bio-n3.xml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			log.Fatal(err)
		}
		pdf, err := cda.ExtractPDF(data)
		switch {
		case errors.Is(err, cda.ErrNoPDF):
			fmt.Println(name, "has no PDF")
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Println(name, "PDF of", len(pdf), "bytes")
		}
	}
	// Output:
	// testdata/n1-pdf.xml PDF of 634 bytes
	// testdata/cr-bio-n3.xml has no PDF
}
