package rules

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file changes the YAML text of the rules as the rules screen's
// buttons and form ask, keeping what its authors wrote around: comments,
// quotes, blank lines.

// Simple is a rule as the rules screen's form writes it: one type of
// document and what to do with it.
type Simple struct {
	Name string
	// Code is the LOINC code of the type of document.
	Code string
	// Send is SendAuto, SendReview or SendDelay, DelayHours the delay of SendDelay.
	Send       string
	DelayHours int
	// Patient is PatientSend or PatientNever; Paper PaperDirectory, PaperAlways or PaperNever.
	Patient, Paper string
}

// Editable reports, for each rule of rs read from source, whether Write can
// change it: it decides one type of document (its other conditions are
// kept), and is written plainly in the text (no anchor, alias or merge key
// where Write writes). It also returns how many rules of rs are written in
// source: those after are implicit (the default rule appended), and not
// editable.
func Editable(rs Set, source []byte) (editable []bool, written int) {
	editable = make([]bool, len(rs.Rules))
	_, seq, _ := rulesDoc(source)
	if seq == nil {
		return editable, len(rs.Rules)
	}
	written = min(len(rs.Rules), len(seq.Content))
	for i, rule := range rs.Rules[:written] {
		editable[i] = len(rule.Match.DocumentCodes) == 1 && plainRule(seq.Content[i])
	}
	return editable, written
}

// rulesDoc reads the YAML text of rules into a tree, and returns it with
// its list of rules (nil when there is none).
func rulesDoc(source []byte) (doc *yaml.Node, seq *yaml.Node, err error) {
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(source, doc); err != nil {
		return nil, nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return doc, nil, nil
	}
	if v := yamlValue(doc.Content[0], "rules"); v != nil && v.Kind == yaml.SequenceNode {
		seq = v
	}
	return doc, seq, nil
}

// yamlValue returns the value written for key in mapping n, or nil.
func yamlValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// ruleIndex returns the position of the rule called name in the list seq, or -1.
func ruleIndex(seq *yaml.Node, name string) int {
	return slices.IndexFunc(seq.Content, func(n *yaml.Node) bool {
		v := yamlValue(n, "name")
		return v != nil && strings.TrimSpace(v.Value) == strings.TrimSpace(name)
	})
}

// plainRule reports whether the rule n is written plainly enough for the
// form to change it: no anchor, alias or merge key where it writes.
func plainRule(n *yaml.Node) bool {
	plain := func(n *yaml.Node) bool {
		return n.Kind == yaml.MappingNode && n.Anchor == "" &&
			!slices.ContainsFunc(n.Content, func(k *yaml.Node) bool { return k.ShortTag() == "!!merge" })
	}
	if !plain(n) {
		return false
	}
	for _, key := range []string{"match", "action"} {
		if v := yamlValue(n, key); v != nil && !(v.ShortTag() == "!!null" || plain(v)) {
			return false
		}
	}
	return true
}

// Move swaps the rule called name with its neighbour delta (-1 or 1)
// in the YAML source, keeping the comments; at either end it changes nothing.
func Move(source []byte, name string, delta int) ([]byte, error) {
	doc, seq, err := rulesDoc(source)
	switch {
	case err != nil:
		return nil, err
	case seq == nil:
		return nil, errors.New("pas de liste de règles sous « rules »")
	}
	from := ruleIndex(seq, name)
	if from < 0 {
		return nil, fmt.Errorf("aucune règle ne s'appelle « %s »", name)
	}
	to := from + delta
	if to < 0 || to >= len(seq.Content) {
		return source, nil
	}
	seq.Content[from], seq.Content[to] = seq.Content[to], seq.Content[from]
	return encodeLike(doc, source, "")
}

