package cda

import (
	"testing"
)

// BenchmarkReadHeaderPDF measures what the intake does with a report's CDA:
// read it once, take its header and its PDF (100 KiB).
func BenchmarkReadHeaderPDF(b *testing.B) {
	doc, _ := bigPDFDoc(b, 100<<10)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		tree, err := Read(doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tree.Header(); err != nil {
			b.Fatal(err)
		}
		if _, err := tree.PDF(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPackageXDM measures the IHE_XDM.ZIP of one email: a CDA whose
// PDF is 100 KiB.
func BenchmarkPackageXDM(b *testing.B) {
	doc, _ := bigPDFDoc(b, 100<<10)
	opt := xdmTestOptions("")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := PackageXDM(doc, opt); err != nil {
			b.Fatal(err)
		}
	}
}
