package hl7

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
	"time"
)

// testNow is a fixed acknowledgement time.
var testNow = time.Date(2024, 3, 12, 9, 31, 5, 0, time.UTC)

// largeORU returns the testdata ORU with its CDA replaced by about 100 KB of base64.
func largeORU(b testing.TB) []byte {
	b.Helper()
	data := readTestdata(b, "oru_r01_cr_bio_8859-15.hl7")
	obx := bytes.Index(data, []byte("\rOBX|1|"))
	start := obx + bytes.Index(data[obx:], []byte("Base64^")) + len("Base64^")
	end := start + bytes.IndexByte(data[start:], '|')
	payload := make([]byte, 72_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(r.UintN(256))
	}
	var out []byte
	out = append(out, data[:start]...)
	out = append(out, base64.StdEncoding.EncodeToString(payload)...)
	out = append(out, data[end:]...)
	return out
}

func BenchmarkParse(b *testing.B) {
	data := largeORU(b)
	if _, err := Parse(data, ParseOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSmall(b *testing.B) {
	data := readTestdata(b, "mdm_t02_cr_imagerie_utf8_lf.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m, err := Parse(largeORU(b), ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Encode()
	}
}
