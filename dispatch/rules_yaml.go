package dispatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// This file reads and writes the CME's rules as YAML, the form their authors
// edit: a top-level `rules:` list of {name, match, action} and an optional
// `comment:`, with the keys of the yaml tags of RuleSet, Rule, Match and
// RuleAction.

// MaxRulesSize bounds the YAML source of a rule set, in bytes.
const MaxRulesSize = 1 << 20

// maxRuleNodes bounds the YAML nodes visited while checking a rule set,
// aliases followed: a rule set is small, an alias bomb is not.
const maxRuleNodes = 100_000

// yamlRuleSet is the YAML shape of a RuleSet, comment first.
type yamlRuleSet struct {
	Comment string `yaml:"comment,omitempty"`
	Rules   []Rule `yaml:"rules"`
}

// ParseRules reads a rule set from its YAML source and normalises it (see
// RuleSet.Normalise). It is strict: an unknown or repeated key, a value of
// the wrong type, a second YAML document or a source that is not UTF-8 text
// is an error. Every error is a *RuleError naming the rule, the field and,
// when it can be found, the line of the source; the message ends with the
// rule's name when it has one.
func ParseRules(data []byte) (RuleSet, error) {
	switch {
	case len(data) > MaxRulesSize:
		return RuleSet{}, &RuleError{Msg: fmt.Sprintf("the rules are larger than %d bytes", MaxRulesSize)}
	case !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0:
		return RuleSet{}, &RuleError{Msg: "the rules must be UTF-8 text"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return RuleSet{}, yamlError(err, nil)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return RuleSet{}, &RuleError{Msg: "no rule: the file is empty (want a list under rules:)"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return RuleSet{}, &RuleError{Line: root.Line, Msg: "the top level must be a mapping with rules: (and comment:)"}
	}
	w := schemaWalker{budget: maxRuleNodes}
	if e := w.check(root, reflect.TypeFor[yamlRuleSet](), nil, 0); e != nil {
		return RuleSet{}, withRuleName(e, root)
	}

	var y yamlRuleSet
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return RuleSet{}, yamlError(err, root)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return RuleSet{}, &RuleError{Line: extra.Line, Msg: "one YAML document only (a second one starts with ---)"}
	}

	rs := RuleSet{Rules: y.Rules, Comment: y.Comment}
	for i := range rs.Rules {
		m := &rs.Rules[i].Match
		for _, list := range []*[]string{&m.DocumentCodes, &m.Services, &m.Authors, &m.RecipientKinds, &m.Confidentiality} {
			if len(*list) == 0 {
				*list = nil
			}
		}
	}
	if err := rs.Normalise(); err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			e := *re
			e.Line = lineOf(root, e.Rule, e.Field)
			return RuleSet{}, withRuleName(&e, root)
		}
		return RuleSet{}, err
	}
	return rs, nil
}

// MarshalRules writes rs as YAML that ParseRules reads back to the same
// rules and comment (the version and its author are not part of it). The
// action of a no-DSN or unread deadline that is off is left out.
func MarshalRules(rs RuleSet) ([]byte, error) {
	y := yamlRuleSet{Comment: rs.Comment, Rules: make([]Rule, len(rs.Rules))}
	for i, r := range rs.Rules {
		a := &r.Action
		if a.NoDSNHours == 0 && a.NoDSNAction == FallbackWorklist {
			a.NoDSNAction = ""
		}
		if a.UnreadHours == 0 && a.UnreadAction == FallbackWorklist {
			a.UnreadAction = ""
		}
		y.Rules[i] = r
	}
	var doc yaml.Node
	if err := doc.Encode(y); err != nil {
		return nil, fmt.Errorf("marshal rules: %w", err)
	}
	flowLists(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("marshal rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal rules: %w", err)
	}
	return buf.Bytes(), nil
}

// flowLists writes the lists of values under n on one line ([a, b]), and
// the values holding line breaks or other control characters in double
// quotes, where YAML escapes them (a block scalar would not keep a \r).
func flowLists(n *yaml.Node) {
	switch {
	case n.Kind == yaml.ScalarNode && strings.ContainsFunc(n.Value, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }):
		n.Style = yaml.DoubleQuotedStyle
	case n.Kind == yaml.SequenceNode && !slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return c.Kind != yaml.ScalarNode }):
		n.Style |= yaml.FlowStyle
	}
	for _, c := range n.Content {
		flowLists(c)
	}
}

// schemaWalker checks a YAML tree against the Go types it will be decoded
// into, to name the rule, field and line of the first mistake.
type schemaWalker struct {
	budget int
}

