package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/testcert"
)

// newClient returns a Client of addr with cfg's other fields, closed at the end of the test.
func newClient(t *testing.T, addr string, cfg Config) *Client {
	t.Helper()
	cfg.Addr = addr
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serveOn serves l with h until the end of the test and returns the server.
func serveOn(t *testing.T, l net.Listener, h Handler) *Server {
	t.Helper()
	srv := &Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// remotes records the client addresses of the messages a server handled.
type remotes struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (r *remotes) add(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.addrs == nil {
		r.addrs = map[string]bool{}
	}
	r.addrs[RemoteAddr(ctx).String()] = true
}

func (r *remotes) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.addrs)
}

// sendErr sends msg expecting a *SendError, which it returns.
func sendErr(t *testing.T, ctx context.Context, c *Client, msg string) *SendError {
	t.Helper()
	resp, err := c.Send(ctx, []byte(msg))
	require.Error(t, err, "response %q", resp)
	var se *SendError
	require.ErrorAs(t, err, &se)
	require.Equal(t, se.MaybeDelivered, MaybeDelivered(err))
	return se
}

// waitConnUnusable waits until c noticed that the server closed, or wrote on, its idle connection.
func waitConnUnusable(t *testing.T, c *Client) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.conn != nil && !c.conn.idle()
	}, 5*time.Second, 5*time.Millisecond)
}

func TestClientSend(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		if string(msg) == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return append([]byte("ACK:"), msg...)
	})})
	t.Cleanup(func() { close(release) })

	t.Run("exchange", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		require.Equal(t, "ACK:1", send(t, c, "1"))
		require.Equal(t, "ACK:2", send(t, c, "2"))
	})
	t.Run("lazy dial", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, b.addr, Config{})
		require.Nil(t, c.conn, "NewClient does not dial")
		require.Equal(t, "ACK:1", send(t, c, "1"))
	})
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		se := sendErr(t, ctx, c, "slow")
		require.ErrorIs(t, se, context.DeadlineExceeded)
		require.Equal(t, "read", se.Op)
		require.True(t, se.MaybeDelivered, "written, not answered")
		require.True(t, se.Temporary())
		require.Less(t, time.Since(start), 3*time.Second)

		require.Equal(t, "ACK:2", send(t, c, "2"), "the next Send dials again")
	})
	t.Run("config timeout", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, b.addr, Config{Timeout: 100 * time.Millisecond})
		start := time.Now()
		se := sendErr(t, context.Background(), c, "slow")
		require.ErrorIs(t, se, context.DeadlineExceeded)
		require.True(t, se.MaybeDelivered)
		require.Less(t, time.Since(start), 3*time.Second)
		require.Equal(t, "ACK:2", send(t, c, "2"))
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		se := sendErr(t, ctx, c, "slow")
		require.ErrorIs(t, se, context.Canceled)
		require.True(t, se.MaybeDelivered)
	})
	t.Run("context already done", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		se := sendErr(t, ctx, c, "1")
		require.ErrorIs(t, se, context.Canceled)
		require.False(t, se.MaybeDelivered)
		require.Equal(t, "ACK:2", send(t, c, "2"), "nothing was sent, the connection is kept")
	})
	t.Run("context ends while waiting for the connection", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		go func() { _, _ = c.Send(context.Background(), []byte("slow")) }()
		require.Eventually(t, func() bool { return len(c.sem) == 1 }, 5*time.Second, time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		se := sendErr(t, ctx, c, "1")
		require.Equal(t, "wait", se.Op)
		require.ErrorIs(t, se, context.DeadlineExceeded)
		require.False(t, se.MaybeDelivered)
	})
	t.Run("invalid content", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		_, err := c.Send(context.Background(), []byte("a\x1cb"))
		require.ErrorIs(t, err, ErrInvalidContent)
		require.False(t, MaybeDelivered(err))
		require.Equal(t, "ACK:2", send(t, c, "2"))
	})
}

func TestClientReconnectsAfterServerDroppedConnection(t *testing.T) {
	t.Parallel()

	var seen remotes
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		seen.add(ctx)
		if string(msg) == "boom" {
			panic("the server closes the connection without answering")
		}
		return append([]byte("ACK:"), msg...)
	})})
	c := newClient(t, b.addr, Config{})
	require.Equal(t, "ACK:1", send(t, c, "1"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	se := sendErr(t, ctx, c, "boom")
	require.Equal(t, "read", se.Op)
	require.ErrorIs(t, se, io.ErrUnexpectedEOF)
	require.True(t, se.MaybeDelivered, "the server read the message before closing")
	require.True(t, se.Temporary())
	require.Nil(t, c.conn, "the broken connection is closed and forgotten")

	require.Equal(t, "ACK:2", send(t, c, "2"))
	require.Equal(t, "ACK:3", send(t, c, "3"))
	require.Equal(t, 2, seen.count(), "one new connection, then kept")
}

func TestClientReconnectsAfterIdleTimeout(t *testing.T) {
	t.Parallel()

	var seen remotes
	b := setup(t, &Server{IdleTimeout: 50 * time.Millisecond, Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		seen.add(ctx)
		return append([]byte("ACK:"), msg...)
	})})
	c := newClient(t, b.addr, Config{})
	require.Equal(t, "ACK:1", send(t, c, "1"))
	waitConnUnusable(t, c) // the server closed the idle connection

	require.Equal(t, "ACK:2", send(t, c, "2"), "noticed before writing: no error")
	require.Equal(t, 2, seen.count())
}

