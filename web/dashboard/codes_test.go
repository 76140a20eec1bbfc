package dashboard_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/web/dashboard"
)

// TestNoRawCodes crawls every screen of the dashboard with demo data, as
// a secretary and as an administrator, and checks that the visible text
// shows no status, reason, event, role or audit code, and no English HL7
// error text: people read French labels (issue #20, item 7; the codes stay
// in the API, in attributes, and in the technical details for admins).
// Before, the timeline showed several_addresses and user_paper, the
// badges RCT and ADDED, the directory (PER), the journal its action codes.
func TestNoRawCodes(t *testing.T) {
	t.Parallel()
	b, cardio, _ := setupReview(t)
	alice := b.Login(t, "alice", auth.RoleSecretary)
	b.ReviewReport(t, "codes-3", "PNEUMO")
	// Actions that leave events in the timelines.
	martin, _ := b.Delivery(t, cardio, "MARTIN", "mssante")
	status, _ := alice.Post(t, fmt.Sprintf("/deliveries/%d/paper", martin), nil)
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = alice.Post(t, fmt.Sprintf("/reports/%d/recipients", cardio), url.Values{"family": {"LEROUX"}, "given": {"Paul"},
		"address": {"paul.leroux@medecin-demo.mssante.fr"}})
	require.Equal(t, http.StatusSeeOther, status)
	// Refused messages in the quarantine, of each kind.
	for _, msg := range []string{"not hl7", strings.Replace(webtest.SampleORU(t), "ORU^R01", "ORU^R99", 1),
		strings.Replace(webtest.SampleORU(t), "|2.5|", "|2.1|", 1)} {
		code, _, _ := b.Call(t, "POST", "/api/v1/hl7", msg)
		require.Equal(t, http.StatusOK, code)
	}
	status, _ = alice.Post(t, "/paper/batches", nil)
	require.Equal(t, http.StatusSeeOther, status)

	codes := map[string]string{}
	for table, labels := range dashboard.CodeTables {
		for c := range labels {
			codes[c] = table
		}
	}
	var english []string
	for c := range 300 {
		if text := hl7.ErrorCodeText(c); text != "" {
			english = append(english, text)
		}
	}
	root := b.Login(t, "root", auth.RoleAdmin)
	for who, c := range map[string]*webtest.Browser{"secretary": alice, "admin": root} {
		pages := crawl(t, c, []string{"/worklists/review", "/worklists/failed", "/worklists/paper", "/worklists/scheduled",
			"/worklists/all", "/stats", "/campaign", "/directory?q=martin", "/directory?q=clinique", "/rules",
			"/rules/history", "/quarantine", "/paper/batches", "/audit", "/admin/users"})
		require.Greater(t, len(pages), 15, who)
		for path, text := range pages {
			for _, w := range wordsIn(text) {
				if table, ok := codes[w]; ok {
					t.Errorf("%s sees the %s code %q on %s: …%s…", who, table, w, path, around(text, w))
				}
			}
			for _, e := range english {
				if strings.Contains(text, e) {
					t.Errorf("%s sees the English HL7 text %q on %s", who, e, path)
				}
			}
		}
	}
}

// crawl visits start and every dashboard page they link to (GET, same
// site, but files and River's UI), at most 200, and returns each page's
// visible text by path.
func crawl(t *testing.T, c *webtest.Browser, start []string) map[string]string {
	t.Helper()
	pages := map[string]string{}
	queue := slices.Clone(start)
	for len(queue) > 0 && len(pages) < 200 {
		path := queue[0]
		queue = queue[1:]
		if _, seen := pages[path]; seen {
			continue
		}
		status, body := c.Get(t, path)
		if status != http.StatusOK {
			pages[path] = ""
			continue
		}
		pages[path] = visibleText(body)
		for _, m := range hrefs.FindAllStringSubmatch(body, -1) {
			next := html.UnescapeString(m[1])
			if i := strings.IndexByte(next, '#'); i >= 0 {
				next = next[:i]
			}
			if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || skipped(next) {
				continue
			}
			queue = append(queue, next)
		}
	}
	return pages
}

var hrefs = regexp.MustCompile(`<a [^>]*href="([^"]*)"`)

// skipped are the links that are not pages: files, River's UI, logging out.
func skipped(path string) bool {
	for _, s := range []string{".pdf", ".csv", "/static/", "/admin/jobs", "/admin/debug", "/logout", "/campaign/letters", "/raw"} {
		if strings.Contains(path, s) {
			return true
		}
	}
	return false
}

var (
	// hidden are the elements whose text is not prose for people: scripts,
	// styles, code a CME writes (the rules' YAML), the technical details.
	hidden = regexp.MustCompile(`(?is)<(script|style|textarea|code|pre)\b.*?</(script|style|textarea|code|pre)>|<details class="technical">.*?</details>`)
	tags   = regexp.MustCompile(`(?s)<[^>]*>`)
	word   = regexp.MustCompile(`[\p{L}\p{N}_-]+`)
)

// visibleText is the text of an HTML page a person reads.
func visibleText(page string) string {
	return html.UnescapeString(tags.ReplaceAllString(hidden.ReplaceAllString(page, " "), " "))
}

// wordsIn returns the words of text: letters, digits, _ and -.
func wordsIn(text string) []string { return word.FindAllString(text, -1) }

// around is text around the first w, for the failure message.
func around(text, w string) string {
	i := strings.Index(text, w)
	return strings.Join(strings.Fields(text[max(0, i-60):min(len(text), i+len(w)+60)]), " ")
}
