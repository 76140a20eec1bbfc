package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// InboxConfig configures the reading of the BAL applicative's mailbox, where
// the delivery and read notifications of the emails sent come back.
type InboxConfig struct {
	// Addr is the IMAP server's host:port. Required.
	Addr string
	// TLS is "starttls" (default), "tls" (implicit TLS) or "none"; TLS >= 1.2.
	TLS string
	// CAFile is a PEM bundle of CAs to trust for the server; the system pool when empty.
	CAFile string
	// Username and Password log in. Required.
	Username, Password string
	// Mailbox is read. Defaults to INBOX.
	Mailbox string
	// ProcessedFolder receives the messages handled; UnknownFolder those the
	// handler did not recognise. Created when missing. Default "Traites" and
	// "Inconnus".
	ProcessedFolder, UnknownFolder string
	// PollInterval is how often the mailbox is read when the server has no
	// IDLE; with IDLE, new messages are read as they arrive. Defaults to 1 minute.
	PollInterval time.Duration
	// Timeout bounds the connection and each command. Defaults to 60 seconds.
	Timeout time.Duration
}

// Verdict is what a Handler made of a message.
type Verdict int

// Verdicts of a Handler.
const (
	// Processed messages go to InboxConfig.ProcessedFolder.
	Processed Verdict = iota
	// Unknown messages go to InboxConfig.UnknownFolder.
	Unknown
)

// Handler processes one message of the mailbox. An error leaves the message
// where it is, to be processed again later.
type Handler func(ctx context.Context, raw []byte) (Verdict, error)

// Checkpoint keeps the last UID processed of a mailbox, so that a restart
// neither skips nor reprocesses messages (a store of the caller's).
type Checkpoint interface {
	LoadCheckpoint(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error)
	SaveCheckpoint(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error
}

// Inbox reads a mailbox over IMAP and hands each new message to a handler,
// in UID order, then moves it to a folder and records its UID.
type Inbox struct {
	cfg        InboxConfig
	tls        *tls.Config
	checkpoint Checkpoint
	handler    Handler
	logger     *slog.Logger
}

// NewInbox validates cfg.
func NewInbox(cfg InboxConfig, checkpoint Checkpoint, handler Handler, logger *slog.Logger) (*Inbox, error) {
	if cfg.Addr == "" || cfg.Username == "" {
		return nil, errors.New("mail: IMAP address and username are required")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: IMAP address %q: %w", cfg.Addr, err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("mail: IMAP TLS mode %q: want starttls, tls or none", cfg.TLS)
	}
	if checkpoint == nil || handler == nil {
		return nil, errors.New("mail: inbox checkpoint and handler are required")
	}
	cfg.Mailbox = cmp.Or(cfg.Mailbox, "INBOX")
	cfg.ProcessedFolder = cmp.Or(cfg.ProcessedFolder, "Traites")
	cfg.UnknownFolder = cmp.Or(cfg.UnknownFolder, "Inconnus")
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Minute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: read IMAP CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: no certificate in IMAP CA file %s", cfg.CAFile)
		}
	}
	return &Inbox{cfg: cfg, tls: tc, checkpoint: checkpoint, handler: handler, logger: logger}, nil
}

// Run reads the mailbox until ctx is cancelled: it processes what is there,
// then waits for more (IDLE, else polling every PollInterval), reconnecting
// with a growing pause (up to 5 minutes) after an error. It returns nil when
// ctx is cancelled.
func (in *Inbox) Run(ctx context.Context) error {
	pause := time.Second
	for {
		err := in.session(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // false positive: a cancelled ctx is how Run is stopped, documented to return nil
		}
		in.logger.WarnContext(ctx, "mailbox reading stopped, reconnecting", "addr", in.cfg.Addr, "in", pause, "error", redact.Text(err.Error()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Minute)
	}
}

// Drain connects, processes every new message and disconnects; it is Run
// without the waiting, for a poll from a job or a test.
func (in *Inbox) Drain(ctx context.Context) (int, error) {
	c, _, err := in.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	n, err := in.processNew(ctx, c)
	if err == nil {
		err = c.Logout().Wait()
	}
	return n, err
}

// session is one connection: process, wait, process… until an error.
func (in *Inbox) session(ctx context.Context) error {
	c, newMail, err := in.connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() }) // unblocks a command in flight
	defer stop()
	idle := c.Caps().Has(imap.CapIdle) || c.Caps().Has(imap.CapIMAP4rev2)
	for {
		if _, err := in.processNew(ctx, c); err != nil {
			return err
		}
		if idle {
			if err := waitIdle(ctx, c, newMail); err != nil {
				return err
			}
		} else {
			select {
			case <-ctx.Done():
				_ = c.Logout().Wait()
				return ctx.Err()
			case <-time.After(in.cfg.PollInterval):
			}
		}
		if ctx.Err() != nil {
			_ = c.Logout().Wait()
			return ctx.Err()
		}
	}
}

