package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/mail/ingest"
	"github.com/mssdispatch/mssdispatch/dispatch/quarantine"
	"github.com/mssdispatch/mssdispatch/dispatch/retention"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/redact"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/migrations"
	"github.com/mssdispatch/mssdispatch/paper"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/web"
)

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// sessionPurgeCron is when expired dashboard sessions are deleted.
const sessionPurgeCron = "7 * * * *"

// minAPITokenLen is the shortest MSSDISPATCH_API_TOKEN serve accepts, in
// characters: `openssl rand -hex 32` gives 64.
const minAPITokenLen = 32

// The HTTP server's limits, for every client, authenticated or not.
const (
	// httpReadHeaderTimeout bounds the reading of a request's header.
	httpReadHeaderTimeout = 10 * time.Second
	// httpReadTimeout bounds the reading of a whole request: the API's
	// largest body (32 MiB) at 2.2 Mbit/s; the dashboard's forms are at
	// most 3.25 MiB (the rules YAML), 256 KiB otherwise.
	httpReadTimeout = 2 * time.Minute
	// httpWriteTimeout bounds a response, from the end of its request:
	// the largest downloads are the dashboard's PDFs, a paper batch of up
	// to 200 letters each carrying its report's PDF (hundreds of MiB at
	// worst, about 750 MB at 10 Mbit/s in 10 minutes), the campaign's
	// letters, and the profiler's CPU profile (30 s by default, at most
	// this long).
	httpWriteTimeout = 10 * time.Minute
	// httpIdleTimeout closes a kept-alive connection idle that long.
	httpIdleTimeout = 2 * time.Minute
	// httpMaxHeaderBytes bounds a request's header (cookies included).
	httpMaxHeaderBytes = 64 << 10
)

// serveConfig is the validated configuration of serve.
type serveConfig struct {
	DatabaseURL string
	// Instance names this process among those sharing the database, the
	// same across its restarts (the River client's ID, held by
	// queue.Claim); InstanceWait is how long serve waits for another
	// session holding it to end (instanceWait; 0: not at all).
	Instance     string
	InstanceWait time.Duration
	MLLPAddr     string
	// MLLPMaxConns and MLLPMaxBuffered bound the MLLP listener: the
	// connections served at once, the frame bytes all of them hold
	// (mllp.Server's MaxConns and MaxBufferedBytes; 0: their defaults).
	MLLPMaxConns, MLLPMaxBuffered int
	HTTPAddr                      string
	APIToken                      string
	Sender                        string
	Transport                     string
	OutboxDir                     string
	SMTP                          dmail.SMTPConfig
	// IMAP reads the acknowledgements; an empty Addr turns it off.
	IMAP dmail.InboxConfig
	// DPIAck sends the business acknowledgements (ZAM) to the DPI; an empty
	// Addr turns them off.
	DPIAck     hl7intake.NotifierConfig
	HL7Charset string
	// FINESS and Organisation name the hospital (custodian of CDAs built around a bare PDF).
	FINESS       string
	Organisation string
	// FallbackRecipients sends to correspondents listed outside PRT RCT.
	FallbackRecipients bool
	// NIL is the X-MSS-NIL product reference; empty means worker.DefaultNIL.
	NIL string
	// SourceOID is the XDM submission set sourceId. Required with the smtp
	// transport (real exchanges must name the real organisation); with the
	// outbox transport, empty means worker.DemoSourceID.
	SourceOID string
	// PatientNoReply adds X-MSS-MES: FIN to the emails sent to patients.
	PatientNoReply bool
	// DirectorySource and WhitelistSource are re-imported on DirectorySyncCron.
	DirectorySource, WhitelistSource string
	DirectorySyncCron                string
	// RetentionDays is the retention period of patient data bytes; 0 means
	// the dispatch default. RetentionCron is when they are purged; empty
	// means defaultRetentionCron.
	RetentionDays int
	RetentionCron string
	// AuditRetentionDays is the retention period of the audit log's
	// entries; 0 means audit.DefaultRetentionDays.
	AuditRetentionDays int
	// Workers is the River concurrency; SendGiveUpAfter, SendRetryBackoff,
	// SendProbeInterval, JobTimeout and JobRescueAfter tune the queue (see
	// the env table).
	Workers                                                                          int
	SendGiveUpAfter, SendRetryBackoff, SendProbeInterval, JobTimeout, JobRescueAfter time.Duration
	// Letterhead heads the paper letters; PaperDir is LocalPrint's folder;
	// PaperBatchCron is when the letters are batched.
	Letterhead     paper.Letterhead
	PaperDir       string
	PaperBatchCron string
	// CookieSecure is when the dashboard's cookies carry the Secure attribute.
	CookieSecure auth.SecureMode
	// HospitalAddresses are the hospital's MSSanté addresses for the
	// adoption campaign's letters; empty means Sender.
	HospitalAddresses []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (web.Config.TrustedProxies); empty means none.
	TrustedProxies []netip.Prefix
}

