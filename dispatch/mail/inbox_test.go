package mail_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/imaptest"
)

// deliver appends messages with these subjects to the INBOX.
func deliver(t *testing.T, srv *imaptest.Server, subjects ...string) {
	t.Helper()
	for _, s := range subjects {
		srv.Deliver(t, fmt.Sprintf("From: mailer-daemon@op.example\r\nTo: bal@ch-demo.mssante.fr\r\nSubject: %s\r\n\r\nbody\r\n", s))
	}
}

// recorder is a Handler that records the subjects it saw; subjects starting
// with "unknown" are Unknown, "fail" fails.
type recorder struct {
	mu   sync.Mutex
	seen []string
	fail bool
}

func (r *recorder) handle(_ context.Context, raw []byte) (mail.Verdict, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	subject := ""
	for line := range strings.SplitSeq(string(raw), "\r\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			subject = s
		}
	}
	if r.fail {
		return 0, errors.New("database down")
	}
	r.seen = append(r.seen, subject)
	if strings.HasPrefix(subject, "unknown") {
		return mail.Unknown, nil
	}
	return mail.Processed, nil
}

func (r *recorder) subjects() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestInboxDrain(t *testing.T) {
	t.Parallel()
	srv := imaptest.Start(t)
	deliver(t, srv, "dsn 1", "unknown 2", "mdn 3")
	cp, rec := &imaptest.Checkpoint{}, &recorder{}
	in, err := mail.NewInbox(mail.InboxConfig{Addr: srv.Addr, TLS: mail.TLSNone, Username: imaptest.Username, Password: imaptest.Password}, cp, rec.handle, nil)
	require.NoError(t, err)

	n, err := in.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []string{"dsn 1", "unknown 2", "mdn 3"}, rec.subjects(), "in UID order")
	require.Equal(t, map[string]uint32{"INBOX": 0, "Traites": 2, "Inconnus": 1}, srv.Counts(t, "INBOX", "Traites", "Inconnus"))
	require.Equal(t, uint32(3), cp.LastUID())

	// Nothing new: nothing processed again.
	n, err = in.Drain(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)

	// A failing handler leaves the message and the checkpoint where they are.
	deliver(t, srv, "dsn 4")
	rec.fail = true
	_, err = in.Drain(context.Background())
	require.ErrorContains(t, err, "database down")
	require.Equal(t, uint32(3), cp.LastUID())
	require.Equal(t, uint32(1), srv.Counts(t, "INBOX", "Traites", "Inconnus")["INBOX"])
	rec.fail = false
	n, err = in.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, uint32(4), cp.LastUID())

	// A checkpoint of another UIDVALIDITY (the mailbox was rebuilt) starts over.
	deliver(t, srv, "dsn 5")
	require.NoError(t, cp.SaveCheckpoint(context.Background(), "INBOX", 12345, cp.LastUID()))
	n, err = in.Drain(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n, "the INBOX holds only the new message")
}

// TestInboxRunIdle checks that Run gets new messages as they arrive (IDLE)
// and stops when its context ends.
func TestInboxRunIdle(t *testing.T) {
	t.Parallel()
	srv := imaptest.Start(t)
	rec := &recorder{}
	cp := &imaptest.Checkpoint{}
	in, err := mail.NewInbox(mail.InboxConfig{Addr: srv.Addr, TLS: mail.TLSNone, Username: imaptest.Username, Password: imaptest.Password,
		PollInterval: time.Hour}, cp, rec.handle, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	// Run has read the empty mailbox and idles: the server is to announce
	// what comes next.
	require.Eventually(t, func() bool { return srv.Idling() > 0 }, 10*time.Second, 5*time.Millisecond, "Run idles")
	deliver(t, srv, "dsn a")
	require.Eventually(t, func() bool { return len(rec.subjects()) == 1 }, 10*time.Second, 20*time.Millisecond,
		"a new message is read at once, not at the next poll")
	deliver(t, srv, "dsn b")
	require.Eventually(t, func() bool { return len(rec.subjects()) == 2 }, 10*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestNewInboxErrors(t *testing.T) {
	t.Parallel()
	h := (&recorder{}).handle
	for name, cfg := range map[string]mail.InboxConfig{
		"no address":  {Username: "u"},
		"no username": {Addr: "imap.example:143"},
		"no port":     {Addr: "imap.example", Username: "u"},
		"bad tls":     {Addr: "imap.example:143", Username: "u", TLS: "ssl"},
		"missing CA":  {Addr: "imap.example:143", Username: "u", CAFile: "/nonexistent.pem"},
	} {
		_, err := mail.NewInbox(cfg, &imaptest.Checkpoint{}, h, nil)
		require.Error(t, err, name)
	}
}
