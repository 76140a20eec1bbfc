// Package mailtest reads back, for tests, the emails the service writes: an
// .eml of the outbox transport or a message an SMTP server received, its
// header, body and attachments, and the files of a zip attachment such as
// IHE_XDM.ZIP.
package mailtest

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	gomail "github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"
)

// Email is an email parsed.
type Email struct {
	Raw    []byte
	Header gomail.Header
	// Body is the text of its inline part.
	Body string
	// Attachments are the attachments by file name, Names their names in order.
	Attachments map[string][]byte
	Names       []string
}

// Parse parses raw.
func Parse(t testing.TB, raw []byte) Email {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	require.NoError(t, err)
	e := Email{Raw: raw, Header: r.Header, Attachments: map[string][]byte{}}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			e.Body = string(data)
		case *gomail.AttachmentHeader:
			name, err := h.Filename()
			require.NoError(t, err)
			e.Attachments[name] = data
			e.Names = append(e.Names, name)
		}
	}
	return e
}

// ReadDir parses the .eml files of dir, in the order of their names.
func ReadDir(t testing.TB, dir string) []Email {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	var out []Email
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		out = append(out, Parse(t, raw))
	}
	return out
}

// Addresses returns the addresses of the address-list field name of e.
func (e Email) Addresses(t testing.TB, name string) []string {
	t.Helper()
	list, err := e.Header.AddressList(name)
	require.NoError(t, err)
	var out []string
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

// Unzip returns the files of a zip archive by name, and their names in
// the archive's order.
func Unzip(t testing.TB, data []byte) (files map[string][]byte, names []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	files = map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		files[f.Name] = b
		names = append(names, f.Name)
	}
	return files, names
}
