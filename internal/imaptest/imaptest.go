// Package imaptest runs a real IMAP server in the test process (go-imap's
// in-memory server, IMAP4rev2: IDLE, MOVE, UIDPLUS) holding one mailbox,
// and keeps a reader's checkpoint in memory (Checkpoint), for the tests of
// the acknowledgement reader.
package imaptest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Credentials of the server's one user.
const (
	Username = "bal"
	Password = "pw"
)

// Server is a running IMAP server without TLS on loopback.
type Server struct {
	// Addr is its host:port.
	Addr string
	// idling counts the sessions in IDLE now.
	idling *atomic.Int32
}

// Idling returns how many sessions are in IDLE now: a reader waiting for
// the server to announce new mail.
func (s *Server) Idling() int { return int(s.idling.Load()) }

// session is a session of the in-memory server that counts itself in
// idling while it is in IDLE.
type session struct {
	imapserver.SessionIMAP4rev2
	idling *atomic.Int32
}

func (s session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idling.Add(1)
	defer s.idling.Add(-1)
	return s.SessionIMAP4rev2.Idle(w, stop)
}

// Start starts a server with the user Username, stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(Username, Password)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	mem.AddUser(user)
	idling := new(atomic.Int32)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return session{SessionIMAP4rev2: mem.NewSession().(imapserver.SessionIMAP4rev2), idling: idling}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       discard{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: listen: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Server{Addr: ln.Addr().String(), idling: idling}
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// Deliver appends raw messages to the INBOX, as the mail server delivers them.
func (s *Server) Deliver(t testing.TB, raws ...string) {
	t.Helper()
	c := s.login(t)
	defer func() { _ = c.Close() }()
	for _, raw := range raws {
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write([]byte(raw)); err != nil {
			t.Fatalf("imaptest: append: %v", err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatalf("imaptest: append: %v", err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("imaptest: append: %v", err)
		}
	}
}

// Counts returns the number of messages of each of the named mailboxes that exists.
func (s *Server) Counts(t testing.TB, mailboxes ...string) map[string]uint32 {
	t.Helper()
	c := s.login(t)
	defer func() { _ = c.Close() }()
	out := map[string]uint32{}
	for _, name := range mailboxes {
		if st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait(); err == nil {
			out[name] = *st.NumMessages
		}
	}
	return out
}

func (s *Server) login(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatalf("imaptest: dial: %v", err)
	}
	if err := c.Login(Username, Password).Wait(); err != nil {
		_ = c.Close()
		t.Fatalf("imaptest: login: %v", err)
	}
	return c
}

// Checkpoint is a mailbox checkpoint in memory, for the reader under test
// (a mail.Checkpoint): the UIDVALIDITY and the last UID it processed.
type Checkpoint struct {
	mu             sync.Mutex
	validity, last uint32
}

// LoadCheckpoint returns the checkpoint, whatever the mailbox.
func (c *Checkpoint) LoadCheckpoint(context.Context, string) (uidValidity, lastUID uint32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.validity, c.last, nil
}

// SaveCheckpoint records the checkpoint, whatever the mailbox.
func (c *Checkpoint) SaveCheckpoint(_ context.Context, _ string, uidValidity, lastUID uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.validity, c.last = uidValidity, lastUID
	return nil
}

// LastUID returns the last UID recorded.
func (c *Checkpoint) LastUID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