func loadServeConfig(e env) (serveConfig, error) {
	r := &settings{e: e}
	c := serveConfig{
		DatabaseURL: r.required("DATABASE_URL"),
		MLLPAddr:    r.hostPort("MLLP_ADDR"),
		HTTPAddr:    r.hostPort("HTTP_ADDR"),
		APIToken:    r.required("API_TOKEN"),
		Sender:      r.required("SENDER"),
		Transport:   e.get("TRANSPORT"),
		OutboxDir:   e.get("OUTBOX_DIR"),
		SMTP: dmail.SMTPConfig{
			Addr: e.get("SMTP_ADDR"), TLS: e.get("SMTP_TLS"), CAFile: e.get("SMTP_CA_FILE"),
			CertFile: e.get("SMTP_CERT_FILE"), KeyFile: e.get("SMTP_KEY_FILE"), CertPassword: e.get("SMTP_CERT_PASSWORD"),
			Username: e.get("SMTP_USERNAME"), Password: e.get("SMTP_PASSWORD"),
			MaxConns: r.intIn("SMTP_MAX_CONNS", 1, 100, ""),
		},
		IMAP: dmail.InboxConfig{Addr: e.get("IMAP_ADDR"), TLS: e.get("IMAP_TLS"), CAFile: e.get("IMAP_CA_FILE"),
			Username: e.get("IMAP_USERNAME"), Password: e.get("IMAP_PASSWORD")},
		DPIAck: hl7intake.NotifierConfig{Addr: e.get("DPI_ACK_ADDR"), SendingApplication: e.get("DPI_ACK_APPLICATION"),
			SendingFacility: e.get("DPI_ACK_FACILITY")},
		HL7Charset:         e.get("HL7_CHARSET"),
		FINESS:             e.get("FINESS"),
		Organisation:       e.get("ORGANISATION"),
		FallbackRecipients: r.boolean("FALLBACK_RECIPIENTS"),
		NIL:                e.get("NIL"),
		SourceOID:          e.get("SOURCE_OID"),
		PatientNoReply:     r.boolean("PATIENT_NO_REPLY"),
		DirectorySource:    e.get("DIRECTORY_SOURCE"),
		WhitelistSource:    e.get("WHITELIST_SOURCE"),
		DirectorySyncCron:  r.cron("DIRECTORY_SYNC_CRON"),
		RetentionCron:      r.cron("RETENTION_CRON"),
		RetentionDays:      r.days("RETENTION_DAYS", retention.MinDays),
		AuditRetentionDays: r.days("AUDIT_RETENTION_DAYS", audit.MinRetentionDays),
		Workers:            r.intIn("WORKERS", 1, 1000, ""),
		MLLPMaxConns:       r.intIn("MLLP_MAX_CONNS", 1, 10000, ""),
		MLLPMaxBuffered:    r.intIn("MLLP_MAX_BUFFER_MIB", mllp.DefaultMaxMessageSize>>20, 4096, "the largest message") << 20,
		SendGiveUpAfter:    r.duration("SEND_GIVE_UP_AFTER"),
		SendRetryBackoff:   r.duration("SEND_RETRY_BACKOFF"),
		SendProbeInterval:  r.duration("SEND_PROBE_INTERVAL"),
		JobTimeout:         r.duration("JOB_TIMEOUT"),
		JobRescueAfter:     r.duration("JOB_RESCUE_AFTER"),
		PaperDir:           e.get("PAPER_DIR"),
		PaperBatchCron:     r.cron("PAPER_BATCH_CRON"),
		CookieSecure:       r.cookieSecure("COOKIE_SECURE"),
		HospitalAddresses:  splitList(e.get("HOSPITAL_ADDRESSES"), ","),
	}
	c.Instance, c.InstanceWait = r.instance(c.MLLPAddr), instanceWait
	c.Letterhead = r.letterhead(c.Organisation)
	if c.PaperDir != "" {
		if st, err := os.Stat(c.PaperDir); err != nil || !st.IsDir() {
			r.problem("MSSDISPATCH_PAPER_DIR %q: not a directory", c.PaperDir)
		}
	}
	proxies, err := parseTrustedProxies(e.get("TRUSTED_PROXIES"))
	if err != nil {
		r.problems = append(r.problems, err)
	}
	c.TrustedProxies = proxies
	if len(c.HospitalAddresses) == 0 && c.Sender != "" {
		c.HospitalAddresses = []string{c.Sender}
	}
	if c.JobRescueAfter > 0 && c.JobRescueAfter < c.JobTimeout {
		r.problem("MSSDISPATCH_JOB_RESCUE_AFTER %s is shorter than MSSDISPATCH_JOB_TIMEOUT %s", c.JobRescueAfter, c.JobTimeout)
	}
	if strings.ContainsFunc(c.NIL, func(r rune) bool { return r < ' ' || r > '~' }) {
		r.problem("MSSDISPATCH_NIL %q: want printable ASCII", c.NIL)
	}
	if c.SourceOID != "" && !worker.IsOID(c.SourceOID) {
		r.problem("MSSDISPATCH_SOURCE_OID %q: want an OID such as 1.2.250.1.71.4.2.2", c.SourceOID)
	}
	if n := utf8.RuneCountInString(c.APIToken); n > 0 && n < minAPITokenLen {
		r.problem("MSSDISPATCH_API_TOKEN is %d characters long: want at least %d (generate one with `openssl rand -hex 32`)",
			n, minAPITokenLen)
	}
	if c.Sender != "" {
		if a, err := mail.ParseAddress(c.Sender); err != nil || a.Address != c.Sender {
			r.problem("MSSDISPATCH_SENDER %q is not a bare email address", c.Sender)
		}
	}
	if c.DPIAck.Addr != "" {
		r.hostPort("DPI_ACK_ADDR")
	}
	if c.IMAP.Addr != "" {
		r.required("IMAP_USERNAME")
	}
	switch c.Transport {
	case "outbox":
		r.required("OUTBOX_DIR")
	case "smtp":
		r.required("SMTP_ADDR")
		r.required("SOURCE_OID")
	default:
		r.problem("MSSDISPATCH_TRANSPORT %q: want smtp or outbox", c.Transport)
	}
	if !hl7.KnownCharset(c.HL7Charset) {
		r.problem("MSSDISPATCH_HL7_CHARSET %q: want UNICODE UTF-8, 8859/1 or 8859/15", c.HL7Charset)
	}
	if len(r.problems) > 0 {
		return c, &configError{msg: "configuration: " + errors.Join(r.problems...).Error()}
	}
	return c, nil
}

