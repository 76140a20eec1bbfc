package mtatest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/mssdispatch/mssdispatch/internal/testcert"
)

// DefaultMailbox is the mailbox created when Options.Mailboxes is empty: the
// BAL applicative of the test hospital.
const DefaultMailbox = "bal@ch-test.mssante.fr"

// DefaultPassword is every mailbox's IMAP password when Options.Password is empty.
const DefaultPassword = "mtatest-secret"

// DeferDomain is a domain whose mail Postfix accepts and then defers forever
// (a "4.4.1" temporary failure), so that a sender asking NOTIFY=DELAY gets a
// delay DSN after Options.DelayWarning.
const DeferDomain = "deferred.mssante.test"

// Paths of the Debian packages' programs.
const (
	postfixBin   = "/usr/sbin/postfix"
	masterBin    = "/usr/lib/postfix/sbin/master"
	dovecotBin   = "/usr/sbin/dovecot"
	imapLoginBin = "/usr/lib/dovecot/imap-login" // package dovecot-imapd
)

// mailUID and mailGID own the Maildirs: Postfix's virtual(8) delivers with
// them and Dovecot's userdb serves them. No account needs to exist.
const (
	mailUID = 5000
	mailGID = 5000
)

// startTimeout bounds the wait for each daemon to listen.
const startTimeout = 15 * time.Second

// Options configures a Server.
type Options struct {
	// Mailboxes are the local addresses that exist; each gets a Maildir and
	// an IMAP login equal to the address. Their domains are the domains the
	// server delivers locally: mail to any other address of these domains is
	// accepted at RCPT time and then bounced by Postfix with a DSN. Defaults to
	// DefaultMailbox.
	Mailboxes []string
	// Password is the IMAP password of every mailbox. Defaults to DefaultPassword.
	Password string
	// DelayWarning is Postfix's delay_warning_time, rounded to seconds: how
	// long a message may stay deferred before a delay DSN goes to its sender.
	// Defaults to 2s.
	DelayWarning time.Duration
}

// Server is a running Postfix and Dovecot pair.
type Server struct {
	// SubmissionAddr is the host:port of the SMTP listener: STARTTLS is
	// mandatory (TLS >= 1.2) and a client certificate signed by CA is
	// required before any command, after which any destination is relayed.
	SubmissionAddr string
	// IMAPAddr is the host:port of the IMAP listener: STARTTLS, then LOGIN or
	// AUTHENTICATE PLAIN with a mailbox address and Password.
	IMAPAddr string
	// CA signed the servers' certificate; it issues the clients' certificates.
	CA *testcert.CA
	// Domain is the domain of the first mailbox.
	Domain string
	// Domains are all the domains delivered locally, Domain first.
	Domains []string
	// Mailboxes are the existing addresses, lower-cased.
	Mailboxes []string
	// Password is every mailbox's IMAP password.
	Password string
	// Dir is the server's private directory (configuration, queue, Maildirs, logs).
	Dir string

	pfConf   string // Postfix config_directory
	maillog  string // Postfix log file
	dcLog    string // Dovecot log file
	vmail    string // virtual_mailbox_base
	dovecot  *exec.Cmd
	dcDone   chan struct{} // closed when Dovecot's master has exited
	dcErr    error         // its exit status, once dcDone is closed
	stopOnce sync.Once

	watchdog   *exec.Cmd
	watchdogIn io.WriteCloser
}

// Start configures and starts a Postfix and a Dovecot for t, waits until both
// listen, and stops them and removes their directory when t ends. It fails t
// with a hint if the packages are missing or the test does not run as root.
//
// Should the test binary die first (a -timeout panic), a watchdog process
// stops both daemons and removes the directory.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := newServer(t, opts)
		if err != nil {
			t.Fatalf("mtatest: %v", err)
		}
		t.Cleanup(func() { s.stop(t) })
		err = s.start()
		if err == nil {
			return s
		}
		if errors.Is(err, errPortTaken) && attempt < 3 {
			// Another process took a port between freePort and bind: new ports.
			s.stop(t)
			continue
		}
		t.Fatalf("mtatest: %v", err)
	}
}

