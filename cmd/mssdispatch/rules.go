package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/rules"
)

// rulesArgs are the arguments of a rules command.
type rulesArgs struct {
	file    string
	version int // -1 when not given
	comment string
	reports int
}

// parseRulesArgs reads the arguments after `rules SUB`: FILE for import and
// dry-run, and the flags of each (--flag VALUE or --flag=VALUE).
func parseRulesArgs(sub string, args []string) (rulesArgs, error) {
	a := rulesArgs{version: -1}
	allowed := map[string][]string{"export": {"--version"}, "import": {"--comment"}, "dry-run": {"--reports"}}[sub]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			if sub == "export" || a.file != "" {
				return rulesArgs{}, configErrorf("rules %s: unexpected argument %q", sub, arg)
			}
			a.file = arg
			continue
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if !strings.HasPrefix(name, "--") || !slices.Contains(allowed, name) {
			return rulesArgs{}, configErrorf("rules %s: unknown flag %q", sub, name)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return rulesArgs{}, configErrorf("rules %s: %s needs a value", sub, name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--comment":
			a.comment = value
		case "--version", "--reports":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || (name == "--reports" && (n == 0 || n > ruleset.MaxDryRunReports)) {
				want := "a version number (0 is the built-in default)"
				if name == "--reports" {
					want = fmt.Sprintf("1 to %d", ruleset.MaxDryRunReports)
				}
				return rulesArgs{}, configErrorf("rules %s: %s %q: want %s", sub, name, value, want)
			}
			if name == "--version" {
				a.version = n
			} else {
				a.reports = n
			}
		}
	}
	if sub != "export" && a.file == "" {
		return rulesArgs{}, configErrorf("rules %s: FILE missing", sub)
	}
	return a, nil
}

// rulesCommand runs `rules export|import|dry-run` (sub) with the arguments
// after it: the rules go to stdout, the outcome of an import too.
func rulesCommand(ctx context.Context, e env, sub string, args []string, logger *slog.Logger, stdout io.Writer) error {
	a, err := parseRulesArgs(sub, args)
	if err != nil {
		return err
	}
	var source []byte
	if a.file != "" {
		if source, err = readRulesFile(a.file); err != nil {
			return err
		}
	}
	pool, err := openMigratedPool(ctx, e.get("DATABASE_URL"), 0, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The directory's resolver serves the dry runs.
	store := ruleset.New(pool, correspondents.NewResolver(correspondents.NewStore(pool)), logger)
	switch sub {
	case "export":
		return exportRules(ctx, store, a.version, stdout)
	case "import":
		rs, err := store.Set(ctx, source, cliActor(), a.comment)
		if err != nil {
			return fmt.Errorf("%s: %w", a.file, err)
		}
		_, err = fmt.Fprintf(stdout, "rules version %d in force: %d rules (%s), by %s\n", rs.Version, len(rs.Rules),
			strings.Join(ruleNames(rs), ", "), rs.CreatedBy)
		return err
	default:
		dr, err := store.DryRun(ctx, source, a.reports)
		if err != nil {
			return fmt.Errorf("%s: %w", a.file, err)
		}
		return printDryRun(stdout, dr)
	}
}

// readRulesFile reads a YAML rules file, refusing one too large to be rules.
func readRulesFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // only read: what was read is checked below
	data, err := io.ReadAll(io.LimitReader(f, rules.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > rules.MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a rules file", name, rules.MaxSize)
	}
	return data, nil
}

// exportRules writes the YAML source of a version (-1: the one in force).
func exportRules(ctx context.Context, store *ruleset.Store, version int, stdout io.Writer) error {
	if version < 0 {
		rs, err := store.InForce(ctx)
		if err != nil {
			return err
		}
		version = rs.Version
	}
	_, source, err := store.Version(ctx, version)
	if errors.Is(err, dispatch.ErrNotFound) {
		return fmt.Errorf("no version %d of the rules", version)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(source)
	return err
}

// cliActor names who changes the rules from the command line.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func ruleNames(rs rules.Set) []string {
	names := make([]string, 0, len(rs.Rules))
	for _, r := range rs.Rules {
		names = append(names, r.Name)
	}
	return names
}

// printDryRun writes the changes of a dry run as a table.
func printDryRun(w io.Writer, dr ruleset.DryRun) error {
	p := newPrinter(w)
	p.printf("%d reports checked against the rules in force (version %d): ", dr.ReportsChecked, dr.CurrentVersion)
	if len(dr.Changed) == 0 {
		p.println("no delivery would change.")
		return p.done()
	}
	p.printf("%d deliveries would change.\n\n", len(dr.Changed))
	if err := p.done(); err != nil {
		return err
	}
	t := newTable(w)
	t.println("REPORT\tDOCUMENT\tRECIPIENT\tCHANNEL\tBEFORE\tAFTER\tCHANGED")
	for _, c := range dr.Changed {
		var channel correspondents.Channel
		switch {
		case c.After != nil:
			channel = c.After.Channel
		case c.Before != nil:
			channel = c.Before.Channel
		}
		t.printf("%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ReportID, c.DocumentID, c.Recipient, channel,
			showOutcome(c.Before), showOutcome(c.After), changedFields(c.Before, c.After))
	}
	return t.done()
}

// showOutcome is a planned delivery in a table cell: status [rule].
func showOutcome(o *ruleset.Outcome) string {
	if o == nil {
		return "-"
	}
	return fmt.Sprintf("%s [%s]", o.Status, o.Rule)
}

// changedFields says what differs between two outcomes of a delivery.
func changedFields(before, after *ruleset.Outcome) string {
	switch {
	case before == nil:
		return "new delivery"
	case after == nil:
		return "no delivery"
	}
	var out []string
	for _, f := range []struct {
		name string
		diff bool
	}{
		{"status", before.Status != after.Status},
		{"delay", before.DelayHours != after.DelayHours},
		{"address " + after.Address, before.Address != after.Address},
		{"reason " + string(after.Reason), before.Reason != after.Reason},
		{"rule", before.Rule != after.Rule},
		{"policy", before.Policy != after.Policy},
	} {
		if f.diff {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, ", ")
}