// settings reads the environment's settings for serve, each checked as it
// is read, and keeps every problem found so that one run lists them all.
type settings struct {
	e        env
	problems []error
}

func (r *settings) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Errorf(format, args...))
}

// required returns MSSDISPATCH_<name>, a problem when it is empty.
func (r *settings) required(name string) string {
	v := r.e.get(name)
	if v == "" {
		r.problem("MSSDISPATCH_%s is required", name)
	}
	return v
}

// hostPort returns MSSDISPATCH_<name>, a problem unless it is host:port.
func (r *settings) hostPort(name string) string {
	v := r.e.get(name)
	if _, _, err := net.SplitHostPort(v); err != nil {
		r.problem("MSSDISPATCH_%s %q: want host:port", name, v)
	}
	return v
}

// instance returns MSSDISPATCH_INSTANCE, by default the host name and the
// MLLP listener's address mllpAddr: stable across restarts, and different
// for two instances on one host.
func (r *settings) instance(mllpAddr string) string {
	v := r.e.get("INSTANCE")
	if v == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			r.problem("MSSDISPATCH_INSTANCE is required: the host name is unknown (%v)", err)
			return ""
		}
		v = host + "/" + mllpAddr
	}
	if err := queue.CheckID(v); err != nil {
		r.problem("MSSDISPATCH_INSTANCE %q: %v", v, err)
	}
	return v
}

