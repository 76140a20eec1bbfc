package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/web/svgchart"
)

// This file holds the statistics (the Hop'En dematerialisation rate, the
// delays, the failures) and the adoption campaign: the correspondents still
// served on paper, as a table, a CSV file and printable invitation letters.

// Views is what the dashboard's screens and the REST API read (a
// *readmodel.Reader): the worklists and search, a report's page, the
// statistics and the campaign, a report as the DPI sees it, the types of
// document for the rules screen.
type Views interface {
	Deliveries(ctx context.Context, viewer string, f readmodel.DeliveryFilter) (readmodel.DeliveryPage, error)
	WorklistCounts(ctx context.Context, services []string) (map[string]int64, error)
	ReportDetail(ctx context.Context, viewer string, id int64) (readmodel.ReportDetail, error)
	ReportService(ctx context.Context, reportID int64) (string, error)
	DeliveryReport(ctx context.Context, deliveryID int64) (int64, error)
	DocumentPDF(ctx context.Context, viewer string, reportID int64) ([]byte, error)
	Stats(ctx context.Context, f readmodel.StatsFilter) (readmodel.Stats, error)
	Campaign(ctx context.Context, f readmodel.CampaignFilter) ([]readmodel.CampaignEntry, error)
	ExportCampaign(ctx context.Context, actor, format string, f readmodel.CampaignFilter) ([]readmodel.CampaignEntry, error)
	Report(ctx context.Context, viewer string, id int64) (readmodel.ReportView, error)
	ReportByDocumentID(ctx context.Context, viewer, documentID string) (readmodel.ReportView, error)
	DocumentTypes(ctx context.Context) ([]readmodel.DocumentType, error)
}

// statsRoutes mounts the statistics and the adoption campaign.
func (u *UI) statsRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(auth.Require(auth.PermView))
		r.Get("/stats", u.getStats)
		r.Get("/campaign", u.getCampaign)
		r.Get("/campaign.csv", u.getCampaignCSV)
		r.Get("/campaign/letters", u.getCampaignLetters)
	})
}

// statsPeriod is a period of whole months, as the forms give it.
type statsPeriod struct {
	// From and To are the first and last months, YYYY-MM, as typed.
	From, To string
	// Start and End bound the period, End excluded (the month after To).
	Start, End time.Time
	// Label says it in French ("de janvier 2025 à décembre 2025").
	Label string
}

// statsMonths is how many months the period covers by default.
const statsMonths = 12

// parseStatsPeriod reads from=YYYY-MM and to=YYYY-MM (both included);
// either missing makes a 12-month period with the other, both missing the
// 12 months up to now's.
func parseStatsPeriod(q url.Values, now time.Time) (statsPeriod, error) {
	month := func(name string) (time.Time, bool, error) {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return time.Time{}, false, nil
		}
		t, err := time.ParseInLocation("2006-01", v, paris)
		if err != nil || t.Year() < 2000 || t.Year() > 2100 {
			return time.Time{}, false, fmt.Errorf("mois %q invalide (AAAA-MM)", v)
		}
		return t, true, nil
	}
	from, hasFrom, err := month("from")
	if err != nil {
		return statsPeriod{}, err
	}
	to, hasTo, err := month("to")
	if err != nil {
		return statsPeriod{}, err
	}
	n := now.In(paris)
	switch {
	case !hasFrom && !hasTo:
		to = time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, paris)
		from = to.AddDate(0, 1-statsMonths, 0)
	case !hasTo:
		to = from.AddDate(0, statsMonths-1, 0)
	case !hasFrom:
		from = to.AddDate(0, 1-statsMonths, 0)
	}
	if to.Before(from) {
		return statsPeriod{}, errors.New("le dernier mois précède le premier")
	}
	if to.Sub(from) > 10*366*24*time.Hour {
		return statsPeriod{}, errors.New("la période dépasse dix ans")
	}
	p := statsPeriod{From: from.Format("2006-01"), To: to.Format("2006-01"), Start: from, End: to.AddDate(0, 1, 0)}
	if p.From == p.To {
		p.Label = "en " + monthName(p.From)
	} else {
		p.Label = "de " + monthName(p.From) + " à " + monthName(p.To)
	}
	return p, nil
}