// errPortTaken marks a start that failed because a port was in use.
var errPortTaken = errors.New("port already in use")

func (s *Server) start() error {
	if err := s.startPostfix(); err != nil {
		return portTaken(fmt.Errorf("%w\n%s", err, tail(s.maillog)))
	}
	if err := s.startDovecot(); err != nil {
		return portTaken(fmt.Errorf("%w\n%s", err, tail(s.dcLog)))
	}
	return s.startWatchdog()
}

// portTaken wraps err with errPortTaken if its text says a bind failed.
func portTaken(err error) error {
	if strings.Contains(err.Error(), "Address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// ClientCert issues a TLS client certificate with common name cn (the BAL
// applicative's), signed by the server's CA and so accepted for submission.
func (s *Server) ClientCert(t testing.TB, cn string) testcert.Pair {
	t.Helper()
	return s.CA.Client(t, cn)
}

// TLSConfig returns a client configuration that trusts the servers'
// certificate (issued for "localhost" and 127.0.0.1) and presents certs, if any.
func (s *Server) TLSConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		RootCAs:      s.CA.Pool,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS12,
		Certificates: certs,
	}
}

// Maildir returns the Maildir of the mailbox address (it exists once Start returns).
func (s *Server) Maildir(address string) string {
	local, domain, _ := strings.Cut(strings.ToLower(address), "@")
	return filepath.Join(s.vmail, domain, local)
}

// Logs returns the end of Postfix's and Dovecot's logs, for a failing test's message.
func (s *Server) Logs() string {
	return "postfix:\n" + tail(s.maillog) + "\ndovecot:\n" + tail(s.dcLog) + "\n" + tail(filepath.Join(s.Dir, "dovecot.out"))
}