// cron returns MSSDISPATCH_<name>, a problem unless it is a five-field cron spec.
func (r *settings) cron(name string) string {
	v := r.e.get(name)
	if _, err := cron.ParseStandard(v); err != nil {
		r.problem("MSSDISPATCH_%s %q: %v", name, v, err)
	}
	return v
}

// intIn returns MSSDISPATCH_<name> as a whole number from lo to hi; the
// problem says why lo, when it is not obvious (loWhy).
func (r *settings) intIn(name string, lo, hi int, loWhy string) int {
	v := r.e.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		if loWhy != "" {
			loWhy = " (" + loWhy + ")"
		}
		r.problem("MSSDISPATCH_%s %q: want %d%s to %d", name, v, lo, loWhy, hi)
		return 0
	}
	return n
}

// days returns MSSDISPATCH_<name> as a number of days, at least least.
func (r *settings) days(name string, least int) int {
	v := r.e.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		r.problem("MSSDISPATCH_%s %q: want a whole number of days, at least %d", name, v, least)
		return 0
	}
	return n
}

// duration returns MSSDISPATCH_<name> as a positive duration.
func (r *settings) duration(name string) time.Duration {
	v := r.e.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.problem("MSSDISPATCH_%s %q: want a positive duration such as 90s, 15m or 48h", name, v)
		return 0
	}
	return d
}

// boolean returns MSSDISPATCH_<name>: true or false.
func (r *settings) boolean(name string) bool {
	v := r.e.get(name)
	if v != "true" && v != "false" {
		r.problem("MSSDISPATCH_%s %q: want true or false", name, v)
	}
	return v == "true"
}

// cookieSecure returns MSSDISPATCH_<name>: auto, always or never.
func (r *settings) cookieSecure(name string) auth.SecureMode {
	v := r.e.get(name)
	mode, ok := map[string]auth.SecureMode{"auto": auth.SecureAuto, "always": auth.SecureAlways, "never": auth.SecureNever}[v]
	if !ok {
		r.problem("MSSDISPATCH_%s %q: want auto, always or never", name, v)
	}
	return mode
}

// letterhead is the paper letters' letterhead of the hospital called name:
// MSSDISPATCH_LETTERHEAD's lines and MSSDISPATCH_LETTERHEAD_LOGO's image.
func (r *settings) letterhead(name string) paper.Letterhead {
	lh := paper.Letterhead{Name: name, Lines: splitList(r.e.get("LETTERHEAD"), "|")}
	if logo := r.e.get("LETTERHEAD_LOGO"); logo != "" {
		b, err := os.ReadFile(logo)
		if err != nil {
			r.problem("MSSDISPATCH_LETTERHEAD_LOGO: %w", err)
		}
		lh.Logo = b
	}
	return lh
}

// parseTrustedProxies reads MSSDISPATCH_TRUSTED_PROXIES: IP addresses or
// CIDR prefixes separated by commas.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range splitList(s, ",") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("MSSDISPATCH_TRUSTED_PROXIES %q: want IP addresses or CIDR prefixes (10.0.0.0/8) separated by commas", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// newHTTPServer returns the HTTP server of handler, with the limits above.
func newHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(redact.Logger(logger).Handler(), slog.LevelWarn),
	}
}