// check checks n against t; path is the field within the rule (or the top
// level when rule is 0).
func (w *schemaWalker) check(n *yaml.Node, t reflect.Type, path []string, rule int) *RuleError {
	if w.budget--; w.budget < 0 {
		return &RuleError{Rule: rule, Field: strings.Join(path, "."), Line: n.Line, Msg: "too many YAML nodes (aliases?)"}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return w.check(n.Alias, t, path, rule)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	bad := func(line int, path []string, format string, args ...any) *RuleError {
		return &RuleError{Rule: rule, Field: strings.Join(path, "."), Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	switch t.Kind() {
	case reflect.Struct:
		fields, names := yamlFields(t)
		if n.Kind != yaml.MappingNode {
			return bad(n.Line, path, "want a mapping of %s, not %s", strings.Join(names, ", "), kindName(n))
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				if e := w.checkMerge(v, t, path, rule); e != nil {
					return e
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return bad(k.Line, path, "a key must be one of %s, not %s", strings.Join(names, ", "), kindName(k))
			}
			at := append(slices.Clip(path), k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				return bad(k.Line, at, "unknown key %q (want %s)", k.Value, strings.Join(names, ", "))
			}
			if line, dup := seen[k.Value]; dup {
				return bad(k.Line, at, "key %q already given at line %d", k.Value, line)
			}
			seen[k.Value] = k.Line
			if e := w.check(v, ft, at, rule); e != nil {
				return e
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad(n.Line, path, "want a list, not %s", kindName(n))
		}
		for i, item := range n.Content {
			itemPath, itemRule := path, rule
			if t.Elem() == reflect.TypeFor[Rule]() {
				itemPath, itemRule = nil, i+1
			}
			if e := w.check(item, t.Elem(), itemPath, itemRule); e != nil {
				return e
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return bad(n.Line, path, "want a single value, not %s", kindName(n))
		}
		if t.Kind() == reflect.Int && n.ShortTag() != "!!int" { // yaml would truncate 1.5 to 1
			return bad(n.Line, path, "%q: want a whole number", n.Value)
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return bad(n.Line, path, "%s", stripYAMLLine(err))
		}
	}
	return nil
}

// checkMerge checks the value of a merge key (<<): a mapping or a list of mappings.
func (w *schemaWalker) checkMerge(v *yaml.Node, t reflect.Type, path []string, rule int) *RuleError {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return w.check(v, t, path, rule)
	}
	for _, m := range v.Content {
		if e := w.check(m, t, path, rule); e != nil {
			return e
		}
	}
	return nil
}

// yamlFields returns the fields of struct t by YAML key, and the keys in order.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}

// kindName describes what a YAML node is, for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// yamlLine finds the line and message in an error of the yaml package.
var yamlLine = regexp.MustCompile(`line (\d+): ([^\n]*)`)

// stripYAMLLine returns the message of an error of the yaml package without
// its "yaml:" prefix and line.
func stripYAMLLine(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// yamlError turns an error of the yaml package into a *RuleError, with the
// rule at its line when root is known.
func yamlError(err error, root *yaml.Node) *RuleError {
	e := &RuleError{Msg: "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "YAML: " + m[2]
	}
	if root != nil && e.Line > 0 {
		if rules := mappingValue(root, "rules"); rules != nil && rules.Kind == yaml.SequenceNode {
			for i, r := range rules.Content {
				if r.Line <= e.Line {
					e.Rule = i + 1
				}
			}
		}
	}
	return e
}

// withRuleName adds the name of rule e.Rule, from the source, to e's message.
func withRuleName(e *RuleError, root *yaml.Node) *RuleError {
	if e.Rule == 0 || e.Field == "name" {
		return e
	}
	if n := mappingValue(ruleNode(root, e.Rule), "name"); n != nil && n.Kind == yaml.ScalarNode {
		if name := strings.TrimSpace(n.Value); name != "" {
			e.Msg += fmt.Sprintf(" (rule %q)", name)
		}
	}
	return e
}

// lineOf returns the line of field (e.g. action.delay_hours) in rule (1-based)
// of the source, the line of the rule when the field is not written, 0 when
// the rule is not in the source.
func lineOf(root *yaml.Node, rule int, field string) int {
	if rule == 0 {
		if rules := mappingValue(root, "rules"); rules != nil {
			return rules.Line
		}
		return 0
	}
	n := ruleNode(root, rule)
	if n == nil {
		return 0
	}
	line := n.Line
	for key := range strings.SplitSeq(field, ".") {
		if n = mappingValue(n, key); n == nil {
			break
		}
		line = n.Line
	}
	return line
}

// ruleNode returns the node of rule (1-based) in the source, or nil.
func ruleNode(root *yaml.Node, rule int) *yaml.Node {
	rules := mappingValue(root, "rules")
	if rules == nil || rules.Kind != yaml.SequenceNode || rule < 1 || rule > len(rules.Content) {
		return nil
	}
	return resolveAlias(rules.Content[rule-1])
}

// mappingValue returns the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() != "!!merge" {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}
