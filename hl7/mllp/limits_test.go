package mllp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// connCount returns how many connections srv has accepted and not yet closed.
func connCount(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.conns)
}

// serving reports whether srv is reading, handling or answering a message
// on the connection of c.
func serving(srv *Server, c *Client) bool {
	c.mu.Lock()
	cc := c.conn
	c.mu.Unlock()
	if cc == nil {
		return false
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for sc := range srv.conns {
		if sc.active && sc.rwc.RemoteAddr().String() == cc.LocalAddr().String() {
			return true
		}
	}
	return false
}

// requireNoResponse checks that nothing comes on conn for a while.
func requireNoResponse(t *testing.T, conn net.Conn, wait time.Duration) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	n, err := conn.Read(make([]byte, 1))
	require.Zero(t, n)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the connection must neither be served nor closed")
}

// requireResponse reads one frame on conn and checks it.
func requireResponse(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := NewReader(conn, 0).ReadMessage()
	require.NoError(t, err)
	require.Equal(t, want, string(resp))
}

// requireDropped checks that the server closes conn, which may still be writing to it.
func requireDropped(t *testing.T, conn net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(within)))
	_, err := conn.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection is still open after %v", within)
}

// flood opens n connections, each sending a StartBlock then size bytes and
// never the EndBlock; it returns them (they are closed at the end of the test).
func (b *testBundle) flood(t *testing.T, n, size int) []net.Conn {
	t.Helper()
	partial := append([]byte{StartBlock}, bytes.Repeat([]byte("x"), size)...)
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = b.rawConn(t)
		go func() { _, _ = conns[i].Write(partial) }() // blocks once the server stops reading
	}
	return conns
}

func TestServerMaxConns(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: echo, MaxConns: 2})
	c1, c2 := b.dial(t), b.dial(t)
	require.Equal(t, "ACK:1", send(t, c1, "1"))
	require.Equal(t, "ACK:2", send(t, c2, "2"))

	// A third connection waits, unserved, in the listen backlog.
	third := b.rawConn(t)
	_, err := third.Write([]byte(frame("third")))
	require.NoError(t, err)
	requireNoResponse(t, third, 300*time.Millisecond)
	require.Equal(t, 2, connCount(b.srv))
	require.Contains(t, b.logs.String(), "connection limit reached")

	// It is served as soon as one of the two closes.
	require.NoError(t, c1.Close())
	requireResponse(t, third, "ACK:third")
	require.Equal(t, "ACK:2", send(t, c2, "2"), "the others go on")
	require.LessOrEqual(t, connCount(b.srv), 2)

	// A flood of connections, then the DPI reconnecting once it stopped.
	var flood []net.Conn
	for range 10 {
		flood = append(flood, b.rawConn(t))
	}
	require.Never(t, func() bool { return connCount(b.srv) > 2 }, 200*time.Millisecond, 5*time.Millisecond)
	for _, conn := range append(flood, third) {
		require.NoError(t, conn.Close())
	}
	require.Equal(t, "ACK:after", send(t, b.dial(t), "after"))
	require.Equal(t, "ACK:2", send(t, c2, "2"))
}

func TestServerMaxConnsShutdownWhileFull(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: echo, MaxConns: 1})
	c := b.dial(t)
	require.Equal(t, "ACK:1", send(t, c, "1"))
	waiting := b.rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.srv.Shutdown(ctx))
	b.requireServeStopped(t) // not stuck waiting for a free slot
	requireClosedByPeer(t, c.conn)
	requireDropped(t, waiting, 5*time.Second) // reset with the listener
}

// TestServerBufferedBytesBounded floods the server with connections each
// sending an unterminated frame just under MaxMessageSize: the bytes it
// buffers stay within MaxBufferedBytes, and a legitimate message of the
// largest size goes through as soon as the flood stops.
func TestServerBufferedBytesBounded(t *testing.T) {
	t.Parallel()

	const (
		maxSize = 1 << 20
		budget  = 4 * maxSize
	)
	b := setup(t, &Server{Handler: echo, MaxMessageSize: maxSize, MaxBufferedBytes: budget})
	flood := b.flood(t, 12, maxSize-1024) // 12 MiB offered

	require.Eventually(t, func() bool { used, _ := b.srv.buffered(); return used >= budget/2 },
		5*time.Second, 5*time.Millisecond, "the flood is being read")
	require.Never(t, func() bool { _, peak := b.srv.buffered(); return peak > budget },
		300*time.Millisecond, 5*time.Millisecond)

	// A message of the largest size, sent during the flood, waits for room.
	big := string(benchMessage(maxSize))
	legit := b.dial(t)
	resp := make(chan string, 1)
	go func() {
		r, err := legit.Send(context.Background(), []byte(big))
		if err != nil {
			r = []byte(err.Error())
		}
		resp <- string(r)
	}()
	require.Eventually(t, func() bool { return serving(b.srv, legit) }, 5*time.Second, 5*time.Millisecond,
		"the legitimate message is being read")
	for _, conn := range flood {
		require.NoError(t, conn.Close())
	}
	select {
	case r := <-resp:
		require.Equal(t, "ACK:"+big, r, "the legitimate message goes through")
	case <-time.After(5 * time.Second):
		t.Fatal("no response once the flood stopped")
	}
	require.Eventually(t, func() bool { used, _ := b.srv.buffered(); return used == 0 },
		5*time.Second, 5*time.Millisecond, "the budget is given back")
	_, peak := b.srv.buffered()
	require.LessOrEqual(t, peak, int64(budget))
}

