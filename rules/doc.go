// Package rules holds the dispatch rules of the medical commission (CME):
// their types (Set, Rule, Match, Action), their YAML text read with
// line-accurate French errors (Parse) and written back (Marshal), the
// choice of the rule that decides a delivery (Set.Decide), and the edits
// the rules screen makes to the YAML text while keeping its comments
// (Write, Move, Editable). It has no database: the versions in force are
// stored by package dispatch, which applies them.
package rules