func TestClientServerRestartedOnSameAddress(t *testing.T) {
	t.Parallel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	tagged := func(tag string) Handler {
		return HandlerFunc(func(_ context.Context, msg []byte) []byte { return fmt.Appendf(nil, "%s:%s", tag, msg) })
	}

	// No server yet: NewClient succeeds, Send fails at dial and nothing is delivered.
	c := newClient(t, addr, Config{DialTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	se := sendErr(t, ctx, c, "0")
	require.Equal(t, "dial", se.Op)
	require.False(t, se.MaybeDelivered)
	require.True(t, se.Temporary())
	require.ErrorContains(t, se, "mllp: dial "+addr)

	l, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	first := serveOn(t, l, tagged("first"))
	require.Equal(t, "first:1", send(t, c, "1"))

	require.NoError(t, first.Close())
	waitConnUnusable(t, c)
	se = sendErr(t, ctx, c, "2")
	require.Equal(t, "dial", se.Op, "server down")
	require.False(t, se.MaybeDelivered)

	l, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	serveOn(t, l, tagged("second"))
	require.Equal(t, "second:3", send(t, c, "3"))
	require.Equal(t, "second:4", send(t, c, "4"))
}

func TestClientConcurrentSenders(t *testing.T) {
	t.Parallel()

	var seen remotes
	var inFlight, maxInFlight int
	var mu sync.Mutex
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		seen.add(ctx)
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // the behaviour under test: a handler taking time, so that messages sent at once would overlap
		mu.Lock()
		inFlight--
		mu.Unlock()
		return append([]byte("ACK:"), msg...)
	})})
	c := newClient(t, b.addr, Config{})

	const senders, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				msg := fmt.Sprintf("MSH|^~\\&|A|B|C|D|1||ORU^R01|S%d-M%d|P|2.5\r", s, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := c.Send(ctx, []byte(msg))
				cancel()
				switch {
				case err != nil:
					errs <- err
				case string(resp) != "ACK:"+msg:
					errs <- fmt.Errorf("sender %d got %q for %q", s, resp, msg)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, 1, seen.count(), "one connection")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, maxInFlight, "one message at a time")
}

func TestClientNoLateResponseAfterTimeout(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	b := setup(t, &Server{Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
		if string(msg) == "slow" {
			<-release // answers only after the client gave up
		}
		return append([]byte("ACK:"), msg...)
	})})
	answerSlow := sync.OnceFunc(func() { close(release) })
	t.Cleanup(answerSlow) // a failed test does not leave the handler waiting
	c := newClient(t, b.addr, Config{Timeout: 100 * time.Millisecond})
	se := sendErr(t, context.Background(), c, "slow")
	require.ErrorIs(t, se, context.DeadlineExceeded)
	require.True(t, se.MaybeDelivered)

	require.Equal(t, "ACK:fast", send(t, c, "fast"))
	answerSlow()
	// "ACK:slow" is written, or fails to be, on the abandoned connection:
	// the server is done with both messages.
	require.Eventually(t, func() bool {
		logs := b.logs.String()
		return strings.Count(logs, "mllp: message done")+strings.Count(logs, "mllp: response not written") >= 2
	}, 5*time.Second, 5*time.Millisecond, "the server answered the slow message")
	require.Equal(t, "ACK:after", send(t, c, "after"))
}

func TestClientUnsolicitedFrame(t *testing.T) {
	t.Parallel()

	// A broken server answers the first message twice, then behaves.
	l := newTestListener(t)
	go func() {
		for n := 0; ; n++ {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := NewReader(conn, 0)
				for {
					msg, err := r.ReadMessage()
					if err != nil {
						return
					}
					out := frame(fmt.Sprintf("conn%d:%s", n, msg))
					if n == 0 {
						out += frame("ghost")
					}
					if _, err := io.WriteString(conn, out); err != nil {
						return
					}
				}
			}()
		}
	}()
	c := newClient(t, l.Addr().String(), Config{})
	require.Equal(t, "conn0:1", send(t, c, "1"))
	waitConnUnusable(t, c)
	require.Equal(t, "conn1:2", send(t, c, "2"), "the ghost frame is never taken for a response")
}

func TestClientWriteBlockedIsNotDelivered(t *testing.T) {
	t.Parallel()

	// A server that accepts and never reads: the write blocks once the buffers are full.
	l := newTestListener(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := l.Accept(); err == nil {
			accepted <- conn
		}
	}()
	t.Cleanup(func() {
		select {
		case conn := <-accepted:
			_ = conn.Close()
		default:
		}
	})
	c := newClient(t, l.Addr().String(), Config{Timeout: 300 * time.Millisecond})
	se := sendErr(t, context.Background(), c, strings.Repeat("x", 64<<20))
	require.Equal(t, "write", se.Op)
	require.ErrorIs(t, se, context.DeadlineExceeded)
	require.False(t, se.MaybeDelivered, "the end block was not written")
	require.Contains(t, se.Error(), "(not delivered)")
}