func newServer(t testing.TB, opts Options) (*Server, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root: Postfix's master daemon refuses other users")
	}
	for _, bin := range []string{postfixBin, masterBin, dovecotBin, imapLoginBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s is missing: run .ci/run, or apt-get install postfix dovecot-imapd", bin)
		}
	}
	s := &Server{CA: testcert.NewCA(t), Password: opts.Password}
	if s.Password == "" {
		s.Password = DefaultPassword
	}
	mailboxes := opts.Mailboxes
	if len(mailboxes) == 0 {
		mailboxes = []string{DefaultMailbox}
	}
	for _, m := range mailboxes {
		m = strings.ToLower(strings.TrimSpace(m))
		local, domain, ok := strings.Cut(m, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(m, " \t/\\:\"") {
			return nil, fmt.Errorf("mailbox %q: want local@domain", m)
		}
		if !slices.Contains(s.Mailboxes, m) {
			s.Mailboxes = append(s.Mailboxes, m)
		}
		if !slices.Contains(s.Domains, domain) {
			s.Domains = append(s.Domains, domain)
		}
	}
	s.Domain = s.Domains[0]
	delayWarning := opts.DelayWarning
	if delayWarning <= 0 {
		delayWarning = 2 * time.Second
	}

	// A short path: Dovecot's unix sockets live under it (108 bytes at most).
	dir, err := os.MkdirTemp("", "mta")
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // runs after stop, registered later
	// Postfix's daemons run as user postfix and Dovecot's as dovecot and
	// dovenull: they must be able to walk into the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	s.pfConf = filepath.Join(dir, "postfix")
	s.maillog = filepath.Join(dir, "maillog")
	s.dcLog = filepath.Join(dir, "dovecot.log")
	s.vmail = filepath.Join(dir, "vmail")
	tlsDir := filepath.Join(dir, "tls")
	dcDir := filepath.Join(dir, "dovecot")
	// Postfix's "postfix start" creates the queue's subdirectories and
	// data_directory (post-install create-missing), not queue_directory itself.
	for _, d := range []string{s.pfConf, filepath.Join(dir, "postfix-queue"), tlsDir, dcDir, filepath.Join(dcDir, "run"), filepath.Join(dcDir, "state"), s.vmail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(tlsDir, 0o700); err != nil {
		return nil, err
	}

	// The server certificate, copied in: the CA's directory is private to the test.
	pair := s.CA.Server(t)
	certFile, keyFile, caFile := filepath.Join(tlsDir, "server.pem"), filepath.Join(tlsDir, "server-key.pem"), filepath.Join(tlsDir, "ca.pem")
	for src, dst := range map[string]string{pair.CertFile: certFile, pair.KeyFile: keyFile, s.CA.File: caFile} {
		if err := copyFile(src, dst); err != nil {
			return nil, err
		}
	}

	// Maildirs, owned by the mail uid so that both servers can write them.
	if err := os.Chown(s.vmail, mailUID, mailGID); err != nil {
		return nil, err
	}
	var vmailbox, passwd strings.Builder
	for _, m := range s.Mailboxes {
		local, domain, _ := strings.Cut(m, "@")
		for _, d := range []string{
			filepath.Join(s.vmail, domain),
			filepath.Join(s.vmail, domain, local),
			filepath.Join(s.vmail, domain, local, "cur"),
			filepath.Join(s.vmail, domain, local, "new"),
			filepath.Join(s.vmail, domain, local, "tmp"),
		} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
			if err := os.Chown(d, mailUID, mailGID); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(&vmailbox, "%s %s/%s/\n", m, domain, local)
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", m, s.Password)
	}

	subPort, err := freePort()
	if err != nil {
		return nil, err
	}
	imapPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.SubmissionAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(subPort))
	s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapPort))

	data := map[string]any{
		"Dir":          dir,
		"Conf":         s.pfConf,
		"Maillog":      s.maillog,
		"VMail":        s.vmail,
		"Domain":       s.Domain,
		"Domains":      strings.Join(s.Domains, ", "),
		"DeferDomain":  DeferDomain,
		"SubPort":      subPort,
		"IMAPPort":     imapPort,
		"Cert":         certFile,
		"Key":          keyFile,
		"CA":           caFile,
		"UID":          mailUID,
		"GID":          mailGID,
		"DelayWarning": max(1, int(delayWarning.Round(time.Second)/time.Second)),
		"DovecotDir":   dcDir,
		"DovecotLog":   s.dcLog,
		"Instance":     filepath.Base(dir),
		"Greeting":     s.imapGreeting(),
	}
	files := []struct {
		path string
		tmpl *template.Template
		text string
	}{
		{path: filepath.Join(s.pfConf, "main.cf"), tmpl: mainCF},
		{path: filepath.Join(s.pfConf, "master.cf"), tmpl: masterCF},
		{path: filepath.Join(s.pfConf, "transport"), tmpl: transportMap},
		{path: filepath.Join(s.pfConf, "vmailbox"), text: vmailbox.String()},
		{path: filepath.Join(dcDir, "dovecot.conf"), tmpl: dovecotConf},
		{path: filepath.Join(dcDir, "passwd"), text: passwd.String()},
	}
	for _, f := range files {
		text := f.text
		if f.tmpl != nil {
			var b bytes.Buffer
			if err := f.tmpl.Execute(&b, data); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Base(f.path), err)
			}
			text = b.String()
		}
		if err := os.WriteFile(f.path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		// Postfix's programs wait, 300ms at a time, until main.cf is a
		// few seconds old (a guard against half-written files): backdate.
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(f.path, old, old); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startPostfix runs "postfix start", which checks the instance (creating
// the queue's subdirectories) and returns once the master daemon has opened
// its listeners, then checks that the submission port answers.
func (s *Server) startPostfix() error {
	cmd := exec.Command(postfixBin, "-c", s.pfConf, "start")
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postfix -c %s start: %w\n%s", s.pfConf, err, out)
	}
	return waitListen(s.SubmissionAddr, "ESMTP Postfix", nil, nil)
}

// startDovecot runs Dovecot's master in the foreground as a child process.
func (s *Server) startDovecot() error {
	conf := filepath.Join(s.Dir, "dovecot", "dovecot.conf")
	outPath := filepath.Join(s.Dir, "dovecot.out")
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }() // the child has its own descriptor
	cmd := exec.Command(dovecotBin, "-F", "-c", conf)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dovecot -F -c %s: %w", conf, err)
	}
	s.dovecot = cmd
	s.dcDone = make(chan struct{})
	go func() {
		s.dcErr = cmd.Wait()
		close(s.dcDone)
	}()
	if err := waitListen(s.IMAPAddr, s.imapGreeting(), s.dcDone, &s.dcErr); err != nil {
		return fmt.Errorf("dovecot -F -c %s: %w\n%s", conf, err, tail(outPath))
	}
	return nil
}