// Write writes the rule f into the YAML source of the rules rs: in place of
// the rule called old, keeping what f does not set, or, old empty, as a new
// rule before the first rule that matches everything (else last). It
// returns the new text and the line where the rule is. The caller checks f
// first (a known name, a valid code and values).
func Write(source []byte, old string, f Simple, rs Set) ([]byte, int, error) {
	doc, seq, err := rulesDoc(source)
	if err != nil || seq == nil || len(rs.Rules) < len(seq.Content) {
		return nil, 0, fmt.Errorf("write rule: the rules' text does not parse as the rules (%w)", err)
	}
	var rule *yaml.Node
	added := ""
	if old == "" {
		rule, added = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, f.Name
		at := slices.IndexFunc(rs.Rules[:len(seq.Content)], func(r Rule) bool { return r.Match.Empty() })
		if at < 0 {
			at = len(seq.Content)
		}
		seq.Content = slices.Insert(seq.Content, at, rule)
	} else if i := ruleIndex(seq, old); i >= 0 && plainRule(seq.Content[i]) {
		rule = seq.Content[i]
	} else {
		return nil, 0, fmt.Errorf("write rule: no plain rule %q in the text", old)
	}
	setValue(rule, "name", "", yamlScalar("!!str", f.Name))
	match := mappingOf(rule, "match", "name")
	setValue(match, "document_codes", "", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle,
		Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: f.Code}}})
	action := mappingOf(rule, "action", "match")
	setValue(action, "send", "", yamlScalar("!!str", f.Send))
	if f.Send == SendDelay {
		setValue(action, "delay_hours", "send", yamlScalar("!!int", strconv.Itoa(f.DelayHours)))
	} else {
		deleteValue(action, "delay_hours")
	}
	setValue(action, "patient", "delay_hours", yamlScalar("!!str", f.Patient))
	setValue(action, "paper", "patient", yamlScalar("!!str", f.Paper))
	out, err := encodeLike(doc, source, added)
	if err != nil {
		return nil, 0, err
	}
	_, seq, err = rulesDoc(out)
	if err != nil || seq == nil || ruleIndex(seq, f.Name) < 0 {
		return nil, 0, fmt.Errorf("write rule: the rule %q is not in the text written (%w)", f.Name, err)
	}
	return out, seq.Content[ruleIndex(seq, f.Name)].Line, nil
}

// yamlScalar is a scalar of the tag (!!str, !!int).
func yamlScalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// setValue sets the value of key in mapping m: in place when it is written,
// else after the key after when there is one, else last.
func setValue(m *yaml.Node, key, after string, value *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			value.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = value
			return
		}
	}
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == after {
			at = i + 2
		}
	}
	m.Content = slices.Insert(m.Content, at, yamlScalar("!!str", key), value)
}

// deleteValue removes key and its value from mapping m.
func deleteValue(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = slices.Delete(m.Content, i, i+2)
			return
		}
	}
}

// mappingOf returns the mapping under key in the rule n, which it writes
// (after the key after) when there is none.
func mappingOf(n *yaml.Node, key, after string) *yaml.Node {
	if v := yamlValue(n, key); v != nil && v.Kind == yaml.MappingNode {
		return v
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	setValue(n, key, after, m)
	return m
}

// encodeLike writes doc, the tree of source changed, as source is written:
// indented by two spaces, and with the blank lines of source before each
// line both texts have once (the yaml package drops or adds some), and one
// before the rule added (when not empty) if the rules of source stand apart.
func encodeLike(doc *yaml.Node, source []byte, added string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write the rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write the rules: %w", err)
	}
	plain := buf.Bytes()

	src := strings.Split(string(source), "\n")
	blanks, srcCount := map[string]int{}, map[string]int{}
	run := 0
	for _, l := range src {
		if strings.TrimSpace(l) == "" {
			run++
			continue
		}
		if srcCount[l]++; run > 0 {
			blanks[l] = run
		}
		run = 0
	}
	out := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	outCount := map[string]int{}
	for _, l := range out {
		outCount[l]++
	}
	addedLine := ""
	if _, seq, _ := rulesDoc(plain); added != "" && seq != nil && rulesApart(source) {
		if i := ruleIndex(seq, added); i >= 0 && outCount[out[seq.Content[i].Line-1]] == 1 {
			addedLine = out[seq.Content[i].Line-1]
		}
	}
	var b strings.Builder
	run = 0 // the blank lines of the output before l
	for _, l := range out {
		if strings.TrimSpace(l) == "" {
			run++
			continue
		}
		switch {
		case l == addedLine:
			run = max(run, 1)
		case srcCount[l] == 1 && outCount[l] == 1:
			run = blanks[l]
		}
		b.WriteString(strings.Repeat("\n", run) + l + "\n")
		run = 0
	}
	spaced := []byte(b.String())
	// Within a block scalar a blank line is part of the value: keep the
	// text plain rather than change what it says.
	var a, c any
	same := yaml.Unmarshal(plain, &a) == nil && yaml.Unmarshal(spaced, &c) == nil && reflect.DeepEqual(a, c)
	if !same {
		return plain, nil
	}
	return spaced, nil
}

// rulesApart reports whether the YAML text of rules sets its rules apart
// with blank lines: a blank line above a rule, or above the comment that
// heads it.
func rulesApart(source []byte) bool {
	_, seq, err := rulesDoc(source)
	if err != nil || seq == nil {
		return false
	}
	lines := strings.Split(string(source), "\n")
	for _, rule := range seq.Content[min(1, len(seq.Content)):] {
		above := rule.Line - 2 // the line above the rule, from 0
		for above >= 0 && strings.HasPrefix(strings.TrimSpace(lines[above]), "#") {
			above--
		}
		if above >= 0 && strings.TrimSpace(lines[above]) == "" {
			return true
		}
	}
	return false
}