// connect dials, logs in, creates the folders and selects the mailbox;
// newMail receives a value when the server announces new messages.
func (in *Inbox) connect(ctx context.Context) (*imapclient.Client, <-chan struct{}, error) {
	newMail := make(chan struct{}, 1)
	opts := &imapclient.Options{
		TLSConfig: in.tls,
		Dialer:    &net.Dialer{Timeout: in.cfg.Timeout},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var c *imapclient.Client
	var err error
	switch in.cfg.TLS {
	case TLSImplicit:
		c, err = imapclient.DialTLS(in.cfg.Addr, opts)
	case TLSStartTLS:
		c, err = imapclient.DialStartTLS(in.cfg.Addr, opts)
	default:
		c, err = imapclient.DialInsecure(in.cfg.Addr, opts)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mail: IMAP connect to %s: %w", in.cfg.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.Login(in.cfg.Username, in.cfg.Password).Wait(); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("mail: IMAP login as %s: %w", in.cfg.Username, err)
	}
	for _, folder := range []string{in.cfg.ProcessedFolder, in.cfg.UnknownFolder} {
		if err := c.Create(folder, nil).Wait(); err != nil && !alreadyExists(err) {
			_ = c.Close()
			return nil, nil, fmt.Errorf("mail: IMAP create %s: %w", folder, err)
		}
	}
	return c, newMail, nil
}

// alreadyExists reports whether an IMAP error says the mailbox exists.
func alreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists
}

// processNew selects the mailbox and processes its messages past the
// checkpoint, in UID order; it returns how many it processed.
func (in *Inbox) processNew(ctx context.Context, c *imapclient.Client) (int, error) {
	sel, err := c.Select(in.cfg.Mailbox, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("mail: IMAP select %s: %w", in.cfg.Mailbox, err)
	}
	validity, last, err := in.checkpoint.LoadCheckpoint(ctx, in.cfg.Mailbox)
	if err != nil {
		return 0, err
	}
	if validity != sel.UIDValidity {
		// A new mailbox (or one rebuilt by the server): its UIDs start over.
		validity, last = sel.UIDValidity, 0
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), 0) // last+1:*
	found, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("mail: IMAP search: %w", err)
	}
	uids := found.AllUIDs()
	slices.Sort(uids)
	n := 0
	for _, uid := range uids {
		if uint32(uid) <= last {
			continue // "n:*" always matches the last message
		}
		raw, err := fetchBody(c, uid)
		if err != nil {
			return n, err
		}
		verdict, err := in.handler(ctx, raw)
		if err != nil {
			return n, fmt.Errorf("mail: handle message UID %d: %w", uid, err)
		}
		folder := in.cfg.ProcessedFolder
		if verdict == Unknown {
			folder = in.cfg.UnknownFolder
		}
		if err := moveMessage(c, uid, folder); err != nil {
			return n, err
		}
		if err := in.checkpoint.SaveCheckpoint(ctx, in.cfg.Mailbox, validity, uint32(uid)); err != nil {
			return n, err
		}
		last = uint32(uid)
		n++
	}
	return n, nil
}

// fetchBody returns the whole message uid, without marking it seen.
func fetchBody(c *imapclient.Client, uid imap.UID) ([]byte, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("mail: IMAP fetch UID %d: %w", uid, err)
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("mail: IMAP fetch UID %d: %d messages", uid, len(msgs))
	}
	return msgs[0].FindBodySection(section), nil
}

// moveMessage moves uid to folder: MOVE when the server has it, else COPY,
// \Deleted and UID EXPUNGE (or EXPUNGE).
func moveMessage(c *imapclient.Client, uid imap.UID, folder string) error {
	set := imap.UIDSetNum(uid)
	if c.Caps().Has(imap.CapMove) || c.Caps().Has(imap.CapIMAP4rev2) {
		if _, err := c.Move(set, folder).Wait(); err != nil {
			return fmt.Errorf("mail: IMAP move UID %d to %s: %w", uid, folder, err)
		}
		return nil
	}
	if _, err := c.Copy(set, folder).Wait(); err != nil {
		return fmt.Errorf("mail: IMAP copy UID %d to %s: %w", uid, folder, err)
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("mail: IMAP delete UID %d: %w", uid, err)
	}
	if c.Caps().Has(imap.CapUIDPlus) {
		return c.UIDExpunge(set).Close()
	}
	return c.Expunge().Close()
}

// waitIdle idles until the server announces new messages or ctx ends.
func waitIdle(ctx context.Context, c *imapclient.Client, newMail <-chan struct{}) error {
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("mail: IMAP idle: %w", err)
	}
	select {
	case <-newMail:
	case <-ctx.Done():
	case <-c.Closed():
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("mail: IMAP idle: %w", err)
	}
	return cmd.Wait()
}