// imapGreeting is Dovecot's greeting, unique to this server.
func (s *Server) imapGreeting() string {
	return "Dovecot ready (mtatest " + filepath.Base(s.Dir) + ")"
}

// startWatchdog starts a shell that waits for its standard input to close,
// which happens when the test process exits, however it exits; it then
// stops both daemons and removes the directory. stop kills it first.
func (s *Server) startWatchdog() error {
	const script = `read _
pid=$(sed 1q "$1/postfix-queue/pid/master.pid" 2>/dev/null) && kill -TERM $pid 2>/dev/null
kill -TERM "$2" 2>/dev/null
sleep 3
rm -rf "$1"`
	cmd := exec.Command("/bin/sh", "-c", script, "mtatest-watchdog", s.Dir, strconv.Itoa(s.dovecot.Process.Pid))
	cmd.Env = cleanEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	s.watchdog, s.watchdogIn = cmd, stdin
	return nil
}

// stop stops Dovecot and Postfix, once; it logs their logs if t failed.
func (s *Server) stop(t testing.TB) {
	s.stopOnce.Do(func() { s.doStop(t) })
}

func (s *Server) doStop(t testing.TB) {
	if t.Failed() {
		t.Logf("mtatest: logs of %s\n%s", s.Dir, s.Logs())
	}
	if s.watchdog != nil {
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
		_ = s.watchdogIn.Close()
	}
	if s.dovecot != nil {
		_ = s.dovecot.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.dcDone:
		case <-time.After(5 * time.Second):
			_ = s.dovecot.Process.Kill()
			<-s.dcDone
			t.Logf("mtatest: dovecot killed after 5s")
		}
	}
	if err := s.stopPostfix(); err != nil {
		t.Errorf("mtatest: %v", err)
	}
}

