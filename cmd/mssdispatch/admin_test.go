package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestImportArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		src     string
		force   bool
		wantErr string
	}{
		{args: []string{"a.zip"}, src: "a.zip"},
		{args: []string{"a.zip", "--force"}, src: "a.zip", force: true},
		{args: []string{"--force", "https://x/a.zip"}, src: "https://x/a.zip", force: true},
		{args: []string{"--force"}, wantErr: "directory import: FILE or URL missing"},
		{args: []string{"a.zip", "b.zip"}, wantErr: `directory import: one FILE or URL, got "a.zip" and "b.zip"`},
		{args: []string{"a.zip", "-f"}, wantErr: `directory import: unknown flag "-f"`},
	}
	for _, tt := range tests {
		src, force, err := importArgs("directory", tt.args)
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.src, src)
		require.Equal(t, tt.force, force)
	}
}

func TestImportCommand(t *testing.T) {
	t.Parallel()
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": demoDatabase(t)})
	runCode := func(args ...string) (code int, stdout, stderr string) {
		var out, errs bytes.Buffer
		code = run(args, e, &out, &errs)
		return code, out.String(), errs.String()
	}

	// 10,000 rows (the demo's first row under as many addresses) replace the
	// 11 demo entries: more than half removed, so --force is needed.
	raw, err := os.ReadFile("../../testdata/demo/Extraction_Correspondance_MSSante.txt")
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for i := range 10000 {
		b.WriteString(strings.Replace(lines[1], "jean.martin@", fmt.Sprintf("jean.martin.%d@", i), 1) + "\n")
	}
	big := filepath.Join(t.TempDir(), "Extraction_Correspondance_MSSante.txt")
	require.NoError(t, os.WriteFile(big, []byte(b.String()), 0o644))

	code, stdout, stderr := runCode("directory", "import", big)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "would remove 11 of the 11 current entries, more than half")
	require.Contains(t, stderr, "(--force imports it anyway)")

	code, stdout, stderr = runCode("directory", "import", big, "--force")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "\r10000 rows read\n", stderr, "progress every 10,000 rows, then a new line")
	require.Equal(t, "directory imported from "+big+": 10000 rows (0 skipped), 10000 added, 11 removed, 0 changed\n", stdout)

	code, _, stderr = runCode("whitelist", "import", "../../correspondents/testdata/import/whitelist_no_domain.xml")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "whitelist: no Domaine")

	code, _, stderr = runCode("directory", "import", "http://annuaire.example/Extraction.zip")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "http:// source refused, use https://")

	code, _, stderr = runCode("directory", "import", big, "--frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown flag "--frobnicate"`)
}