var frenchMonths = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
	"septembre", "octobre", "novembre", "décembre"}

var frenchShortMonths = [...]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
	"sept.", "oct.", "nov.", "déc."}

// monthName writes YYYY-MM as "janvier 2025".
func monthName(ym string) string {
	t, err := time.Parse("2006-01", ym)
	if err != nil {
		return ym
	}
	return frenchMonths[t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// monthShort writes YYYY-MM as "janv. 25", for the charts' axes.
func monthShort(ym string) string {
	t, err := time.Parse("2006-01", ym)
	if err != nil {
		return ym
	}
	return fmt.Sprintf("%s %02d", frenchShortMonths[t.Month()-1], t.Year()%100)
}

// frenchDate writes t as "3 mars 2025", in Paris.
func frenchDate(t time.Time) string {
	t = t.In(paris)
	day := strconv.Itoa(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return day + " " + frenchMonths[t.Month()-1] + " " + strconv.Itoa(t.Year())
}

// percent writes a share as "33,3 %".
func percent(v float64) string {
	return svgchart.Number(v*100, 1, "%")
}

// formatDelay writes a delay in French: "moins d'une minute", "45 min",
// "2 h 05", "3 j 4 h".
func formatDelay(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "moins d'une minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	case d < 48*time.Hour:
		m := int(d.Round(time.Minute) / time.Minute)
		return fmt.Sprintf("%d h %02d", m/60, m%60)
	default:
		h := int(d.Round(time.Hour) / time.Hour)
		if h%24 == 0 {
			return fmt.Sprintf("%d j", h/24)
		}
		return fmt.Sprintf("%d j %d h", h/24, h%24)
	}
}

// rateView is a line of a table of rates.
type rateView struct {
	Label  string
	Detail string // e.g. the LOINC code of a document type
	readmodel.Rate
	// Percent is the rate, "—" without equipped recipients.
	Percent string
	Meets   bool
}

func newRateView(label, detail string, r readmodel.Rate) rateView {
	v := rateView{Label: label, Detail: detail, Rate: r, Percent: "—", Meets: r.MeetsTarget()}
	if r.Equipped > 0 {
		v.Percent = percent(r.Value())
	}
	return v
}

// delayView is a line of a table of delays.
type delayView struct {
	Label    string
	Count    int64
	P50, P90 string
}

// channelDelays are the delays of a channel.
type channelDelays struct {
	Channel correspondents.Channel
	// Overall is the whole period; Months month by month.
	Overall delayView
	Months  []delayView
	Chart   template.HTML
}

// failureView is a line of the failure reasons.
type failureView struct {
	Reason  string
	Count   int64
	Example string
}

// statsPage is the statistics screen.
type statsPage struct {
	Period statsPeriod
	// Limited are the services the user is limited to; nil is all.
	Limited    []string
	Target     string
	Overall    rateView
	RateChart  template.HTML
	Months     []rateView
	Services   []rateView
	Documents  []rateView
	Delays     []channelDelays
	Deliveries []readmodel.ChannelCount
	// DeliveriesTotal is the sum of Deliveries.
	DeliveriesTotal int64
	Failures        []failureView
	Error           string
}

func (u *UI) getStats(w http.ResponseWriter, r *http.Request) {
	user := CurrentUser(r)
	p := statsPage{Limited: ServicesOf(user), Target: strconv.FormatFloat(readmodel.DematerialisationTarget*100, 'f', -1, 64) + "\u00a0%"}
	period, err := parseStatsPeriod(r.URL.Query(), time.Now())
	if err != nil {
		p.Period = statsPeriod{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}
		p.Error = "Période invalide: " + err.Error() + "."
		u.Render(w, r, http.StatusBadRequest, "stats", "Statistiques", "stats", p)
		return
	}
	p.Period = period
	st, err := u.cfg.Views.Stats(r.Context(), readmodel.StatsFilter{From: period.Start, To: period.End, Services: ServicesOf(user)})
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Overall = newRateView("Période", "", st.Rate)
	months := make([]string, len(st.Months))
	rates := make([]float64, len(st.Months))
	tips := make([]string, len(st.Months))
	for i, m := range st.Months {
		v := newRateView(monthName(m.Month), m.Month, m.Rate)
		p.Months = append(p.Months, v)
		months[i] = monthShort(m.Month)
		rates[i] = math.NaN()
		if m.Equipped > 0 {
			rates[i] = m.Value() * 100
			tips[i] = fmt.Sprintf("%s : %s (%d sur %d destinataires équipés)", v.Label, v.Percent, m.Served, m.Equipped)
		}
	}
	p.RateChart = svgchart.BarChart{
		ID:    "chart-rate",
		Title: "Taux de dématérialisation par mois, " + period.Label,
		Desc: "Part des destinataires équipés d'une messagerie MSSanté servis par MSSanté, mois par mois, " +
			"avec l'objectif Hop'En de " + p.Target + ". Les chiffres sont dans le tableau qui suit.",
		Categories: months, Series: []svgchart.Series{{Name: "Taux", Values: rates, Titles: tips}},
		Max: 100, Target: readmodel.DematerialisationTarget * 100, TargetLabel: "Objectif " + p.Target,
		Unit: "%",
	}.SVG()
	for _, s := range st.Services {
		p.Services = append(p.Services, newRateView(cmp.Or(s.Service, "(sans service)"), "", s.Rate))
	}
	for _, d := range st.Documents {
		p.Documents = append(p.Documents, newRateView(cmp.Or(d.Title, "(sans titre)"), d.Code, d.Rate))
	}
	p.Delays = delaysByChannel(st, months)
	for _, c := range st.Deliveries {
		p.DeliveriesTotal += c.Count
	}
	p.Deliveries = st.Deliveries
	for _, f := range st.Failures {
		p.Failures = append(p.Failures, failureView{Reason: cmp.Or(f.Reason, "(sans message)"), Count: f.Count, Example: f.Example})
	}
	u.Render(w, r, http.StatusOK, "stats", "Statistiques", "stats", p)
}

// delaysByChannel arranges the delays by channel, each with its chart over
// the period's months (categories, as st.Months).
func delaysByChannel(st readmodel.Stats, categories []string) []channelDelays {
	var out []channelDelays
	index := map[string]int{}
	for i, m := range st.Months {
		index[m.Month] = i
	}
	for _, d := range st.Delays {
		if len(out) == 0 || out[len(out)-1].Channel != d.Channel {
			out = append(out, channelDelays{Channel: d.Channel})
		}
		c := &out[len(out)-1]
		v := delayView{Label: "Période", Count: d.Count, P50: formatDelay(d.P50), P90: formatDelay(d.P90)}
		if d.Month == "" {
			c.Overall = v
			continue
		}
		v.Label = monthName(d.Month)
		c.Months = append(c.Months, v)
	}
	for i := range out {
		c := &out[i]
		var top time.Duration
		for _, d := range st.Delays {
			if d.Channel == c.Channel {
				top = max(top, d.P90)
			}
		}
		unit, scale := svgchart.DurationUnit(top)
		p50, p90 := nanValues(len(categories)), nanValues(len(categories))
		for _, d := range st.Delays {
			if j, ok := index[d.Month]; ok && d.Channel == c.Channel && d.Month != "" {
				p50[j], p90[j] = float64(d.P50)/float64(scale), float64(d.P90)/float64(scale)
			}
		}
		name := Label(channelLabels, c.Channel)
		c.Chart = svgchart.BarChart{
			ID:    "chart-delay-" + string(c.Channel),
			Title: "Délai de la validation à la remise, " + name + ", par mois (" + unit + ")",
			Desc: "Médiane et 90e centile du délai entre la validation du compte rendu et sa remise (" +
				name + "), mois par mois. Les chiffres sont dans le tableau qui suit.",
			Categories: categories,
			Series:     []svgchart.Series{{Name: "Médiane", Values: p50}, {Name: "90e centile", Values: p90}},
			// The axis spans one unit at least: delays under a second stay small.
			Max:      1,
			Unit:     unit,
			Decimals: 1,
		}.SVG()
	}
	return out
}

func nanValues(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// campaignDefaultLimit is the number of correspondents of the campaign's
// page and letters by default; the CSV has up to campaignMaxLimit.
const (
	campaignDefaultLimit = 100
	campaignMaxLimit     = 5000
)

// campaignPage is the adoption campaign's screen.
type campaignPage struct {
	Period  statsPeriod
	Limited []string
	Limit   int
	Entries []campaignLine
	// Letters and Convertible sum the entries'.
	Letters, Convertible int64
	// Query is the filter, for the links to the CSV and the letters
	// (url.Values.Encode: a safe query string).
	Query template.URL
	Error string
}

// campaignLine is a correspondent of the campaign.
type campaignLine struct {
	Rank int
	readmodel.CampaignEntry
	// Address is the postal address, one line per line.
	Address []string
	// KindLabel is "Professionnel" or "Structure".
	KindLabel string
}

// campaignFilter reads the campaign's query: the period and limit (1 to
// campaignMaxLimit, defaulting to def).
func campaignFilter(r *http.Request, def int) (statsPeriod, readmodel.CampaignFilter, error) {
	q := r.URL.Query()
	period, err := parseStatsPeriod(q, time.Now())
	if err != nil {
		return statsPeriod{}, readmodel.CampaignFilter{}, err
	}
	limit := def
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > campaignMaxLimit {
			return statsPeriod{}, readmodel.CampaignFilter{}, fmt.Errorf("nombre de correspondants %q invalide (1 à %d)", v, campaignMaxLimit)
		}
		limit = n
	}
	return period, readmodel.CampaignFilter{From: period.Start, To: period.End, Services: ServicesOf(CurrentUser(r)),
		Limit: limit}, nil
}

// campaignLines numbers the entries for display.
func campaignLines(entries []readmodel.CampaignEntry) []campaignLine {
	out := make([]campaignLine, len(entries))
	for i, e := range entries {
		kind := "Professionnel"
		if e.Kind == dispatch.KindOrganisation {
			kind = "Structure"
		}
		out[i] = campaignLine{Rank: i + 1, CampaignEntry: e, Address: e.PostalAddress.Envelope(), KindLabel: kind}
	}
	return out
}

func (u *UI) getCampaign(w http.ResponseWriter, r *http.Request) {
	p := campaignPage{Limited: ServicesOf(CurrentUser(r))}
	period, f, err := campaignFilter(r, campaignDefaultLimit)
	if err != nil {
		q := r.URL.Query()
		p.Period = statsPeriod{From: q.Get("from"), To: q.Get("to")}
		p.Limit = campaignDefaultLimit
		p.Error = "Recherche impossible: " + err.Error() + "."
		u.Render(w, r, http.StatusBadRequest, "campaign", "Campagne MSSanté", "campaign", p)
		return
	}
	entries, err := u.cfg.Views.Campaign(r.Context(), f)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p.Period, p.Limit, p.Entries = period, f.Limit, campaignLines(entries)
	for _, e := range entries {
		p.Letters += e.Letters
		p.Convertible += e.Convertible
	}
	q := url.Values{"from": {period.From}, "to": {period.To}}
	if f.Limit != campaignDefaultLimit {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	p.Query = template.URL(q.Encode()) // safe: url.Values.Encode escapes every value
	u.Render(w, r, http.StatusOK, "campaign", "Campagne MSSanté", "campaign", p)
}

// campaignCSVHeader is the header of the campaign's CSV file.
var campaignCSVHeader = []string{"Rang", "Nom", "Type", "Identifiant national", "RPPS", "FINESS", "Adresse",
	"Code postal", "Ville", "Courriers papier", "Dont convertibles", "Équipé MSSanté", "Adresse MSSanté (annuaire)",
	"Dernier courrier"}

// getCampaignCSV writes the campaign as a CSV file for a French
// spreadsheet: a UTF-8 byte order mark, ';' between fields, CRLF lines.
func (u *UI) getCampaignCSV(w http.ResponseWriter, r *http.Request) {
	period, f, err := campaignFilter(r, campaignMaxLimit)
	if err != nil {
		http.Error(w, "Recherche impossible: "+err.Error()+".", http.StatusBadRequest)
		return
	}
	entries, err := u.cfg.Views.ExportCampaign(r.Context(), CurrentUser(r).Username, "fichier CSV", f)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	var buf bytes.Buffer
	buf.WriteString("\uFEFF")
	cw := csv.NewWriter(&buf)
	cw.Comma, cw.UseCRLF = ';', true
	_ = cw.Write(campaignCSVHeader)
	for _, e := range campaignLines(entries) {
		equipped := "non"
		if e.Equipped {
			equipped = "oui"
		}
		_ = cw.Write(csvSafe([]string{strconv.Itoa(e.Rank), e.Name, e.KindLabel, e.NationalID, e.RPPS, e.FINESS,
			strings.Join(e.PostalAddress.Lines, ", "), e.PostalAddress.PostalCode, e.PostalAddress.City,
			strconv.FormatInt(e.Letters, 10), strconv.FormatInt(e.Convertible, 10), equipped, e.DirectoryAddress,
			e.LastLetter.In(paris).Format("02/01/2006")}))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		u.ServerError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="campagne-mssante-%s-%s.csv"`, period.From, period.To))
	w.WriteHeader(http.StatusOK)
	_, _ = buf.WriteTo(w)
}

// csvSafe keeps a spreadsheet from reading a field as a formula (a name
// from the DPI starting with "=", "+", "-", "@"): it is prefixed with "'".
func csvSafe(fields []string) []string {
	for i, f := range fields {
		if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
			fields[i] = "'" + f
		}
	}
	return fields
}

// invitationsPage is the printable invitation letters.
type invitationsPage struct {
	Title     string
	Hospital  string
	Addresses []string
	Period    statsPeriod
	Date      string
	Letters   []campaignLine
}

func (u *UI) getCampaignLetters(w http.ResponseWriter, r *http.Request) {
	period, f, err := campaignFilter(r, campaignDefaultLimit)
	if err != nil {
		u.Render(w, r, http.StatusBadRequest, "error", "Recherche impossible", "campaign", err.Error()+".")
		return
	}
	entries, err := u.cfg.Views.ExportCampaign(r.Context(), CurrentUser(r).Username, "lettres d'invitation", f)
	if err != nil {
		u.ServerError(w, r, err)
		return
	}
	p := invitationsPage{Title: "Invitations à adopter MSSanté", Hospital: u.cfg.Hospital,
		Addresses: u.cfg.HospitalAddresses, Period: period, Date: frenchDate(time.Now()), Letters: campaignLines(entries)}
	u.renderBare(w, r, http.StatusOK, "invitations", p)
}

// renderBare writes the template name's "bare" template (a whole document
// of its own, without the dashboard's menu) with data.
func (u *UI) renderBare(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	u.execute(w, r, status, name, "bare", data)
}
