package hl7

// CharsetUTF8 is the MSH-18 value Encode writes: encoded messages are always UTF-8.
const CharsetUTF8 = "UNICODE UTF-8"

// Encode returns the message in ER7 encoding: UTF-8 bytes, "\r" after every
// segment, values escaped, trailing empty fields, repetitions, components and
// sub-components left out.
//
// MSH-1 and MSH-2 are written from m.Delims (DefaultDelimiters when zero).
// When the message had a character set (m.Charset or MSH-18 not empty),
// MSH-18 is written as "UNICODE UTF-8", the encoding of the output.
func (m *Message) Encode() []byte {
	d := m.Delims
	if d == (Delimiters{}) {
		d = DefaultDelimiters
	}
	e := newEscaper(d)
	b := make([]byte, 0, m.sizeHint())
	for _, seg := range m.Segments {
		if seg == nil {
			continue
		}
		b = append(b, seg.Name...)
		first := 1
		last := len(seg.fields)
		var charset Field
		if seg.Name == "MSH" {
			b = append(b, d.Field)
			b = append(b, d.encodingChars()...)
			first = 3
			if m.Charset != "" || !isEmptyField(seg.Field(18)) {
				charset = Text(CharsetUTF8)
				last = max(last, 18)
			}
		}
		for last >= first && isEmptyField(seg.Field(last)) && !(charset != nil && last == 18) {
			last--
		}
		for n := first; n <= last; n++ {
			b = append(b, d.Field)
			f := seg.Field(n)
			if charset != nil && n == 18 {
				f = charset
			}
			b = e.appendField(b, f)
		}
		b = append(b, '\r')
	}
	return b
}

// sizeHint estimates the encoded size to allocate once.
func (m *Message) sizeHint() int {
	n := 0
	for _, seg := range m.Segments {
		if seg == nil {
			continue
		}
		n += 8 + len(seg.Name)
		for _, f := range seg.fields {
			n++
			for _, r := range f {
				n++
				for _, c := range r {
					n++
					for _, s := range c {
						n += len(s) + 1
					}
				}
			}
		}
	}
	return n + n/16
}

func (e *escaper) appendField(b []byte, f Field) []byte {
	return appendJoined(b, f, e.d.Repetition, isEmptyRep, e.appendRep)
}

func (e *escaper) appendRep(b []byte, r Repetition) []byte {
	return appendJoined(b, r, e.d.Component, isEmptyComp, e.appendComp)
}

func (e *escaper) appendComp(b []byte, c Component) []byte {
	return appendJoined(b, c, e.d.SubComponent, func(s string) bool { return s == "" }, e.appendValue)
}

// appendJoined appends items separated by sep, leaving out the trailing
// empty ones: the encoder's counterpart of the parser's split.
func appendJoined[T any](b []byte, items []T, sep byte, empty func(T) bool, appendItem func([]byte, T) []byte) []byte {
	last := len(items) - 1
	for last >= 0 && empty(items[last]) {
		last--
	}
	for i, it := range items[:last+1] {
		if i > 0 {
			b = append(b, sep)
		}
		b = appendItem(b, it)
	}
	return b
}

func isEmptyField(f Field) bool {
	for _, r := range f {
		if !isEmptyRep(r) {
			return false
		}
	}
	return true
}

func isEmptyRep(r Repetition) bool {
	for _, c := range r {
		if !isEmptyComp(c) {
			return false
		}
	}
	return true
}

func isEmptyComp(c Component) bool {
	for _, s := range c {
		if s != "" {
			return false
		}
	}
	return true
}
