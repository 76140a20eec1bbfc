package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/postal"
)

// This file holds the statistics of the dashboard — the dematerialisation
// rate of the Hop'En programme, delays, failure reasons — and the adoption
// campaign: the correspondents still served on paper. The SQL is in
// store_stats.go; every figure is aggregated by PostgreSQL.

// DematerialisationTarget is the Hop'En target of the dematerialisation
// rate: 60 % of the reports to MSSanté-equipped correspondents sent by MSSanté.
const DematerialisationTarget = 0.60

// StatsFilter selects the reports the statistics count, by the time they
// were received from the DPI (the validation of the report).
type StatsFilter struct {
	// From and To bound reports.received_at, To excluded; zero is unbounded.
	From, To time.Time
	// Services restricts to the reports of these services (a secretary
	// limited to hers); nil is every service.
	Services []string
}

// Rate is the dematerialisation rate of a set of report recipients.
//
// The recipients counted are those of kind professional or organisation
// (patients are not correspondents) with at least one delivery that was not
// cancelled nor superseded (a deleted report counts for no one; a replaced
// one counts in its replacement). A recipient is MSSanté-equipped when it had
// an MSSanté delivery (whatever became of it: failed, or cancelled for a
// letter by a secretary), or a paper delivery while the national directory
// lists a mailbox for its national id (for an organisation without one, its
// FINESS): it has an address but got paper, by preference or by choice. It
// is served when one of its MSSanté deliveries was sent, delivered or read.
// The directory is read as it is now, not as it was when the report left.
type Rate struct {
	// Recipients counts the recipients, equipped or not.
	Recipients int64
	// Equipped is the denominator: the MSSanté-equipped recipients.
	Equipped int64
	// Served is the numerator: the equipped recipients served by MSSanté.
	Served int64
}

// Value is Served / Equipped, 0 when no recipient was equipped.
func (r Rate) Value() float64 {
	if r.Equipped == 0 {
		return 0
	}
	return float64(r.Served) / float64(r.Equipped)
}

// MeetsTarget reports whether the rate reaches DematerialisationTarget.
func (r Rate) MeetsTarget() bool { return r.Equipped > 0 && r.Value() >= DematerialisationTarget }

// MonthRate is the rate of the reports received in a month.
type MonthRate struct {
	// Month is YYYY-MM, in Zone.
	Month string
	Rate
}

// ServiceRate is the rate of the reports of a service.
type ServiceRate struct {
	Service string
	Rate
}

// DocumentRate is the rate of the reports of a document type.
type DocumentRate struct {
	// Code is the LOINC code; Title the most frequent title it came with.
	Code, Title string
	Rate
}

// ChannelCount is the number of deliveries of a channel in a status.
type ChannelCount struct {
	Channel correspondents.Channel
	Status  dispatch.Status
	Count   int64
}

// Delay is the distribution of the time from a report's validation (its
// reception from the DPI) to its delivery: for an email, the delivery
// notification (DSN), else its acceptance by the submission server when no
// DSN came; for a letter, the time a secretary marked it posted.
type Delay struct {
	// Month is YYYY-MM in Zone, empty for the whole period.
	Month   string
	Channel correspondents.Channel
	// Count is the number of deliveries measured.
	Count int64
	// P50 and P90 are the median and the 90th percentile (interpolated).
	P50, P90 time.Duration
}

// FailureReason is a cause of failed deliveries.
type FailureReason struct {
	// Reason is normalised from the deliveries' last error: its SMTP enhanced
	// status code when it holds one (e.g. "5.1.1"), else its SMTP reply code
	// (e.g. "550"), else its first four words; empty when no error was kept.
	Reason string
	// Count is the number of failed deliveries.
	Count int64
	// Example is one of the errors, as recorded.
	Example string
}

// Stats are the statistics of a period.
type Stats struct {
	// Rate is the dematerialisation rate of the whole period.
	Rate Rate
	// Months are the monthly rates, oldest first; with a bounded filter,
	// every month of the period is there, months without reports as zeros.
	Months []MonthRate
	// Services are the rates by service, by service name.
	Services []ServiceRate
	// Documents are the rates by document type, most recipients first.
	Documents []DocumentRate
	// Deliveries counts every delivery of the period's reports (patients
	// included) by channel and status.
	Deliveries []ChannelCount
	// Delays are the delays by channel, for the whole period (Month empty)
	// then month by month, oldest first.
	Delays []Delay
	// Failures are the ten most frequent reasons of the deliveries now
	// failed, most frequent first.
	Failures []FailureReason
}

