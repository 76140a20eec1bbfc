// Package layering holds the test that keeps the packages in their layers:
// the domain speaks neither HTTP, HL7 nor PDF, protocols stay at the edges,
// and the dashboard reads through the read models, never with SQL of its own;
// and no package grows past maxPackageLines. docs/architecture.md draws the
// map these tests enforce.
package layering

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/mssdispatch/mssdispatch"

// packages returns, for each package of the module, its non-test imports
// (direct, or every dependency when deps is true).
func packages(t *testing.T, deps bool) map[string][]string {
	t.Helper()
	field := "Imports"
	if deps {
		field = "Deps"
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .`+field+` " "}}`, module+"/...").Output()
	require.NoError(t, err, "go list")
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkgs[strings.TrimPrefix(fields[0], module+"/")] = fields[1:]
	}
	return pkgs
}

// TestLayers fails when a package imports what its layer must not.
func TestLayers(t *testing.T) {
	imports := packages(t, false)
	// The domain: no screen, no protocol of the edges, no PDF, no read model.
	domain := []string{module + "/web", module + "/web/dashboard", module + "/web/admin", module + "/web/svgchart",
		module + "/hl7", module + "/hl7/mllp", module + "/dispatch/hl7intake", module + "/paper", module + "/readmodel",
		"net/http"}
	forbidden := map[string][]string{
		// The domain: no screen, no protocol of the edges, no PDF, no read
		// model, no mailbox reader (it sees only Acknowledge); it declares
		// its jobs and its workers do them, and people's actions go through
		// its store, not the other way round; the rules in force are given
		// to its planning (dispatch/ruleset reads them).
		"dispatch": append(slices.Clone(domain), module+"/dispatch/mail/ingest", module+"/dispatch/worker",
			module+"/dispatch/desk", module+"/dispatch/ruleset"),
		// The domain's workers, the secretaries' actions, the quarantine,
		// the purge, the rules' versions and dry run: the domain's
		// restrictions.
		"dispatch/worker":     domain,
		"dispatch/desk":       domain,
		"dispatch/quarantine": domain,
		"dispatch/retention":  domain,
		"dispatch/ruleset":    domain,
		// The rules are data and their text: no database, no domain.
		"rules": {"github.com/jackc/pgx/v5", module + "/dispatch", module + "/correspondents"},
		// The read models read; they neither serve pages nor render letters.
		"readmodel": {module + "/web", module + "/web/dashboard", module + "/web/admin", module + "/web/svgchart",
			module + "/paper", module + "/hl7/mllp"},
		// The charts are values drawn as SVG: no HTTP, no database.
		"web/svgchart": {"net/http", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgxpool"},
	}
	for pkg, bad := range forbidden {
		require.Contains(t, imports, pkg)
		for _, imp := range imports[pkg] {
			require.False(t, slices.Contains(bad, imp), "%s imports %s", pkg, imp)
		}
	}
	// MLLP is the HL7 edge's: the intake, the business acknowledgements, and
	// the command that starts the listener and sends the sample.
	edge := []string{"hl7/mllp", "dispatch/hl7intake", "cmd/mssdispatch"}
	for pkg, imps := range imports {
		if slices.Contains(imps, module+"/hl7/mllp") {
			require.Contains(t, edge, pkg, "%s imports hl7/mllp outside the HL7 edge", pkg)
		}
	}
}

// TestNoDatabase fails when a package meant to work on values pulls a
// database driver in, even indirectly.
func TestNoDatabase(t *testing.T) {
	deps := packages(t, true)
	for _, pkg := range []string{"paper", "postal", "rules", "hl7", "cda"} {
		require.Contains(t, deps, pkg)
		for _, d := range deps[pkg] {
			require.False(t, strings.HasPrefix(d, "github.com/jackc/pgx"), "%s depends on %s", pkg, d)
		}
	}
}

// sqlText is the start of an SQL statement in a string literal.
var sqlText = regexp.MustCompile(`(?i)^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s`)

// TestWebIssuesNoSQL fails when a package under web/ (web, its screens in
// web/dashboard and web/admin, the charts…: their non-test files) runs a
// statement: they read through package readmodel and act through the
// domain. Their only use of pgx is the type of River's client for River's UI.
func TestWebIssuesNoSQL(t *testing.T) {
	var files []string
	dirs := map[string]bool{}
	err := filepath.WalkDir("../../web", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata"):
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			files = append(files, path)
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	require.NoError(t, err)
	for _, pkg := range []string{"web", "web/dashboard", "web/admin", "web/svgchart"} {
		require.True(t, dirs[filepath.Join("../..", pkg)], "%s is checked", pkg)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			require.NotContains(t, []string{"github.com/jackc/pgx/v5/pgxpool", "github.com/jackc/pgx/v5/pgconn"}, path,
				"%s imports %s", name, path)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					s, _ := strconv.Unquote(n.Value)
					require.False(t, sqlText.MatchString(s), "%s: SQL in web: %.40q", fset.Position(n.Pos()), s)
				}
			case *ast.CallExpr: // db.Query(ctx, sql, …), not url.Query()
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || len(n.Args) < 2 {
					break
				}
				switch sel.Sel.Name {
				case "Exec", "Query", "QueryRow", "SendBatch", "CopyFrom", "BeginTx":
					t.Errorf("%s: web calls %s", fset.Position(n.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	require.Greater(t, checked, 10, "the files of the packages under web/")
}

// maxPackageLines is the most lines of non-test Go a package may hold
// (issue #21): past it, a package does more than one thing; split it
// (docs/architecture.md says where things go).
const maxPackageLines = 3000

// TestPackageSize fails when a package of the module holds more than
// maxPackageLines lines of non-test Go.
func TestPackageSize(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.Dir}} {{join .GoFiles " "}}`, module+"/...").Output()
	require.NoError(t, err, "go list")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		lines := 0
		for _, name := range fields[1:] {
			b, err := os.ReadFile(filepath.Join(fields[0], name))
			require.NoError(t, err)
			lines += bytes.Count(b, []byte("\n"))
		}
		require.LessOrEqual(t, lines, maxPackageLines, "%s: lines of non-test Go", fields[0])
	}
}