// TestServerReadTimeoutReleasesBuffer checks that a sender trickling the
// bytes of a frame is cut off at ReadTimeout (counted from the frame's first
// byte, not from the last byte received) and that its buffer is released.
func TestServerReadTimeoutReleasesBuffer(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: echo, ReadTimeout: 300 * time.Millisecond})
	conn := b.rawConn(t)
	_, err := conn.Write(append([]byte{StartBlock}, bytes.Repeat([]byte("x"), 200<<10)...))
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { // one byte every 20 ms, until the server closes the connection
		for {
			time.Sleep(20 * time.Millisecond) // the behaviour under test: a sender trickling its bytes
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	})
	require.Eventually(t, func() bool { used, _ := b.srv.buffered(); return used >= 128<<10 },
		5*time.Second, 5*time.Millisecond)
	start := time.Now()
	requireDropped(t, conn, 5*time.Second)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Eventually(t, func() bool { used, _ := b.srv.buffered(); return used == 0 },
		5*time.Second, 5*time.Millisecond)
	_ = conn.Close()
	wg.Wait()
}

// TestServerBudgetWaitTimesOut checks that a frame waiting for room in the
// budget is dropped at its ReadTimeout, leaving the budget consistent.
func TestServerBudgetWaitTimesOut(t *testing.T) {
	t.Parallel()

	const maxSize = 256 << 10
	started, release := make(chan struct{}), make(chan struct{})
	b := setup(t, &Server{
		Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
			if bytes.HasPrefix(msg, []byte("HOG")) {
				close(started)
				<-release // holds the whole budget meanwhile
				return []byte("ACK:hog")
			}
			return append([]byte("ACK:"), msg...)
		}),
		MaxMessageSize: maxSize, MaxBufferedBytes: maxSize, ReadTimeout: 300 * time.Millisecond,
	})
	hog := b.rawConn(t)
	_, err := hog.Write([]byte(frame("HOG" + string(benchMessage(maxSize-3)))))
	require.NoError(t, err)
	<-started
	used, _ := b.srv.buffered()
	require.Equal(t, int64(maxSize), used)

	late := b.rawConn(t)
	_, err = late.Write([]byte(frame(string(benchMessage(100 << 10)))))
	require.NoError(t, err)
	start := time.Now()
	requireDropped(t, late, 5*time.Second)
	require.Less(t, time.Since(start), 2*time.Second)

	close(release)
	requireResponse(t, hog, "ACK:hog")
	require.Eventually(t, func() bool { used, _ := b.srv.buffered(); return used == 0 },
		5*time.Second, 5*time.Millisecond)
	require.Equal(t, "ACK:next", send(t, b.dial(t), "next"))
}

func TestServerLimitsValidated(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name string
		srv  *Server
		want string
	}{
		{"negative MaxConns", &Server{Handler: echo, MaxConns: -1}, "MaxConns"},
		{"negative MaxBufferedBytes", &Server{Handler: echo, MaxBufferedBytes: -1}, "MaxBufferedBytes"},
		{"negative MaxMessageSize", &Server{Handler: echo, MaxMessageSize: -1}, "MaxMessageSize"},
		{"budget below the message size", &Server{Handler: echo, MaxMessageSize: 1 << 20, MaxBufferedBytes: 1<<20 - 1}, "MaxBufferedBytes"},
		{"budget below the default message size", &Server{Handler: echo, MaxBufferedBytes: 1 << 20}, "MaxBufferedBytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.srv.Logger = slog.New(slog.DiscardHandler)
			l := newTestListener(t)
			serveErr := make(chan error, 1)
			go func() { serveErr <- tt.srv.Serve(l) }()
			select {
			case err := <-serveErr:
				require.ErrorContains(t, err, tt.want)
			case <-time.After(time.Second):
				_ = tt.srv.Close()
				t.Fatal("Serve accepted the configuration")
			}
		})
	}
}
