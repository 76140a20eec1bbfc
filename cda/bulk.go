package cda

import (
	"bytes"
	"strconv"
	"strings"
)

// bulkMin is the size from which readRoot takes a base64 text out of the
// document before parsing it.
const bulkMin = 1024

// xmlSpace is XML's white space.
const xmlSpace = " \t\r\n"

// base64Byte marks the bytes a base64 text may hold: the alphabet, the
// padding and XML white space.
var base64Byte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" + xmlSpace) {
		t[c] = true
	}
	return t
}()

// cutBulk takes the large base64 texts out of an XML document before it is
// parsed: encoding/xml reads character data a byte at a time, and the PDF
// a report embeds is most of the document. A text is cut when it directly
// follows a start tag carrying representation="B64" (an HL7 ED in base64),
// is at least bulkMin bytes long and holds only base64 bytes (no entity
// reference, which the parser would have to resolve). Each cut text is
// replaced by a placeholder that occurs nowhere else in data, followed by as
// many line feeds as the text held (the parser's errors keep their line
// numbers); bulk maps the placeholders, without the line feeds, to the
// texts, which are slices of data.
//
// cutBulk skips comments, CDATA sections, processing instructions and quoted
// attribute values. On a document it cannot follow (a DOCTYPE, an
// unterminated construct) it returns data unchanged, for the parser to judge.
func cutBulk(data []byte) (out []byte, bulk map[string][]byte) {
	var cuts [][2]int // start and end offsets of the texts to cut
	cutTotal := 0
	afterB64 := false // the markup just read is a start tag with representation="B64"
	for i := 0; i < len(data); {
		lt := bytes.IndexByte(data[i:], '<')
		if lt < 0 {
			break
		}
		lt += i
		if afterB64 && lt-i >= bulkMin && allBase64(data[i:lt]) {
			cuts = append(cuts, [2]int{i, lt})
			cutTotal += lt - i
		}
		afterB64 = false
		rest := data[lt:]
		var end int
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end = closeAfter(rest, "-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end = closeAfter(rest, "]]>")
		case bytes.HasPrefix(rest, []byte("<?")):
			end = closeAfter(rest, "?>")
		case bytes.HasPrefix(rest, []byte("<!")):
			return data, nil
		default:
			end = tagEnd(rest)
			if end > 0 && rest[1] != '/' && rest[end-2] != '/' {
				afterB64 = isB64Tag(rest[:end])
			}
		}
		if end < 0 {
			return data, nil
		}
		i = lt + end
	}
	if len(cuts) == 0 {
		return data, nil
	}
	prefix := "mssdispatch-bulk-"
	for n := 0; bytes.Contains(data, []byte(prefix)); n++ {
		prefix = "mssdispatch-bulk" + strconv.Itoa(n) + "-"
	}
	bulk = make(map[string][]byte, len(cuts))
	out = make([]byte, 0, len(data)-cutTotal+len(cuts)*(len(prefix)+4))
	last := 0
	for k, c := range cuts {
		key := prefix + strconv.Itoa(k) + "-"
		text := data[c[0]:c[1]]
		bulk[key] = text
		out = append(append(out, data[last:c[0]]...), key...)
		for range bytes.Count(text, []byte("\n")) {
			out = append(out, '\n')
		}
		last = c[1]
	}
	return append(out, data[last:]...), bulk
}

// allBase64 reports whether b holds only base64 bytes and white space.
func allBase64(b []byte) bool {
	for _, c := range b {
		if !base64Byte[c] {
			return false
		}
	}
	return true
}

// closeAfter returns the length of s up to and including the first
// terminator after its opening, or -1.
func closeAfter(s []byte, terminator string) int {
	i := bytes.Index(s[2:], []byte(terminator))
	if i < 0 {
		return -1
	}
	return 2 + i + len(terminator)
}

// tagEnd returns the length of the tag s starts with, up to and including
// its '>', skipping quoted attribute values; -1 when it does not end.
func tagEnd(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '>':
			return i + 1
		case '"', '\'':
			j := bytes.IndexByte(s[i+1:], s[i])
			if j < 0 {
				return -1
			}
			i += j + 1
		}
	}
	return -1
}

// isB64Tag reports whether the start tag has an unprefixed attribute
// representation whose value is B64 (case-insensitive, as isPDF reads it).
func isB64Tag(tag []byte) bool {
	tag = tag[1 : len(tag)-1]
	// Skip the element name.
	i := bytes.IndexAny(tag, xmlSpace)
	for i >= 0 && i < len(tag) {
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		eq := bytes.IndexByte(tag[i:], '=')
		if eq < 0 {
			return false
		}
		name := bytes.TrimRight(tag[i:i+eq], xmlSpace)
		i += eq + 1
		for i < len(tag) && isXMLSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || (tag[i] != '"' && tag[i] != '\'') {
			return false
		}
		j := bytes.IndexByte(tag[i+1:], tag[i])
		if j < 0 {
			return false
		}
		value := tag[i+1 : i+1+j]
		if string(name) == "representation" && bytes.EqualFold(bytes.TrimSpace(value), []byte("B64")) {
			return true
		}
		i += j + 2
	}
	return false
}

func isXMLSpace(c byte) bool { return strings.IndexByte(xmlSpace, c) >= 0 }
