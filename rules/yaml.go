package rules

import (
	"bytes"
	"cmp"
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

// MaxSize bounds the YAML source of a rule set, in bytes.
const MaxSize = 1 << 20

// maxRuleNodes bounds the YAML nodes visited while checking a rule set,
// aliases followed: a rule set is small, an alias bomb is not.
const maxRuleNodes = 100_000

// yamlRuleSet is the YAML shape of a RuleSet, comment first.
type yamlRuleSet struct {
	Comment string `yaml:"comment,omitempty"`
	Rules   []Rule `yaml:"rules"`
}

// maxRuleErrors bounds the mistakes Parse lists; the last one says how
// many more there are.
const maxRuleErrors = 50

// Parse reads a rule set from its YAML source and normalises it (see
// RuleSet.Normalise). It is strict: an unknown or repeated key, a value of
// the wrong type, a second YAML document or a source that is not UTF-8 text
// is an error. The error is Errors listing every mistake in the order
// of the source (a YAML syntax error, which stops the reading, is the only
// one), each naming the rule, the field, the line when it can be found and
// the rule's name when the source gives it.
func Parse(data []byte) (Set, error) {
	switch {
	case len(data) > MaxSize:
		return Set{}, Errors{{Msg: fmt.Sprintf("les règles dépassent %d octets", MaxSize)}}
	case !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0:
		return Set{}, Errors{{Msg: "les règles doivent être du texte UTF-8"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Set{}, Errors{yamlError(err, nil)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return Set{}, Errors{{Msg: "aucune règle: le fichier est vide (une liste sous rules: est attendue)"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Set{}, Errors{{Line: root.Line, Msg: "le premier niveau doit être une table avec rules: (et comment:)"}}
	}
	w := schemaWalker{budget: maxRuleNodes, drop: map[*yaml.Node]bool{}}
	if w.check(root, reflect.TypeFor[yamlRuleSet](), nil, 0) == stop {
		return Set{}, withRuleNames(w.errs[len(w.errs)-1:], root) // an alias bomb: nothing else is worth saying
	}
	errs := w.errs
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		errs = append(errs, &Error{Line: extra.Line, Msg: "un seul document YAML (un second commence par ---)"})
	}

	// Decode what can be, each rule on its own: the mistakes of one do not
	// hide those of the others.
	var rs Set
	decode := func(n *yaml.Node, v any, rule int) {
		if err := n.Decode(v); err != nil && !w.faulty(rule) {
			errs = append(errs, yamlError(err, root))
		}
	}
	clean := w.pruned(root)
	if n := mappingValue(clean, "comment"); n != nil {
		decode(n, &rs.Comment, 0)
	}
	if seq := mappingValue(clean, "rules"); seq != nil && seq.Kind == yaml.SequenceNode {
		rs.Rules = make([]Rule, len(seq.Content))
		for i, n := range seq.Content {
			decode(n, &rs.Rules[i], i+1)
		}
	}
	for i := range rs.Rules {
		m := &rs.Rules[i].Match
		for _, list := range []*[]string{&m.DocumentCodes, &m.Services, &m.Authors, &m.RecipientKinds, &m.Confidentiality} {
			if len(*list) == 0 {
				*list = nil
			}
		}
	}
	for _, e := range rs.normalise() {
		if !w.explains(e) {
			e.Line = lineOf(root, e.Rule, e.Field)
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return rs, nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(errs) > maxRuleErrors {
		more := len(errs) - maxRuleErrors + 1
		errs = append(errs[:maxRuleErrors-1], &Error{Msg: fmt.Sprintf("%d autres erreurs, non listées", more)})
	}
	return Set{}, withRuleNames(errs, root)
}

// Marshal writes rs as YAML that Parse reads back to the same
// rules and comment (the version and its author are not part of it). The
// action of a no-DSN or unread deadline that is off is left out.
func Marshal(rs Set) ([]byte, error) {
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
// into, to name the rule, field and line of each mistake; it notes the keys
// of the pairs that cannot be decoded, so that the rest can be (pruned).
type schemaWalker struct {
	budget int
	errs   Errors
	drop   map[*yaml.Node]bool
}

// verdict is what the walker found of a node.
type verdict int

const (
	sound  verdict = iota // decodable, once its faulty pairs are dropped
	faulty                // not decodable: the pair or list holding it is dropped
	stop                  // too many nodes: the walk stops there
)

// check checks n against t, adding its mistakes to w.errs; path is the
// field within the rule (or the top level when rule is 0).
func (w *schemaWalker) check(n *yaml.Node, t reflect.Type, path []string, rule int) verdict {
	bad := func(line int, path []string, format string, args ...any) verdict {
		w.errs = append(w.errs, &Error{Rule: rule, Field: strings.Join(path, "."), Line: line, Msg: fmt.Sprintf(format, args...)})
		return faulty
	}
	if w.budget--; w.budget < 0 {
		bad(n.Line, path, "trop de nœuds YAML (des alias ?)")
		return stop
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return w.check(n.Alias, t, path, rule)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return sound
	}
	switch t.Kind() {
	case reflect.Struct:
		fields, names := yamlFields(t)
		if n.Kind != yaml.MappingNode {
			return bad(n.Line, path, "une table de %s est attendue, pas %s", strings.Join(names, ", "), kindName(n))
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var found verdict
			switch ft, known := fields[k.Value]; {
			case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
				found = w.checkMerge(v, t, path, rule)
			case k.Kind != yaml.ScalarNode:
				found = bad(k.Line, path, "une clé est l'une de %s, pas %s", strings.Join(names, ", "), kindName(k))
			case !known:
				found = bad(k.Line, append(slices.Clip(path), k.Value), "clé inconnue %q (clés possibles: %s)", k.Value, strings.Join(names, ", "))
			case seen[k.Value] > 0:
				found = bad(k.Line, append(slices.Clip(path), k.Value), "clé %q déjà donnée ligne %d", k.Value, seen[k.Value])
			default:
				seen[k.Value] = k.Line
				found = w.check(v, ft, append(slices.Clip(path), k.Value), rule)
			}
			switch found {
			case stop:
				return stop
			case faulty:
				w.drop[k] = true
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad(n.Line, path, "une liste est attendue, pas %s", kindName(n))
		}
		rules := t.Elem() == reflect.TypeFor[Rule]()
		list := sound
		for i, item := range n.Content {
			itemPath, itemRule := path, rule
			if rules {
				itemPath, itemRule = nil, i+1
			}
			switch w.check(item, t.Elem(), itemPath, itemRule) {
			case stop:
				return stop
			case faulty:
				if rules { // a rule that cannot be read leaves the others in place
					w.drop[item] = true
				} else {
					list = faulty
				}
			}
		}
		return list
	default:
		switch {
		case n.Kind != yaml.ScalarNode:
			return bad(n.Line, path, "une seule valeur est attendue, pas %s", kindName(n))
		case t.Kind() == reflect.Int && n.ShortTag() != "!!int": // yaml would truncate 1.5 to 1
			return bad(n.Line, path, "%q: un nombre entier est attendu", n.Value)
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return bad(n.Line, path, "%s", stripYAMLLine(err))
		}
	}
	return sound
}

// checkMerge checks the value of a merge key (<<): a mapping or a list of mappings.
func (w *schemaWalker) checkMerge(v *yaml.Node, t reflect.Type, path []string, rule int) verdict {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return w.check(v, t, path, rule)
	}
	merged := sound
	for _, m := range v.Content {
		switch w.check(m, t, path, rule) {
		case stop:
			return stop
		case faulty:
			merged = faulty
		}
	}
	return merged
}

// pruned returns a copy of n, aliases resolved, without the pairs the walk
// dropped, and with null for the rules it dropped. It follows only what the
// walk went through, which has no cycle when the walk did not stop.
func (w *schemaWalker) pruned(n *yaml.Node) *yaml.Node {
	n = resolveAlias(n)
	c := *n
	c.Content = make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i < len(n.Content); i++ {
		switch {
		case n.Kind == yaml.MappingNode && i+1 < len(n.Content):
			if !w.drop[n.Content[i]] {
				c.Content = append(c.Content, w.pruned(n.Content[i]), w.pruned(n.Content[i+1]))
			}
			i++
		case w.drop[n.Content[i]]:
			c.Content = append(c.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Content[i].Line})
		default:
			c.Content = append(c.Content, w.pruned(n.Content[i]))
		}
	}
	return &c
}

// faulty reports whether the walker found a mistake in rule (0: the top level).
func (w *schemaWalker) faulty(rule int) bool {
	return slices.ContainsFunc(w.errs, func(s *Error) bool { return s.Rule == rule })
}

// explains reports whether a mistake the walker found explains e, a mistake
// of the decoded rules: a field that could not be read is left empty, and
// what depends on it is wrong for that reason only.
func (w *schemaWalker) explains(e *Error) bool {
	return slices.ContainsFunc(w.errs, func(s *Error) bool {
		return s.Rule == e.Rule && (e.Rule == 0 || s.Field == "" || s.Field == e.Field ||
			strings.HasPrefix(e.Field, s.Field+".") || s.Field == "action.send" && e.Field == "action.delay_hours")
	})
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
		return "une table"
	case yaml.SequenceNode:
		return "une liste"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "un alias"
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

// yamlError turns an error of the yaml package into an *Error, with the
// rule at its line when root is known.
func yamlError(err error, root *yaml.Node) *Error {
	e := &Error{Msg: "syntaxe YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "syntaxe YAML: " + m[2]
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

// withRuleNames sets the name of the rule of each of errs, from the source,
// except for mistakes of the name itself; it returns errs.
func withRuleNames(errs Errors, root *yaml.Node) Errors {
	for _, e := range errs {
		if e.Rule == 0 || e.Field == "name" {
			continue
		}
		if n := mappingValue(ruleNode(root, e.Rule), "name"); n != nil && n.Kind == yaml.ScalarNode {
			e.Name = strings.TrimSpace(n.Value)
		}
	}
	return errs
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

// mappingValue returns the value of key in mapping n, written there or
// merged into it (<<), or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	return lookup(n, key, maxMergeDepth)
}

// maxMergeDepth bounds the merges lookup follows: an anchor may merge itself.
const maxMergeDepth = 8

// lookup is mappingValue, following at most depth merges.
func lookup(n *yaml.Node, key string, depth int) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode || depth < 0 {
		return nil
	}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i], n.Content[i+1]; {
		case k.Kind != yaml.ScalarNode:
		case k.ShortTag() == "!!merge":
			if v = resolveAlias(v); v != nil && v.Kind == yaml.SequenceNode {
				merged = append(merged, v.Content...)
			} else {
				merged = append(merged, v)
			}
		case k.Value == key:
			return resolveAlias(v)
		}
	}
	for _, m := range merged {
		if v := lookup(m, key, depth-1); v != nil {
			return v
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
