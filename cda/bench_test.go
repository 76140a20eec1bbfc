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
// PDF is 100 KiB, from the CDA (PackageXDM) and from the document prepared
// once for the report's emails (Package).
func BenchmarkPackageXDM(b *testing.B) {
	doc, _ := bigPDFDoc(b, 100<<10)
	opt := xdmTestOptions("")
	b.Run("cda", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if _, err := PackageXDM(doc, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		x, err := PrepareXDM(doc)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if _, err := x.Package(opt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrepareXDM measures what a report's emails share: reading,
// hashing and compressing a CDA whose PDF is 100 KiB.
func BenchmarkPrepareXDM(b *testing.B) {
	doc, _ := bigPDFDoc(b, 100<<10)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := PrepareXDM(doc); err != nil {
			b.Fatal(err)
		}
	}
}