// stopPostfix sends SIGTERM to the master daemon (which terminates its
// children) and waits until its lock is free, like "postfix stop" but
// without its one-second sleep.
func (s *Server) stopPostfix() error {
	pidFile := filepath.Join(s.Dir, "postfix-queue", "pid", "master.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("postfix: bad pid file %s: %q", pidFile, b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("postfix: kill master %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// "master -t" succeeds when no master holds this instance's lock.
		test := exec.Command(masterBin, "-c", s.pfConf, "-t")
		test.Env = cleanEnv()
		if test.Run() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return fmt.Errorf("postfix: master %d still running 10s after SIGTERM; killed its process group", pid)
}

// waitListen waits until addr answers with a first line containing
// greeting (proof that the daemon, not a squatter of its port, listens), or
// done is closed (the daemon exited with *exitErr).
func waitListen(addr, greeting string, done <-chan struct{}, exitErr *error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		line, err := readGreeting(addr)
		if err == nil && strings.Contains(line, greeting) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("greeting %q, want %q", line, greeting)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no daemon answers on %s after %s: %w", addr, startTimeout, err)
		}
		select {
		case <-done:
			if *exitErr == nil {
				return fmt.Errorf("exited with status 0 before listening on %s", addr)
			}
			return fmt.Errorf("exited before listening on %s: %w", addr, *exitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readGreeting connects to addr and returns the first line it sends.
func readGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv is the daemons' environment: no MAIL_CONFIG or the like
// inherited from the caller.
func cleanEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// mainCF is Postfix's main.cf: one instance in its own directories, no DNS,
// no local(8) delivery, the served domains delivered by virtual(8).
var mainCF = template.Must(template.New("main.cf").Parse(`# Written by internal/mtatest for one test.
compatibility_level = 3.6
queue_directory = {{.Dir}}/postfix-queue
data_directory = {{.Dir}}/postfix-data
maillog_file = {{.Maillog}}
maillog_file_prefixes = {{.Dir}}
mail_owner = postfix
setgid_group = postdrop
multi_instance_enable = no
multi_instance_directories =

myhostname = mx.{{.Domain}}
mydomain = {{.Domain}}
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relayhost =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
readme_directory = no
notify_classes =
smtputf8_enable = no

# Served domains: existing mailboxes only, but an unknown address is
# accepted at RCPT time and bounced by virtual(8) ("User unknown in virtual
# mailbox table"), so the sender gets a real failure DSN.
virtual_mailbox_domains = {{.Domains}}
virtual_mailbox_base = {{.VMail}}
virtual_mailbox_maps = texthash:{{.Conf}}/vmailbox
virtual_alias_maps =
virtual_uid_maps = static:{{.UID}}
virtual_gid_maps = static:{{.GID}}
virtual_minimum_uid = 100
virtual_mailbox_limit = 0
smtpd_reject_unlisted_recipient = no
smtpd_reject_unlisted_sender = no
transport_maps = texthash:{{.Conf}}/transport
message_size_limit = 41943040

# Submission: mandatory TLS >= 1.2 and a client certificate from the test CA.
smtpd_tls_chain_files = {{.Key}}, {{.Cert}}
smtpd_tls_CAfile = {{.CA}}
smtpd_tls_security_level = encrypt
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_ask_ccert = yes
smtpd_tls_req_ccert = yes
smtpd_tls_ccert_verifydepth = 5
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_session_cache_database =
smtp_tls_security_level = none
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_tls_all_clientcerts, reject_unauth_destination
smtpd_recipient_restrictions =

# Fast queue: retries every second, a delay DSN after {{.DelayWarning}}s.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = {{.DelayWarning}}s
# Whole days: the delay DSN's default text states the lifetime in days.
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
`))

// masterCF is Postfix's master.cf: the submission listener and the internal
// services, none chrooted.
var masterCF = template.Must(template.New("master.cf").Parse(`# Written by internal/mtatest for one test.
127.0.0.1:{{.SubPort}} inet n - n - - smtpd
  -o syslog_name=postfix/submission
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`))

// transportMap defers every message to DeferDomain.
var transportMap = template.Must(template.New("transport").Parse(`{{.DeferDomain}} retry:4.4.1 mtatest: delivery to this domain is always deferred
`))

// dovecotConf is Dovecot's whole configuration: IMAP only, STARTTLS
// required before login, passwords from a passwd-file, the Postfix Maildirs.
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# Written by internal/mtatest for one test.
instance_name = {{.Instance}}
base_dir = {{.DovecotDir}}/run
state_dir = {{.DovecotDir}}/state
log_path = {{.DovecotLog}}
info_log_path = {{.DovecotLog}}
protocols = imap
# No stats process: a login process waiting for its handshake delays shutdown by 5s.
stats_writer_socket_path =
listen = 127.0.0.1
shutdown_clients = yes
login_greeting = {{.Greeting}}

ssl = required
ssl_cert = <{{.Cert}}
ssl_key = <{{.Key}}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login

first_valid_uid = {{.UID}}
last_valid_uid = {{.UID}}
first_valid_gid = {{.GID}}
last_valid_gid = {{.GID}}
mail_location = maildir:{{.VMail}}/%d/%n

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{.DovecotDir}}/passwd
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.GID}} home={{.VMail}}/%d/%n
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.IMAPPort}}
  }
  inet_listener imaps {
    port = 0
  }
}
`))