// splitList returns the non-empty items of s separated by sep, trimmed.
func splitList(s, sep string) []string {
	var out []string
	for v := range strings.SplitSeq(s, sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func serveCommand(ctx context.Context, e env, logger *slog.Logger) error {
	cfg, err := loadServeConfig(e)
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// A report allocates its 190 kB several times over (the message, the
		// CDA, each email): at 200 the GC runs half as often, for ≈ 25 MB
		// more of the heap (BENCHMARKS.md, issue #22).
		debug.SetGCPercent(gcPercent)
	}
	return serve(ctx, cfg, logger, nil)
}

// gcPercent is serve's GOGC unless the environment sets one.
const gcPercent = 200

// instanceWait is how long serve waits for another session holding its
// instance's identity to end before it refuses to start: longer than the
// lock session's keepalives take to end the session of a host that died
// (about 25 s), so that an instance restarted at once elsewhere starts.
const instanceWait = 40 * time.Second

// serve runs the service until ctx is cancelled, then shuts it down. When
// ready is not nil it is called with the listeners' addresses once they accept.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger, ready func(mllpAddr, httpAddr net.Addr)) error {
	statements := newStatementCounter()
	pool, err := openMigratedPool(ctx, cfg.DatabaseURL, cmp.Or(cfg.Workers, queue.DefaultConcurrency)+intakeConns, statements)
	if err != nil {
		return err
	}
	defer pool.Close()
	registry := prometheus.NewRegistry()
	instance, err := claimInstance(ctx, pool, cfg, registry, logger)
	if err != nil {
		return err
	}
	defer instance.Release() // after River stopped (app.run)
	transport, closeTransport, err := openTransport(cfg)
	if err != nil {
		return &configError{msg: err.Error()}
	}
	defer closeTransport()            // quits the pooled SMTP connections, after River stopped
	var notifier dispatch.DPINotifier // nil: business acknowledgements off
	if cfg.DPIAck.Addr != "" {
		n, err := hl7intake.NewNotifier(cfg.DPIAck)
		if err != nil {
			return &configError{msg: err.Error()}
		}
		// After the workers stopped: it closes an idle connection, whose
		// error would change nothing.
		defer func() { _ = n.Close() }()
		notifier = n
	}
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		queue.NewDepthCollector(pool), readmodel.NewWorklistCollector(pool), statements)
	// River's UI lives as long as the HTTP server.
	jobsUICtx, stopJobsUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobsUI()
	app, err := build(jobsUICtx, cfg, pool, transport, notifier, registry, logger)
	if err != nil {
		return err
	}
	return app.run(ctx, cfg, logger, ready)
}

// claimInstance holds cfg.Instance for this process (queue.Claim), then
// takes up the jobs its previous run left running, before River works any.
func claimInstance(ctx context.Context, pool *pgxpool.Pool, cfg serveConfig, registry prometheus.Registerer,
	logger *slog.Logger) (*queue.Instance, error) {
	instance, err := queue.Claim(ctx, pool, queue.InstanceConfig{ID: cfg.Instance, Wait: cfg.InstanceWait,
		Registerer: registry, Logger: logger})
	if errors.Is(err, queue.ErrInstanceHeld) {
		return nil, configErrorf("another instance runs as %s: give each its own MSSDISPATCH_INSTANCE", cfg.Instance)
	}
	if err != nil {
		return nil, err
	}
	if _, err := instance.RescueOrphans(ctx); err != nil {
		instance.Release()
		return nil, err
	}
	return instance, nil
}

// app is what serve runs: the job queue with every worker registered, the
// prober of the blocked SMTP scopes, the HL7 intake, the HTTP handler and,
// when configured, the mailbox reader.
type app struct {
	jobs    *queue.Client
	probes  *worker.Prober
	intake  *hl7intake.Handler
	handler http.Handler
	acks    *ingest.Ingester // nil without IMAP
}

