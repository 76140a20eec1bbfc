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
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/hl7intake"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/mail/ingest"
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

// watchdogCron is when the acknowledgement watchdog looks for overdue deadlines.
const watchdogCron = "*/15 * * * *"

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
	MLLPAddr    string
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
	// NIL is the X-MSS-NIL product reference; empty means dispatch.DefaultNIL.
	NIL string
	// SourceOID is the XDM submission set sourceId. Required with the smtp
	// transport (real exchanges must name the real organisation); with the
	// outbox transport, empty means dispatch.DemoSourceID.
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
	// JobTimeout and JobRescueAfter tune the queue (see the env table).
	Workers                                                       int
	SendGiveUpAfter, SendRetryBackoff, JobTimeout, JobRescueAfter time.Duration
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
	var problems []error
	c := serveConfig{
		DatabaseURL: e.get("DATABASE_URL"),
		MLLPAddr:    e.get("MLLP_ADDR"),
		HTTPAddr:    e.get("HTTP_ADDR"),
		APIToken:    e.get("API_TOKEN"),
		Sender:      e.get("SENDER"),
		Transport:   e.get("TRANSPORT"),
		OutboxDir:   e.get("OUTBOX_DIR"),
		SMTP: dmail.SMTPConfig{
			Addr: e.get("SMTP_ADDR"), TLS: e.get("SMTP_TLS"), CAFile: e.get("SMTP_CA_FILE"),
			CertFile: e.get("SMTP_CERT_FILE"), KeyFile: e.get("SMTP_KEY_FILE"), CertPassword: e.get("SMTP_CERT_PASSWORD"),
			Username: e.get("SMTP_USERNAME"), Password: e.get("SMTP_PASSWORD"),
		},
		IMAP: dmail.InboxConfig{Addr: e.get("IMAP_ADDR"), TLS: e.get("IMAP_TLS"), CAFile: e.get("IMAP_CA_FILE"),
			Username: e.get("IMAP_USERNAME"), Password: e.get("IMAP_PASSWORD")},
		DPIAck: hl7intake.NotifierConfig{Addr: e.get("DPI_ACK_ADDR"), SendingApplication: e.get("DPI_ACK_APPLICATION"),
			SendingFacility: e.get("DPI_ACK_FACILITY")},
		HL7Charset:         e.get("HL7_CHARSET"),
		FINESS:             e.get("FINESS"),
		Organisation:       e.get("ORGANISATION"),
		FallbackRecipients: e.get("FALLBACK_RECIPIENTS") == "true",
		NIL:                e.get("NIL"),
		SourceOID:          e.get("SOURCE_OID"),
		PatientNoReply:     e.get("PATIENT_NO_REPLY") == "true",
		DirectorySource:    e.get("DIRECTORY_SOURCE"),
		WhitelistSource:    e.get("WHITELIST_SOURCE"),
		DirectorySyncCron:  e.get("DIRECTORY_SYNC_CRON"),
		RetentionCron:      e.get("RETENTION_CRON"),
	}
	c.Letterhead.Name = c.Organisation
	c.Letterhead.Lines = splitList(e.get("LETTERHEAD"), "|")
	if logo := e.get("LETTERHEAD_LOGO"); logo != "" {
		b, err := os.ReadFile(logo)
		if err != nil {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_LETTERHEAD_LOGO: %w", err))
		}
		c.Letterhead.Logo = b
	}
	c.PaperDir, c.PaperBatchCron = e.get("PAPER_DIR"), e.get("PAPER_BATCH_CRON")
	if _, err := cron.ParseStandard(c.PaperBatchCron); err != nil {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_PAPER_BATCH_CRON %q: %v", c.PaperBatchCron, err))
	}
	if c.PaperDir != "" {
		if st, err := os.Stat(c.PaperDir); err != nil || !st.IsDir() {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_PAPER_DIR %q: not a directory", c.PaperDir))
		}
	}
	proxies, err := parseTrustedProxies(e.get("TRUSTED_PROXIES"))
	if err != nil {
		problems = append(problems, err)
	}
	c.TrustedProxies = proxies
	c.HospitalAddresses = splitList(e.get("HOSPITAL_ADDRESSES"), ",")
	if len(c.HospitalAddresses) == 0 && c.Sender != "" {
		c.HospitalAddresses = []string{c.Sender}
	}
	switch v := e.get("COOKIE_SECURE"); v {
	case "auto":
		c.CookieSecure = auth.SecureAuto
	case "always":
		c.CookieSecure = auth.SecureAlways
	case "never":
		c.CookieSecure = auth.SecureNever
	default:
		problems = append(problems, fmt.Errorf("MSSDISPATCH_COOKIE_SECURE %q: want auto, always or never", v))
	}
	if _, err := cron.ParseStandard(c.DirectorySyncCron); err != nil {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_DIRECTORY_SYNC_CRON %q: %v", c.DirectorySyncCron, err))
	}
	if _, err := cron.ParseStandard(c.RetentionCron); err != nil {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_RETENTION_CRON %q: %v", c.RetentionCron, err))
	}
	if days, err := strconv.Atoi(e.get("RETENTION_DAYS")); err != nil || days < dispatch.MinRetentionDays {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_RETENTION_DAYS %q: want a whole number of days, at least %d",
			e.get("RETENTION_DAYS"), dispatch.MinRetentionDays))
	} else {
		c.RetentionDays = days
	}
	if days, err := strconv.Atoi(e.get("AUDIT_RETENTION_DAYS")); err != nil || days < audit.MinRetentionDays {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_AUDIT_RETENTION_DAYS %q: want a whole number of days, at least %d",
			e.get("AUDIT_RETENTION_DAYS"), audit.MinRetentionDays))
	} else {
		c.AuditRetentionDays = days
	}
	if n, err := strconv.Atoi(e.get("WORKERS")); err != nil || n < 1 || n > 1000 {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_WORKERS %q: want 1 to 1000", e.get("WORKERS")))
	} else {
		c.Workers = n
	}
	if n, err := strconv.Atoi(e.get("MLLP_MAX_CONNS")); err != nil || n < 1 || n > 10000 {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_MLLP_MAX_CONNS %q: want 1 to 10000", e.get("MLLP_MAX_CONNS")))
	} else {
		c.MLLPMaxConns = n
	}
	if n, err := strconv.Atoi(e.get("MLLP_MAX_BUFFER_MIB")); err != nil || n < mllp.DefaultMaxMessageSize>>20 || n > 4096 {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_MLLP_MAX_BUFFER_MIB %q: want %d (the largest message) to 4096",
			e.get("MLLP_MAX_BUFFER_MIB"), mllp.DefaultMaxMessageSize>>20))
	} else {
		c.MLLPMaxBuffered = n << 20
	}
	if n, err := strconv.Atoi(e.get("SMTP_MAX_CONNS")); err != nil || n < 1 || n > 100 {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_SMTP_MAX_CONNS %q: want 1 to 100", e.get("SMTP_MAX_CONNS")))
	} else {
		c.SMTP.MaxConns = n
	}
	for name, d := range map[string]*time.Duration{"SEND_GIVE_UP_AFTER": &c.SendGiveUpAfter,
		"SEND_RETRY_BACKOFF": &c.SendRetryBackoff, "JOB_TIMEOUT": &c.JobTimeout, "JOB_RESCUE_AFTER": &c.JobRescueAfter} {
		v, err := time.ParseDuration(e.get(name))
		if err != nil || v <= 0 {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_%s %q: want a positive duration such as 90s, 15m or 48h", name, e.get(name)))
			continue
		}
		*d = v
	}
	if c.JobRescueAfter > 0 && c.JobRescueAfter < c.JobTimeout {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_JOB_RESCUE_AFTER %s is shorter than MSSDISPATCH_JOB_TIMEOUT %s",
			c.JobRescueAfter, c.JobTimeout))
	}
	for _, name := range []string{"FALLBACK_RECIPIENTS", "PATIENT_NO_REPLY"} {
		if v := e.get(name); v != "true" && v != "false" {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_%s %q: want true or false", name, v))
		}
	}
	for _, r := range c.NIL {
		if r < ' ' || r > '~' {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_NIL %q: want printable ASCII", c.NIL))
			break
		}
	}
	if c.SourceOID != "" && !dispatch.IsOID(c.SourceOID) {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_SOURCE_OID %q: want an OID such as 1.2.250.1.71.4.2.2", c.SourceOID))
	}
	need := func(name, value string) {
		if value == "" {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_%s is required", name))
		}
	}
	need("DATABASE_URL", c.DatabaseURL)
	need("API_TOKEN", c.APIToken)
	if n := utf8.RuneCountInString(c.APIToken); n > 0 && n < minAPITokenLen {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_API_TOKEN is %d characters long: want at least %d (generate one with `openssl rand -hex 32`)",
			n, minAPITokenLen))
	}
	need("SENDER", c.Sender)
	if c.Sender != "" {
		if a, err := mail.ParseAddress(c.Sender); err != nil || a.Address != c.Sender {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_SENDER %q is not a bare email address", c.Sender))
		}
	}
	addrs := map[string]string{"MLLP_ADDR": c.MLLPAddr, "HTTP_ADDR": c.HTTPAddr}
	if c.DPIAck.Addr != "" {
		addrs["DPI_ACK_ADDR"] = c.DPIAck.Addr
	}
	for name, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			problems = append(problems, fmt.Errorf("MSSDISPATCH_%s %q: want host:port", name, addr))
		}
	}
	if c.IMAP.Addr != "" {
		need("IMAP_USERNAME", c.IMAP.Username)
	}
	switch c.Transport {
	case "outbox":
		need("OUTBOX_DIR", c.OutboxDir)
	case "smtp":
		need("SMTP_ADDR", c.SMTP.Addr)
		need("SOURCE_OID", c.SourceOID)
	default:
		problems = append(problems, fmt.Errorf("MSSDISPATCH_TRANSPORT %q: want smtp or outbox", c.Transport))
	}
	if !hl7.KnownCharset(c.HL7Charset) {
		problems = append(problems, fmt.Errorf("MSSDISPATCH_HL7_CHARSET %q: want UNICODE UTF-8, 8859/1 or 8859/15", c.HL7Charset))
	}
	if len(problems) > 0 {
		return c, &configError{msg: "configuration: " + errors.Join(problems...).Error()}
	}
	return c, nil
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
	return serve(ctx, cfg, logger, nil)
}

