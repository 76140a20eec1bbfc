package mail_test

import (
	"math/rand/v2"
	"testing"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// BenchmarkMessageBytes composes an MSSanté email as the send worker does:
// a short body, a 110 kB IHE_XDM.ZIP and a 100 KiB PDF, both incompressible.
func BenchmarkMessageBytes(b *testing.B) {
	r := rand.NewChaCha8([32]byte{'m', 'i', 'm', 'e'})
	random := func(n int) []byte {
		data := make([]byte, n)
		_, _ = r.Read(data)
		return data
	}
	m := mail.Message{From: "a@b.fr", To: []string{"c@d.fr"}, MessageID: "x@y", Subject: "s", Body: "Bonjour,\r\n"}
	m.Attachments = []mail.Attachment{{Filename: "IHE_XDM.ZIP", ContentType: "application/zip", Data: random(110_000)},
		{Filename: "Lettre de sortie.pdf", ContentType: "application/pdf", Data: random(100 << 10)}}
	for b.Loop() {
		if _, err := m.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}