// build wires the service: each package registers its workers (the domain
// in one call, worker.Install), the queue is built with them and their
// periodic jobs, then the services that enqueue jobs and the edges.
func build(ctx context.Context, cfg serveConfig, pool *pgxpool.Pool, transport dmail.Transport, notifier dispatch.DPINotifier,
	registry *prometheus.Registry, logger *slog.Logger) (*app, error) {
	directory := correspondents.NewStore(pool)
	resolver := correspondents.NewResolver(directory)
	workers := river.NewWorkers()
	domain, err := worker.Install(workers, worker.Config{
		Workers: worker.WorkerConfig{Pool: pool, Resolver: resolver, Transport: transport, Sender: cfg.Sender,
			FallbackRecipients: cfg.FallbackRecipients, NIL: cfg.NIL, SourceID: cfg.SourceOID, PatientNoReply: cfg.PatientNoReply,
			GiveUpAfter: cfg.SendGiveUpAfter, RetryBackoff: cfg.SendRetryBackoff, ProbeInterval: cfg.SendProbeInterval,
			Registerer: registry, Logger: logger},
		Notifier:      notifier,
		Custodian:     dispatch.Organisation{FINESS: cfg.FINESS, Name: cfg.Organisation},
		Retention:     retention.Config{Days: cfg.RetentionDays, AuditDays: cfg.AuditRetentionDays},
		RetentionCron: cmp.Or(cfg.RetentionCron, defaultRetentionCron),
	})
	if err != nil {
		return nil, &configError{msg: err.Error()}
	}
	periodic := domain.Periodic()
	err = correspondents.AddDirectorySync(workers, correspondents.DirectorySyncConfig{Store: directory,
		DirectorySource: cfg.DirectorySource, WhitelistSource: cfg.WhitelistSource, Registerer: registry, Logger: logger})
	if err != nil {
		return nil, err
	}
	if cfg.DirectorySource != "" || cfg.WhitelistSource != "" {
		periodic = append(periodic, queue.Periodic{Spec: cfg.DirectorySyncCron,
			Args: func() river.JobArgs { return correspondents.DirectorySyncArgs{} }})
	}
	accounts := auth.NewStore(pool)
	sessions, err := auth.NewSessions(auth.SessionConfig{Store: accounts, Secure: cfg.CookieSecure, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := auth.AddPurge(workers, sessions); err != nil {
		return nil, err
	}
	periodic = append(periodic, queue.Periodic{Spec: sessionPurgeCron, Args: func() river.JobArgs { return auth.PurgeArgs{} }})
	paperCfg := letters.Config{Pool: pool, Letterhead: cfg.Letterhead, Sink: letters.LocalPrint{Dir: cfg.PaperDir},
		Logger: logger}
	if err := letters.AddBatches(workers, paperCfg); err != nil {
		return nil, err
	}
	periodic = append(periodic, queue.Periodic{Spec: cmp.Or(cfg.PaperBatchCron, defaultPaperBatchCron),
		Args: func() river.JobArgs { return letters.BatchArgs{} }})

	jobs, err := queue.New(pool, queue.Config{ID: cfg.Instance, Workers: workers, Concurrency: cfg.Workers, Periodic: periodic,
		JobTimeout: cfg.JobTimeout, RescueStuckJobsAfter: cfg.JobRescueAfter, Logger: logger})
	if err != nil {
		return nil, err
	}
	service, err := domain.Service(jobs)
	if err != nil {
		return nil, &configError{msg: err.Error()}
	}
	paperDesk, err := letters.NewDesk(paperCfg, jobs)
	if err != nil {
		return nil, err
	}
	a := &app{jobs: jobs, probes: domain.Prober()}
	if cfg.IMAP.Addr != "" {
		a.acks, err = ingest.New(ingest.Config{Pool: pool, Acknowledger: ingest.NewLedger(pool, service, logger), Inbox: cfg.IMAP,
			Registerer: registry, Logger: logger})
		if err != nil {
			return nil, &configError{msg: err.Error()}
		}
	}
	refused := quarantine.NewDesk(pool, service)
	a.intake, err = hl7intake.New(hl7intake.Config{Receiver: service, Quarantine: refused, DefaultCharset: cfg.HL7Charset, Registerer: registry, Logger: logger})
	if err != nil {
		return nil, err
	}
	jobsUI, err := web.NewJobsUI(ctx, jobs, redact.Logger(logger))
	if err != nil {
		return nil, err
	}
	a.handler, err = web.NewHandler(web.Config{APIToken: cfg.APIToken, Intake: service, HL7: a.intake,
		Directory: directory, Resolver: resolver, Rules: ruleset.New(pool, resolver, logger), DB: pool, Gatherer: registry, Logger: logger,
		Dashboard: desk.New(pool, jobs, resolver, cfg.Sender), Accounts: accounts, Sessions: sessions, Letters: paperDesk, Views: readmodel.New(pool),
		Quarantine: refused, Audit: audit.NewLog(pool), Hospital: cfg.Organisation, HospitalAddresses: cfg.HospitalAddresses,
		JobsUI: jobsUI, TrustedProxies: cfg.TrustedProxies})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// openTransport returns the email transport cfg names, and what closes it.
func openTransport(cfg serveConfig) (dmail.Transport, func(), error) {
	if cfg.Transport == "outbox" {
		outbox, err := dmail.NewOutbox(cfg.OutboxDir)
		return outbox, func() {}, err
	}
	smtp, err := dmail.NewSMTP(cfg.SMTP)
	if err != nil {
		return nil, nil, err
	}
	return smtp, func() { _ = smtp.Close() }, nil
}

// run listens, starts the queue, the prober and the mailbox reader, calls
// ready, serves until ctx ends or a listener fails, then shuts everything
// down in order.
func (a *app) run(ctx context.Context, cfg serveConfig, logger *slog.Logger, ready func(mllpAddr, httpAddr net.Addr)) error {
	mllpLn, err := net.Listen("tcp", cfg.MLLPAddr)
	if err != nil {
		return fmt.Errorf("MLLP listener: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = mllpLn.Close() // not served yet: nothing to report
		return fmt.Errorf("HTTP listener: %w", err)
	}
	mllpSrv := &mllp.Server{Handler: a.intake, Logger: logger, MaxConns: cfg.MLLPMaxConns, MaxBufferedBytes: cfg.MLLPMaxBuffered}
	httpSrv := newHTTPServer(a.handler, logger)

	// River's work outlives ctx: it stops in the shutdown below.
	if err := a.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		_ = mllpLn.Close() // not served yet: nothing to report
		_ = httpLn.Close()
		return fmt.Errorf("start job queue: %w", err)
	}
	errs := make(chan error, 2)
	go func() { errs <- ignoreClosed(mllpSrv.Serve(mllpLn), mllp.ErrServerClosed) }()
	go func() { errs <- ignoreClosed(httpSrv.Serve(httpLn), http.ErrServerClosed) }()
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var running sync.WaitGroup
	if a.acks != nil {
		running.Go(func() { _ = a.acks.Run(background) }) // it logs and retries its errors itself
	}
	running.Go(func() { a.probes.Run(background) })
	logger.Info("mssdispatch serving", "mllp", mllpLn.Addr().String(), "http", httpLn.Addr().String(), "transport", cfg.Transport)
	if ready != nil {
		ready(mllpLn.Addr(), httpLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	logger.Info("mssdispatch shutting down")
	stopBackground()
	running.Wait()
	return errors.Join(serveErr, shutdown(mllpSrv, httpSrv, a.jobs))
}

// shutdown stops the listeners (letting in-flight messages finish and be
// acknowledged), then soft-stops River (running jobs finish), within
// shutdownTimeout.
func shutdown(mllpSrv *mllp.Server, httpSrv *http.Server, jobs *queue.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mllpErr, httpErr error
	wg.Go(func() { mllpErr = mllpSrv.Shutdown(ctx) })
	wg.Go(func() { httpErr = httpSrv.Shutdown(ctx) })
	wg.Wait()
	jobsErr := jobs.Stop(ctx)
	if jobsErr != nil {
		jobsErr = fmt.Errorf("stop job queue: %w", jobsErr)
	}
	return errors.Join(mllpErr, httpErr, jobsErr)
}

func ignoreClosed(err, closed error) error {
	if errors.Is(err, closed) {
		return nil
	}
	return err
}

// intakeConns is how many database connections serve's pool has beyond its
// workers, for the MLLP and HTTP intake, the dashboard, River's listener and
// the IMAP reader's lock.
const intakeConns = 10

// openPool opens a pool of at most conns connections to the database at url
// (pgx's default, max(4, CPUs), when conns is 0), unless url sets
// pool_max_conns; tracer, when not nil, traces its statements.
func openPool(ctx context.Context, url string, conns int, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, configErrorf("MSSDISPATCH_DATABASE_URL is required")
	}
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, configErrorf("MSSDISPATCH_DATABASE_URL: %v", err)
	}
	if conns > 0 && !strings.Contains(url, "pool_max_conns") {
		config.MaxConns = int32(conns)
	}
	config.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, configErrorf("MSSDISPATCH_DATABASE_URL: %v", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return pool, nil
}

// openMigratedPool opens the database at url as openPool and refuses one
// that is not migrated to this binary's schema.
func openMigratedPool(ctx context.Context, url string, conns int, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	pool, err := openPool(ctx, url, conns, tracer)
	if err != nil {
		return nil, err
	}
	if err := queue.CheckSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := migrations.Check(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