// serve runs the service until ctx is cancelled, then shuts it down. When
// ready is not nil it is called with the listeners' addresses once they accept.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger, ready func(mllpAddr, httpAddr net.Addr)) error {
	pool, err := openMigratedPool(ctx, cfg.DatabaseURL, cmp.Or(cfg.Workers, queue.DefaultConcurrency)+intakeConns)
	if err != nil {
		return err
	}
	defer pool.Close()

	var transport dmail.Transport
	if cfg.Transport == "outbox" {
		transport, err = dmail.NewOutbox(cfg.OutboxDir)
	} else {
		var smtpTransport *dmail.SMTP
		smtpTransport, err = dmail.NewSMTP(cfg.SMTP)
		if err == nil {
			defer smtpTransport.Close() // quits the pooled connections, after River stopped
			transport = smtpTransport
		}
	}
	if err != nil {
		return &configError{msg: err.Error()}
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		queue.NewDepthCollector(pool), readmodel.NewWorklistCollector(pool))

	directory := correspondents.NewStore(pool)
	resolver := correspondents.NewResolver(directory)
	workers := river.NewWorkers()
	err = dispatch.AddWorkers(workers, dispatch.WorkerConfig{
		Pool:               pool,
		Resolver:           resolver,
		Transport:          transport,
		Sender:             cfg.Sender,
		FallbackRecipients: cfg.FallbackRecipients,
		NIL:                cfg.NIL,
		SourceID:           cfg.SourceOID,
		PatientNoReply:     cfg.PatientNoReply,
		GiveUpAfter:        cfg.SendGiveUpAfter,
		RetryBackoff:       cfg.SendRetryBackoff,
		Registerer:         registry,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	err = correspondents.AddDirectorySync(workers, correspondents.DirectorySyncConfig{Store: directory,
		DirectorySource: cfg.DirectorySource, WhitelistSource: cfg.WhitelistSource, Registerer: registry, Logger: logger})
	if err != nil {
		return err
	}
	var notifier dispatch.DPINotifier // nil: business acknowledgements off
	if cfg.DPIAck.Addr != "" {
		n, err := hl7intake.NewNotifier(cfg.DPIAck)
		if err != nil {
			return &configError{msg: err.Error()}
		}
		defer n.Close() // after the workers stopped
		notifier = n
	}
	err = dispatch.AddBusinessAcks(workers, dispatch.BusinessAckConfig{Pool: pool, Notifier: notifier,
		Registerer: registry, Logger: logger})
	if err != nil {
		return err
	}
	err = dispatch.AddRetention(workers, dispatch.RetentionConfig{Pool: pool, Days: cfg.RetentionDays,
		AuditDays: cfg.AuditRetentionDays, Registerer: registry, Logger: logger})
	if err != nil {
		return err
	}
	accounts := auth.NewStore(pool)
	sessions, err := auth.NewSessions(auth.SessionConfig{Store: accounts, Secure: cfg.CookieSecure, Logger: logger})
	if err != nil {
		return err
	}
	if err := auth.AddPurge(workers, sessions); err != nil {
		return err
	}
	paperCfg := letters.Config{Pool: pool, Letterhead: cfg.Letterhead, Sink: letters.LocalPrint{Dir: cfg.PaperDir},
		Logger: logger}
	if err := letters.AddBatches(workers, paperCfg); err != nil {
		return err
	}
	var periodic []queue.Periodic
	if cfg.DirectorySource != "" || cfg.WhitelistSource != "" {
		periodic = append(periodic, queue.Periodic{Spec: cfg.DirectorySyncCron,
			Args: func() river.JobArgs { return correspondents.DirectorySyncArgs{} }})
	}
	retentionCron := cfg.RetentionCron
	if retentionCron == "" {
		retentionCron = defaultRetentionCron
	}
	periodic = append(periodic, queue.Periodic{Spec: retentionCron,
		Args: func() river.JobArgs { return dispatch.RetentionArgs{} }},
		queue.Periodic{Spec: watchdogCron, Args: func() river.JobArgs { return dispatch.WatchdogArgs{} }},
		queue.Periodic{Spec: sessionPurgeCron, Args: func() river.JobArgs { return auth.PurgeArgs{} }},
		queue.Periodic{Spec: cmp.Or(cfg.PaperBatchCron, defaultPaperBatchCron), Args: func() river.JobArgs { return letters.BatchArgs{} }})
	jobs, err := queue.New(pool, queue.Config{Workers: workers, Concurrency: cfg.Workers, Periodic: periodic,
		JobTimeout: cfg.JobTimeout, RescueStuckJobsAfter: cfg.JobRescueAfter, Logger: logger})
	if err != nil {
		return err
	}
	service, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: jobs, Logger: logger, Resolver: resolver,
		BusinessAcks: notifier != nil, Sender: cfg.Sender,
		Custodian: dispatch.Organisation{FINESS: cfg.FINESS, Name: cfg.Organisation}})
	if err != nil {
		return &configError{msg: err.Error()}
	}
	desk, err := letters.NewDesk(paperCfg, jobs)
	if err != nil {
		return err
	}
	var acks *ingest.Ingester
	if cfg.IMAP.Addr != "" {
		acks, err = ingest.New(ingest.Config{Pool: pool, Acknowledger: service, Inbox: cfg.IMAP,
			Registerer: registry, Logger: logger})
		if err != nil {
			return &configError{msg: err.Error()}
		}
	}
	intake, err := hl7intake.New(hl7intake.Config{Receiver: service, DefaultCharset: cfg.HL7Charset, Registerer: registry, Logger: logger})
	if err != nil {
		return err
	}
	// River's UI lives as long as the HTTP server.
	jobsUICtx, stopJobsUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobsUI()
	jobsUI, err := web.NewJobsUI(jobsUICtx, jobs, redact.Logger(logger))
	if err != nil {
		return err
	}
	handler, err := web.NewHandler(web.Config{APIToken: cfg.APIToken, Reports: service, Intake: service, HL7: intake,
		Directory: directory, Resolver: resolver, Rules: service, DB: pool, Gatherer: registry, Logger: logger,
		Dashboard: service, Accounts: accounts, Sessions: sessions, Letters: desk, Views: readmodel.New(pool),
		Quarantine: service, Audit: audit.NewLog(pool), Hospital: cfg.Organisation, HospitalAddresses: cfg.HospitalAddresses,
		JobsUI: jobsUI, TrustedProxies: cfg.TrustedProxies})
	if err != nil {
		return err
	}

	mllpLn, err := net.Listen("tcp", cfg.MLLPAddr)
	if err != nil {
		return fmt.Errorf("MLLP listener: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		mllpLn.Close()
		return fmt.Errorf("HTTP listener: %w", err)
	}
	mllpSrv := &mllp.Server{Handler: intake, Logger: logger, MaxConns: cfg.MLLPMaxConns, MaxBufferedBytes: cfg.MLLPMaxBuffered}
	httpSrv := newHTTPServer(handler, logger)

	// River's work outlives ctx: it stops in the shutdown below.
	if err := jobs.Start(context.WithoutCancel(ctx)); err != nil {
		mllpLn.Close()
		httpLn.Close()
		return fmt.Errorf("start job queue: %w", err)
	}
	errs := make(chan error, 2)
	go func() { errs <- ignoreClosed(mllpSrv.Serve(mllpLn), mllp.ErrServerClosed) }()
	go func() { errs <- ignoreClosed(httpSrv.Serve(httpLn), http.ErrServerClosed) }()
	ackCtx, stopAcks := context.WithCancel(context.WithoutCancel(ctx))
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		if acks != nil {
			_ = acks.Run(ackCtx) // it logs and retries its errors itself
		}
	}()
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
	stopAcks()
	<-ackDone
	return errors.Join(serveErr, shutdown(mllpSrv, httpSrv, jobs))
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
// pool_max_conns.
func openPool(ctx context.Context, url string, conns int) (*pgxpool.Pool, error) {
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
func openMigratedPool(ctx context.Context, url string, conns int) (*pgxpool.Pool, error) {
	pool, err := openPool(ctx, url, conns)
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
