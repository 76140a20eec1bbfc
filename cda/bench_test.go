package cda

import (
	"encoding/base64"
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
			if _, err := Package(opt, x); err != nil {
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

// BenchmarkDecodeBase64 decodes 137 kB of base64 as an HL7 OBX-5 carries a
// CDA (one line), as a CDA wraps a PDF (lines of 76, CRLF), and as an
// indented XML text node (lines of 76, each after a few spaces).
func BenchmarkDecodeBase64(b *testing.B) {
	raw := make([]byte, 100<<10)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	line := []byte(base64.StdEncoding.EncodeToString(raw))
	var wrapped, indented []byte
	for s := line; len(s) > 0; {
		n := min(76, len(s))
		wrapped = append(append(wrapped, s[:n]...), "\r\n"...)
		indented = append(append(append(indented, "      "...), s[:n]...), '\n')
		s = s[n:]
	}
	for _, c := range []struct {
		name string
		text []byte
	}{{"line", line}, {"wrapped", wrapped}, {"indented", indented}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				if _, err := DecodeBase64(c.text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