// Stats returns the statistics of the reports f selects.
func (s *Reader) Stats(ctx context.Context, f StatsFilter) (Stats, error) {
	var st Stats
	if err := checkPeriod(f.From, f.To); err != nil {
		return Stats{}, err
	}
	var err error
	if st.Rate, st.Months, st.Services, st.Documents, err = dematerialisationRates(ctx, s.pool, f); err != nil {
		return Stats{}, err
	}
	st.Months = fillMonths(st.Months, f.From, f.To)
	if st.Deliveries, err = deliveryCounts(ctx, s.pool, f); err != nil {
		return Stats{}, err
	}
	if st.Delays, err = deliveryDelays(ctx, s.pool, f); err != nil {
		return Stats{}, err
	}
	if st.Failures, err = failureReasons(ctx, s.pool, f, 10); err != nil {
		return Stats{}, err
	}
	return st, nil
}

// checkPeriod refuses a period that ends before it starts.
func checkPeriod(from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("%w: period from %s to %s", ErrBadFilter, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return nil
}

// maxFilledMonths bounds the months fillMonths adds: ten years.
const maxFilledMonths = 120

// fillMonths returns months with a zero entry for each month of [from, to)
// that has none, when both are set and the period is at most
// maxFilledMonths long; months must be sorted.
func fillMonths(months []MonthRate, from, to time.Time) []MonthRate {
	if from.IsZero() || to.IsZero() {
		return months
	}
	have := make(map[string]MonthRate, len(months))
	for _, m := range months {
		have[m.Month] = m
	}
	f := from.In(dispatch.Zone)
	cur := time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, dispatch.Zone)
	var out []MonthRate
	for ; cur.Before(to); cur = cur.AddDate(0, 1, 0) {
		if len(out) == maxFilledMonths {
			return months
		}
		key := cur.Format("2006-01")
		m, ok := have[key]
		if !ok {
			m = MonthRate{Month: key}
		}
		out = append(out, m)
	}
	return out
}

// CampaignFilter selects the paper letters the adoption campaign counts.
type CampaignFilter struct {
	// From and To bound the reception of the letters' reports, To excluded;
	// zero is unbounded.
	From, To time.Time
	// Services restricts to the reports of these services; nil is every service.
	Services []string
	// Limit is the number of correspondents returned. Defaults to 100, at most 5000.
	Limit int
}

// CampaignEntry is a correspondent served on paper over the period.
//
// The letters counted are the paper deliveries to professionals and
// organisations (not patients), neither cancelled nor superseded. A
// correspondent is its national id, else its FINESS, else its name and
// postal address.
type CampaignEntry struct {
	// NationalID, FINESS and RPPS identify it as its reports listed it (the latest known).
	NationalID, FINESS, RPPS string
	// Kind is KindProfessional or KindOrganisation.
	Kind string
	// Name and PostalAddress are those of its latest letter.
	Name          string
	PostalAddress postal.PostalAddress
	// Letters is the number of letters.
	Letters int64
	// Convertible is the number of letters that would have gone by MSSanté
	// had it had an address: those sent with no email to it for the same
	// report (not a copy alongside an email, not the fallback of a failed
	// email, not an email a secretary replaced).
	Convertible int64
	// Equipped is true when the national directory lists a mailbox for it
	// now (its national id, or the FINESS of an organisation): it has an
	// address but is served on paper, by preference. DirectoryAddress is one.
	Equipped         bool
	DirectoryAddress string
	// LastLetter is when its latest letter was created.
	LastLetter time.Time
}

// Campaign returns the correspondents served on paper over the period f
// selects, most letters first (then the most recent, then by name).
func (s *Reader) Campaign(ctx context.Context, f CampaignFilter) ([]CampaignEntry, error) {
	if err := checkPeriod(f.From, f.To); err != nil {
		return nil, err
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 100
	case f.Limit > 5000:
		f.Limit = 5000
	}
	return campaign(ctx, s.pool, f)
}

// ExportCampaign is Campaign for an export (format names it: the CSV file,
// the invitation letters), which is recorded in the audit log in the name
// of actor.
func (s *Reader) ExportCampaign(ctx context.Context, actor, format string, f CampaignFilter) ([]CampaignEntry, error) {
	entries, err := s.Campaign(ctx, f)
	if err != nil {
		return nil, err
	}
	return audit.Served(ctx, s.pool, entries, audit.Entry{Actor: actor, Action: "campaign_exported",
		Detail: fmt.Sprintf("%s : %d correspondants, du %s au %s", format, len(entries), f.From.Format(time.DateOnly), f.To.Format(time.DateOnly))})
}