func TestClientResponseTooLarge(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: HandlerFunc(func(context.Context, []byte) []byte {
		return bytes.Repeat([]byte("A"), 2000)
	})})
	c := newClient(t, b.addr, Config{MaxMessageSize: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	se := sendErr(t, ctx, c, "1")
	require.ErrorIs(t, se, ErrMessageTooLarge)
	require.True(t, se.MaybeDelivered)
	require.False(t, se.Temporary(), "sending again gets the same response")
	require.Contains(t, se.Error(), "mllp: read the response from "+b.addr)
	require.Contains(t, se.Error(), "(the message may have been delivered)")
}

func TestClientClose(t *testing.T) {
	t.Parallel()

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b := setup(t, &Server{Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
		if string(msg) == "slow" {
			started <- struct{}{}
			<-release
		}
		return append([]byte("ACK:"), msg...)
	})})

	t.Run("later sends", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		require.Equal(t, "ACK:1", send(t, c, "1"))
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "idempotent")
		_, err := c.Send(context.Background(), []byte("2"))
		require.ErrorIs(t, err, ErrClientClosed)
		require.False(t, MaybeDelivered(err))
	})
	t.Run("send in progress", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Send(context.Background(), []byte("slow"))
			errc <- err
		}()
		<-started
		require.NoError(t, c.Close())
		select {
		case err := <-errc:
			require.True(t, MaybeDelivered(err), "%v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not interrupt Send")
		}
	})
}

func TestClientTLS(t *testing.T) {
	t.Parallel()

	ca := testcert.NewCA(t)
	pair := ca.Server(t)
	l := tls.NewListener(newTestListener(t), &tls.Config{Certificates: []tls.Certificate{pair.TLS}, MinVersion: tls.VersionTLS12})
	serveOn(t, l, echo)

	c := newClient(t, l.Addr().String(), Config{TLSConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}})
	require.Equal(t, "ACK:1", send(t, c, "1"))
	require.Equal(t, "ACK:2", send(t, c, "2"))

	untrusting := newClient(t, l.Addr().String(), Config{TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	se := sendErr(t, ctx, untrusting, "1")
	require.Equal(t, "dial", se.Op)
	require.False(t, se.MaybeDelivered)
	require.ErrorContains(t, se, "certificate")
}

func TestNewClientConfig(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Addr is required"},
		{Config{Addr: "2575"}, "want host:port"},
		{Config{Addr: "dpi:2575", Timeout: -1}, "must not be negative"},
		{Config{Addr: "dpi:2575", DialTimeout: -1}, "must not be negative"},
		{Config{Addr: "dpi:2575", MaxMessageSize: -1}, "must not be negative"},
	} {
		_, err := NewClient(tt.cfg)
		require.ErrorContains(t, err, tt.want, "%+v", tt.cfg)
	}

	c, err := NewClient(Config{Addr: "dpi:2575"})
	require.NoError(t, err)
	require.Equal(t, Config{Addr: "dpi:2575", DialTimeout: DefaultDialTimeout, Timeout: DefaultTimeout,
		MaxMessageSize: DefaultMaxMessageSize}, c.cfg)
}

func TestDialError(t *testing.T) {
	t.Parallel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, addr)
	require.ErrorContains(t, err, "mllp: dial")
	require.False(t, MaybeDelivered(err))
}

func TestMaybeDelivered(t *testing.T) {
	t.Parallel()

	require.False(t, MaybeDelivered(nil))
	require.False(t, MaybeDelivered(io.EOF))
	wrapped := fmt.Errorf("send ZAM: %w", &SendError{Op: "read", Addr: "dpi:2575", MaybeDelivered: true, Err: io.ErrUnexpectedEOF})
	require.True(t, MaybeDelivered(wrapped))
	require.Equal(t, "send ZAM: mllp: read the response from dpi:2575: unexpected EOF (the message may have been delivered)", wrapped.Error())
}

// ExampleClient sends a business acknowledgement and tells whether it may be sent again.
func ExampleClient() {
	// A DPI that acknowledges every message, for the example.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	dpi := &Server{Logger: slog.New(slog.DiscardHandler), Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
		return fmt.Appendf(nil, "MSA|AA|%s\r", strings.Split(string(msg), "|")[9])
	})}
	go func() { _ = dpi.Serve(l) }()
	defer dpi.Close()

	c, err := NewClient(Config{Addr: l.Addr().String(), Timeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg := "MSH|^~\\&|MSSDISPATCH|CH|DPI|CH|20250101120000||ZAM^Z01|ZAM0001|P|2.5\r"
	resp, err := c.Send(context.Background(), []byte(msg))
	switch {
	case MaybeDelivered(err):
		fmt.Println("outcome unknown: sending again may duplicate the message")
	case err != nil:
		fmt.Println("not delivered: safe to send again")
	default:
		fmt.Printf("%q\n", resp)
	}
	// Output: "MSA|AA|ZAM0001\r"
}
