package hl7

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// charset decodes message bytes to UTF-8; a nil table means UTF-8 with the
// ISO-8859-1 fallback for invalid input.
type charset struct {
	table *charmap.Charmap
}

// utf8Charset is UTF-8 (with the ISO-8859-1 fallback).
var utf8Charset = charset{}

// latin1Charset is ISO-8859-1, the fallback for invalid UTF-8.
var latin1Charset = charset{table: charmap.ISO8859_1}

// KnownCharset reports whether name is a character set Parse understands (an MSH-18 value or ParseOptions.DefaultCharset).
func KnownCharset(name string) bool {
	_, ok := lookupCharset(name)
	return ok
}

// lookupCharset maps an MSH-18 value (HL7 table 0211, case and surrounding
// spaces ignored) to a decoder; "" means UTF-8.
func lookupCharset(name string) (charset, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "", "UNICODE UTF-8", "UNICODE", "UTF-8", "UTF8", "ASCII":
		return utf8Charset, true
	case "8859/1":
		return charset{charmap.ISO8859_1}, true
	case "8859/2":
		return charset{charmap.ISO8859_2}, true
	case "8859/3":
		return charset{charmap.ISO8859_3}, true
	case "8859/4":
		return charset{charmap.ISO8859_4}, true
	case "8859/5":
		return charset{charmap.ISO8859_5}, true
	case "8859/6":
		return charset{charmap.ISO8859_6}, true
	case "8859/7":
		return charset{charmap.ISO8859_7}, true
	case "8859/8":
		return charset{charmap.ISO8859_8}, true
	case "8859/9":
		return charset{charmap.ISO8859_9}, true
	case "8859/15":
		return charset{charmap.ISO8859_15}, true
	}
	return charset{}, false
}

// effective returns the charset to use for b: UTF-8 input that is not valid
// UTF-8 is read as ISO-8859-1.
func (c charset) effective(b []byte) charset {
	if c.table == nil && !utf8.Valid(b) {
		return latin1Charset
	}
	return c
}

// decode converts b to a UTF-8 string with one allocation.
func (c charset) decode(b []byte) string {
	c = c.effective(b)
	first := nextNonASCII(b, 0)
	if c.table == nil || first == len(b) {
		return string(b)
	}
	n := 0
	for i := first; i < len(b); i = nextNonASCII(b, i+1) {
		n++
	}
	var sb strings.Builder
	sb.Grow(len(b) + 2*n)
	start := 0
	for i := first; i < len(b); i = nextNonASCII(b, i+1) {
		sb.Write(b[start:i])
		sb.WriteRune(c.table.DecodeByte(b[i]))
		start = i + 1
	}
	sb.Write(b[start:])
	return sb.String()
}

// nextNonASCII returns the index of the first byte >= 0x80 in b at or after i, or len(b).
func nextNonASCII(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return i
		}
	}
	return len(b)
}

// appendDecoded appends b decoded to UTF-8 to dst.
func (c charset) appendDecoded(dst, b []byte) []byte {
	c = c.effective(b)
	if c.table == nil {
		return append(dst, b...)
	}
	for _, x := range b {
		if x < utf8.RuneSelf {
			dst = append(dst, x)
			continue
		}
		dst = utf8.AppendRune(dst, c.table.DecodeByte(x))
	}
	return dst
}
