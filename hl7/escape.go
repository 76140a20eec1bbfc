package hl7

import (
	"bytes"
	"strings"
)

// unescape decodes the escape sequences of one raw sub-component. Values
// without the escape character are returned as is (no allocation).
func (p *parser) unescape(v string) string {
	esc := p.d.Escape
	i := strings.IndexByte(v, esc)
	if i < 0 {
		return v
	}
	b := p.buf[:0]
	for i >= 0 {
		b = append(b, v[:i]...)
		v = v[i+1:]
		j := strings.IndexByte(v, esc)
		if j < 0 {
			// Unterminated escape: keep the text literally.
			b = append(b, esc)
			break
		}
		b = p.appendEscape(b, v[:j])
		v = v[j+1:]
		i = strings.IndexByte(v, esc)
	}
	b = append(b, v...)
	p.buf = b
	return string(b)
}

// appendEscape appends the meaning of the escape sequence seq (without the
// surrounding escape characters) to b; unknown sequences are kept literally.
func (p *parser) appendEscape(b []byte, seq string) []byte {
	d := p.d
	if len(seq) == 1 {
		switch seq[0] {
		case 'F':
			return append(b, d.Field)
		case 'S':
			return append(b, d.Component)
		case 'T':
			return append(b, d.SubComponent)
		case 'R':
			return append(b, d.Repetition)
		case 'E':
			return append(b, d.Escape)
		case 'P':
			if d.Truncation != 0 {
				return append(b, d.Truncation)
			}
		case 'H', 'N':
			return b
		}
	}
	if seq == ".br" {
		return append(b, '\n')
	}
	if len(seq) > 1 && seq[0] == 'X' {
		if raw, ok := decodeHex(p.hexBuf[:0], seq[1:]); ok {
			p.hexBuf = raw
			if bytes.IndexByte(raw, 0) >= 0 {
				p.escNUL = true // parseSegment rejects the segment
			}
			return p.cs.appendDecoded(b, raw)
		}
	}
	b = append(b, d.Escape)
	b = append(b, seq...)
	return append(b, d.Escape)
}

// decodeHex appends the bytes of the even-length hexadecimal string h to dst.
func decodeHex(dst []byte, h string) ([]byte, bool) {
	if len(h) == 0 || len(h)%2 != 0 {
		return dst, false
	}
	for i := 0; i < len(h); i += 2 {
		hi, ok1 := fromHex(h[i])
		lo, ok2 := fromHex(h[i+1])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// escaper writes values with the delimiters, the escape character and
// control characters replaced by escape sequences.
type escaper struct {
	d       Delimiters
	special [256]bool
	brOK    bool // "\.br\" can be used for "\n" (no delimiter is '.')
}

func newEscaper(d Delimiters) *escaper {
	e := &escaper{d: d, brOK: true}
	for c := range 0x20 {
		e.special[c] = c != '\t'
	}
	e.special[0x7F] = true
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.SubComponent, d.Truncation} {
		if c != 0 {
			e.special[c] = true
		}
		if c == '.' {
			e.brOK = false
		}
	}
	return e
}

const hexDigits = "0123456789ABCDEF"

// appendValue appends v escaped to b: delimiters as \F\ \S\ \R\ \T\ \E\ \P\,
// "\n" as \.br\, other control characters as \Xhh\.
func (e *escaper) appendValue(b []byte, v string) []byte {
	d := e.d
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !e.special[c] {
			continue
		}
		b = append(b, v[start:i]...)
		start = i + 1
		var code byte
		switch c {
		case d.Field:
			code = 'F'
		case d.Component:
			code = 'S'
		case d.Repetition:
			code = 'R'
		case d.Escape:
			code = 'E'
		case d.SubComponent:
			code = 'T'
		}
		switch {
		case code != 0:
			b = append(b, d.Escape, code, d.Escape)
		case c == d.Truncation && c != 0:
			b = append(b, d.Escape, 'P', d.Escape)
		case c == '\n' && e.brOK:
			b = append(b, d.Escape, '.', 'b', 'r', d.Escape)
		default:
			b = append(b, d.Escape, 'X', hexDigits[c>>4], hexDigits[c&0xF], d.Escape)
		}
	}
	return append(b, v[start:]...)
}
