package hl7

// Delimiters are the encoding characters of a message (MSH-1, MSH-2).
type Delimiters struct {
	Field        byte // field separator, MSH-1, usually '|'
	Component    byte // component separator, usually '^'
	Repetition   byte // repetition separator, usually '~'
	Escape       byte // escape character, usually '\\'
	SubComponent byte // sub-component separator, usually '&'
	Truncation   byte // truncation character (v2.7, 5th character of MSH-2); 0 when absent
}

// DefaultDelimiters are the encoding characters recommended by HL7 ("|^~\&").
var DefaultDelimiters = Delimiters{'|', '^', '~', '\\', '&', 0}

// encodingChars returns MSH-2 as written for d.
func (d Delimiters) encodingChars() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.SubComponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// Message is one HL7 v2 message: its encoding characters and its segments in order.
type Message struct {
	Delims   Delimiters // encoding characters; the zero value means DefaultDelimiters when encoding
	Segments []*Segment // segments in message order, MSH first
	Charset  string     // MSH-18 as received (trimmed first component), "" when absent
}

// Segment is one segment: a three-character name and its fields.
type Segment struct {
	Name   string  // segment ID, such as "MSH" or "OBX"
	fields []Field // fields[0] is field 1 (for MSH: the field separator)
}

// Field holds the repetitions of a field; nil means empty.
type Field []Repetition

// Repetition holds the components of one occurrence of a field; nil means empty.
type Repetition []Component

// Component holds the sub-components of a component as unescaped UTF-8 text; nil means empty.
type Component []string

// NewSegment returns an empty segment named name.
func NewSegment(name string) *Segment { return &Segment{Name: name} }

// Add appends s to the message.
func (m *Message) Add(s *Segment) { m.Segments = append(m.Segments, s) }

// Segment returns the first segment named name, or nil if there is none.
func (m *Message) Segment(name string) *Segment {
	for _, s := range m.Segments {
		if s != nil && s.Name == name {
			return s
		}
	}
	return nil
}

// SegmentsNamed returns the segments named name in message order.
func (m *Message) SegmentsNamed(name string) []*Segment {
	var out []*Segment
	for _, s := range m.Segments {
		if s != nil && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// ControlID returns the message control ID, MSH-10.
func (m *Message) ControlID() string { return m.msh().Get(10) }

// Type returns the message type MSH-9: message code, trigger event and message structure.
func (m *Message) Type() (code, event, structure string) {
	r := m.msh().Field(9).Rep(0)
	return r.Comp(1), r.Comp(2), r.Comp(3)
}

// Version returns the version ID, MSH-12.1 (such as "2.5").
func (m *Message) Version() string { return m.msh().Get(12) }

// ProcessingID returns the processing ID, MSH-11.1 ("P", "T" or "D").
func (m *Message) ProcessingID() string { return m.msh().Get(11) }

// msh returns the MSH segment or nil; the accessors of a nil *Segment return empty values.
func (m *Message) msh() *Segment {
	if m == nil {
		return nil
	}
	return m.Segment("MSH")
}

// NumFields returns the number of fields of the segment, the highest field number present.
func (s *Segment) NumFields() int {
	if s == nil {
		return 0
	}
	return len(s.fields)
}

// Field returns field n in HL7 numbering (for MSH, Field(1) is the field separator and Field(2) the encoding characters), nil if absent.
func (s *Segment) Field(n int) Field {
	if s == nil || n < 1 || n > len(s.fields) {
		return nil
	}
	return s.fields[n-1]
}

// Get returns the first sub-component of the first component of the first repetition of field n, "" if absent.
func (s *Segment) Get(n int) string { return s.Field(n).Rep(0).Comp(1) }

// Component returns the first sub-component of component c (1-based) of the first repetition of field n.
func (s *Segment) Component(n, c int) string { return s.Field(n).Rep(0).Comp(c) }

// Set replaces field n (HL7 numbering, n >= 1), growing the segment as needed; n < 1 is ignored.
//
// For MSH, fields 1 and 2 are stored but Encode always writes them from Message.Delims.
func (s *Segment) Set(n int, f Field) {
	if n < 1 {
		return
	}
	for len(s.fields) < n {
		s.fields = append(s.fields, nil)
	}
	s.fields[n-1] = f
}

// Rep returns repetition i (0-based), nil if absent.
func (f Field) Rep(i int) Repetition {
	if i < 0 || i >= len(f) {
		return nil
	}
	return f[i]
}

// Clone returns a deep copy of f sharing no slices with it.
func (f Field) Clone() Field {
	if f == nil {
		return nil
	}
	out := make(Field, len(f))
	for i, r := range f {
		if r == nil {
			continue
		}
		out[i] = make(Repetition, len(r))
		for j, c := range r {
			if c != nil {
				out[i][j] = append(Component(nil), c...)
			}
		}
	}
	return out
}

// Comp returns the first sub-component of component c (1-based), "" if absent.
func (r Repetition) Comp(c int) string { return r.Sub(c, 1) }

// Sub returns sub-component s of component c, both 1-based, "" if absent.
func (r Repetition) Sub(c, s int) string {
	if c < 1 || c > len(r) {
		return ""
	}
	comp := r[c-1]
	if s < 1 || s > len(comp) {
		return ""
	}
	return comp[s-1]
}

// Text returns a field holding the single value v (nil when v is empty).
func Text(v string) Field {
	if v == "" {
		return nil
	}
	return Field{Repetition{Component{v}}}
}

// Comps returns a field with one repetition made of the components v (empty components are nil, trailing ones dropped).
func Comps(v ...string) Field {
	n := len(v)
	for n > 0 && v[n-1] == "" {
		n--
	}
	if n == 0 {
		return nil
	}
	r := make(Repetition, n)
	for i, c := range v[:n] {
		if c != "" {
			r[i] = Component{c}
		}
	}
	return Field{r}
}
