package main

import (
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
)

// envVar is one MSSDISPATCH_ environment variable: the single list used to
// read the configuration and to document it in -h.
type envVar struct {
	name string // without the MSSDISPATCH_ prefix
	def  string
	doc  string
}

// defaultRetentionCron is the default of RETENTION_CRON, also used by a
// serveConfig built without it.
const defaultRetentionCron = "15 3 * * *"

// defaultPaperBatchCron is the default of PAPER_BATCH_CRON, also used by a
// serveConfig built without it.
const defaultPaperBatchCron = "0 14 * * 1-5"

var envVars = []envVar{
	{"DATABASE_URL", "", "PostgreSQL URL, e.g. postgres://mss@db/mss (required)"},
	{"MLLP_ADDR", "127.0.0.1:2575", "MLLP listener for the DPI's HL7 messages (send-sample sends there)"},
	{"INSTANCE", "", "this instance's name among those sharing the database, the same across its restarts and its own: restarted, it takes up at once the jobs its previous run left running; serve refuses to start while another process runs under the same name (default: the host name/MLLP_ADDR, e.g. host1/0.0.0.0:2575)"},
	{"MLLP_MAX_CONNS", strconv.Itoa(mllp.DefaultMaxConns), "the most MLLP connections served at once; more wait in the listen backlog until one closes"},
	{"MLLP_MAX_BUFFER_MIB", strconv.Itoa(mllp.DefaultMaxBufferedBytes >> 20), "MiB of message bytes all MLLP connections may hold at once (at least 16, the largest message); a frame beyond waits for room"},
	{"HTTP_ADDR", "127.0.0.1:8080", "HTTP listener: the dashboard (/), /healthz, /readyz, /metrics, /api/v1/"},
	{"COOKIE_SECURE", "auto", "Secure attribute of the dashboard's cookies: auto (when the request came over TLS or X-Forwarded-Proto: https), always or never"},
	{"HOSPITAL_ADDRESSES", "", "comma-separated MSSanté addresses the adoption campaign's letters invite correspondents to write to; empty = SENDER"},
	{"TRUSTED_PROXIES", "", "comma-separated IP addresses or CIDR prefixes of the reverse proxies whose X-Forwarded-For names the client (its right-most address not itself a proxy), for the login throttle, the API's limit of wrong tokens and the audit log; empty = none, the client is the TCP peer"},
	{"API_TOKEN", "", "bearer token required on /api/v1/, at least 32 characters, e.g. `openssl rand -hex 32` (required); an address sending wrong ones waits, up to a minute"},
	{"SENDER", "", "the BAL applicative address, From of every email (required)"},
	{"TRANSPORT", "smtp", "smtp (submission through the BAL applicative) or outbox (.eml files)"},
	{"OUTBOX_DIR", "outbox", "directory of the outbox transport"},
	{"SMTP_ADDR", "", "submission server host:port (required with TRANSPORT=smtp)"},
	{"SMTP_TLS", "starttls", "starttls, tls (implicit) or none"},
	{"SMTP_CA_FILE", "", "PEM CAs trusted for the SMTP server (default: the system's)"},
	{"SMTP_CERT_FILE", "", "client certificate of the BAL applicative: PEM, or a PKCS#12 bundle (.p12, .pfx) with its key"},
	{"SMTP_KEY_FILE", "", "PEM key of that certificate (empty for PKCS#12)"},
	{"SMTP_CERT_PASSWORD", "", "password of the PKCS#12 bundle"},
	{"SMTP_USERNAME", "", "SASL PLAIN user (optional)"},
	{"SMTP_PASSWORD", "", "SASL PLAIN password"},
	{"SMTP_MAX_CONNS", "8", "the most connections to the submission server at once (sends beyond wait for one)"},
	{"IMAP_ADDR", "", "IMAP server of the BAL applicative, where DSNs, MDNs and replies come back; empty = not read"},
	{"IMAP_TLS", "starttls", "starttls, tls or none"},
	{"IMAP_CA_FILE", "", "PEM CAs trusted for the IMAP server (default: the system's)"},
	{"IMAP_USERNAME", "", "IMAP user (required with IMAP_ADDR)"},
	{"IMAP_PASSWORD", "", "IMAP password"},
	{"DPI_ACK_ADDR", "", "MLLP host:port of the DPI for the business acks it asks for (ZAM^Z02 delivered, ZAM^Z03 read); empty = off"},
	{"DPI_ACK_APPLICATION", "", "MSH-3 of the ZAM: this service as the DPI knows it; empty = the MSH-5 of the DPI's message (else MSSDISPATCH)"},
	{"DPI_ACK_FACILITY", "", "MSH-4 of the ZAM; empty = the MSH-6 of the DPI's message"},
	{"FINESS", "", "the hospital's FINESS (9 characters): custodian of the CDA built around a report sent as a bare PDF"},
	{"ORGANISATION", "", "the hospital's name, with FINESS"},
	{"NIL", "mssdispatch", "product reference written in the X-MSS-NIL header of every email (printable ASCII)"},
	{"SOURCE_OID", "", "OID of the sending organisation, sourceId of the XDM submission set (required with TRANSPORT=smtp; with outbox, a demo OID)"},
	{"PATIENT_NO_REPLY", "false", "true: emails to patients carry X-MSS-MES: FIN (the patient is asked not to reply)"},
	{"FALLBACK_RECIPIENTS", "false", "true: send to correspondents listed outside PRT RCT (ROL, PV1-8, OBR-28, PD1-4) when a message has no PRT RCT"},
	{"DIRECTORY_SOURCE", "", "file path or https:// URL of the Extraction_Correspondance_MSSante (.txt or .zip) re-imported on DIRECTORY_SYNC_CRON; empty = not synced"},
	{"WHITELIST_SOURCE", "", "file path or https:// URL of the MSSanté whitelist XML re-imported on DIRECTORY_SYNC_CRON; empty = not synced"},
	{"DIRECTORY_SYNC_CRON", "30 4 * * *", "when to re-import the directory and whitelist (five-field cron spec, local time)"},
	{"LETTERHEAD", "", "the letterhead's lines under ORGANISATION on paper letters, separated by | (address, phone, service)"},
	{"LETTERHEAD_LOGO", "", "PNG or JPEG file of the logo printed on paper letters; empty = none"},
	{"PAPER_BATCH_CRON", defaultPaperBatchCron, "when to put the letters to print in batches, one per service (five-field cron spec, local time)"},
	{"PAPER_DIR", "", "directory where each batch's PDF is also written (a printer's hot folder); empty = download from the dashboard only"},
	{"RETENTION_DAYS", "90", "days after which the bytes of a report's document are purged, once no delivery needs them, and those of quarantined messages (at least 7)"},
	{"AUDIT_RETENTION_DAYS", strconv.Itoa(audit.DefaultRetentionDays), "days after which the audit log's entries are purged (at least 183; CNIL: six months to a year)"},
	{"RETENTION_CRON", defaultRetentionCron, "when to purge them (five-field cron spec, local time)"},
	{"WORKERS", "20", "jobs worked at once by this instance (sends, resolutions, imports)"},
	{"SEND_GIVE_UP_AFTER", "48h", "how long an email may wait through temporary failures (4xx, network) before it fails and its fallback applies"},
	{"SEND_RETRY_BACKOFF", "30s", "how long a domain, or the SMTP server, is left alone after a temporary failure; doubles with each further one, up to 30 times this"},
	{"SEND_PROBE_INTERVAL", "5s", "how often a domain, or the SMTP server, blocked after a temporary failure is probed (EHLO; a domain's: MAIL FROM, RCPT TO, RSET) by one instance: the first probe passed lifts the block and its emails go at once"},
	{"JOB_TIMEOUT", "2m", "the longest a job may run (some have their own: the directory sync and the retention purge, 10 minutes)"},
	{"JOB_RESCUE_AFTER", "15m", "how long a job may stay running before it is worked again, as after a crash of its instance that does not restart (at least JOB_TIMEOUT, and more than 10 minutes in production)"},
	{"HL7_CHARSET", "UNICODE UTF-8", "charset assumed when MSH-18 is empty: UNICODE UTF-8, 8859/1 or 8859/15"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
}

// env reads the configuration from the process environment.
type env struct {
	lookup func(string) (string, bool)
}

func osEnv() env { return env{lookup: os.LookupEnv} }

// get returns MSSDISPATCH_<name>, or its default.
func (e env) get(name string) string {
	for _, v := range envVars {
		if v.name == name {
			if s, ok := e.lookup("MSSDISPATCH_" + name); ok && s != "" {
				return strings.TrimSpace(s)
			}
			return v.def
		}
	}
	panic("undeclared environment variable " + name)
}

// printEnv writes the environment variables, their defaults and what they
// are for as a table.
func printEnv(w io.Writer) error {
	t := newTable(w)
	for _, v := range envVars {
		def := v.def
		if def != "" {
			def = "[" + def + "]"
		}
		t.printf("  MSSDISPATCH_%s\t%s\t%s\n", v.name, def, v.doc)
	}
	return t.done()
}
