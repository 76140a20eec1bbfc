package mllp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testBundle is a running server on 127.0.0.1 and what the tests observe of it.
type testBundle struct {
	srv      *Server
	addr     string
	serveErr chan error
	logs     *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for concurrent use (log output).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setup starts srv (Handler and options already set) on a random local port.
func setup(t *testing.T, srv *Server) *testBundle {
	t.Helper()
	logs := &syncBuffer{}
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &testBundle{srv: srv, addr: l.Addr().String(), serveErr: make(chan error, 1), logs: logs}
	go func() { b.serveErr <- srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

func (b *testBundle) dial(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, b.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (b *testBundle) rawConn(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return conn
}

// requireServeStopped waits for Serve to return ErrServerClosed.
func (b *testBundle) requireServeStopped(t *testing.T) {
	t.Helper()
	select {
	case err := <-b.serveErr:
		require.ErrorIs(t, err, ErrServerClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func send(t *testing.T, c *Client, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Send(ctx, []byte(msg))
	require.NoError(t, err)
	return string(resp)
}

// requireClosedByPeer checks that the server closes conn without sending anything more.
func requireClosedByPeer(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := conn.Read(make([]byte, 1))
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
}

var echo = HandlerFunc(func(_ context.Context, msg []byte) []byte { return append([]byte("ACK:"), msg...) })

func TestServerSeveralMessagesOnOneConnection(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var remotes []string
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		mu.Lock()
		remotes = append(remotes, RemoteAddr(ctx).String())
		mu.Unlock()
		return append([]byte("ACK:"), msg...)
	})})
	c := b.dial(t)
	for i := range 5 {
		msg := fmt.Sprintf("MSH|^~\\&|A|B|C|D|1||ORU^R01|%d|P|2.5\rPID|1\r", i)
		require.Equal(t, "ACK:"+msg, send(t, c, msg))
	}
	mu.Lock()
	require.Len(t, remotes, 5)
	require.Equal(t, c.conn.LocalAddr().String(), remotes[0])
	mu.Unlock()

	// Other connections are served in parallel.
	c2 := b.dial(t)
	require.Equal(t, "ACK:x", send(t, c2, "x"))
	require.Equal(t, "ACK:y", send(t, c, "y"))
}

func TestServerGarbageBeforeStartBlock(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: echo})
	conn := b.rawConn(t)
	_, err := conn.Write([]byte("garbage\r\n\x00" + frame("MSG1") + "\r\n" + frame("MSG2")))
	require.NoError(t, err)
	r := NewReader(conn, 0)
	for _, want := range []string{"ACK:MSG1", "ACK:MSG2"} {
		resp, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, want, string(resp))
	}
}

func TestServerNilResponse(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
		if string(msg) == "silent" {
			return nil
		}
		return append([]byte("ACK:"), msg...)
	})})
	conn := b.rawConn(t)
	_, err := conn.Write([]byte(frame("silent") + frame("loud")))
	require.NoError(t, err)
	resp, err := NewReader(conn, 0).ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "ACK:loud", string(resp))
}

// tooLargeHandler answers oversize frames.
type tooLargeHandler struct{ HandlerFunc }

func (tooLargeHandler) ServeMLLPTooLarge(_ context.Context, head []byte, size int64) []byte {
	return fmt.Appendf(nil, "AR:%d:%s", size, head[:3])
}

func TestServerOversizeFrame(t *testing.T) {
	t.Parallel()

	huge := "MSH" + strings.Repeat("x", 10_000)

	t.Run("answered and connection kept", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Server{Handler: tooLargeHandler{echo}, MaxMessageSize: 1000})
		c := b.dial(t)
		require.Equal(t, "AR:10003:MSH", send(t, c, huge))
		require.Equal(t, "ACK:small", send(t, c, "small"))
		require.Contains(t, b.logs.String(), "message too large")
	})
	t.Run("connection closed without TooLargeHandler", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Server{Handler: echo, MaxMessageSize: 1000})
		conn := b.rawConn(t)
		_, err := conn.Write([]byte(frame(huge)))
		require.NoError(t, err)
		requireClosedByPeer(t, conn)
	})
}

func TestServerShutdownWaitsForInFlightMessage(t *testing.T) {
	t.Parallel()

	started := make(chan struct{})
	release := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		close(started)
		<-release
		handlerCtxErr <- ctx.Err()
		return []byte("ACK:slow")
	})})
	c := b.dial(t)
	resp := make(chan string, 1)
	go func() {
		r, err := c.Send(context.Background(), []byte("slow"))
		if err != nil {
			r = []byte(err.Error())
		}
		resp <- string(r)
	}()
	<-started

	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownErr <- b.srv.Shutdown(ctx)
	}()
	b.requireServeStopped(t) // listeners are closed at once

	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned %v while a message was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	_, err := net.DialTimeout("tcp", b.addr, time.Second)
	require.Error(t, err, "new connections are refused")

	close(release)
	require.NoError(t, <-handlerCtxErr, "Shutdown must not cancel the handler context")
	require.Equal(t, "ACK:slow", <-resp)
	require.NoError(t, <-shutdownErr)

	// The connection is closed once the response is written.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Send(ctx, []byte("after"))
	require.Error(t, err)
}

func TestServerShutdownClosesIdleConnections(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: echo})
	c := b.dial(t)
	require.Equal(t, "ACK:1", send(t, c, "1"))
	idle := b.rawConn(t) // never sends anything

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, b.srv.Shutdown(ctx))
	require.Less(t, time.Since(start), 2*time.Second)
	b.requireServeStopped(t)
	requireClosedByPeer(t, idle)
	requireClosedByPeer(t, c.conn)

	require.ErrorIs(t, b.srv.Serve(newTestListener(t)), ErrServerClosed)
	require.ErrorIs(t, b.srv.ListenAndServe(), ErrServerClosed)
}

func TestServerShutdownContextExpires(t *testing.T) {
	t.Parallel()

	started := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		close(started)
		<-ctx.Done()
		handlerCtxErr <- ctx.Err()
		return nil
	})})
	conn := b.rawConn(t)
	_, err := conn.Write([]byte(frame("stuck")))
	require.NoError(t, err)
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.srv.Shutdown(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, <-handlerCtxErr, context.Canceled, "the forced close cancels handlers")
	requireClosedByPeer(t, conn)
}

func TestServerCloseCancelsHandlerContext(t *testing.T) {
	t.Parallel()

	started := make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		close(started)
		select {
		case <-ctx.Done():
			handlerCtxErr <- ctx.Err()
		case <-time.After(10 * time.Second):
			handlerCtxErr <- errors.New("context not cancelled")
		}
		return []byte("too late")
	})})
	c := b.dial(t)
	sendErr := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), []byte("x"))
		sendErr <- err
	}()
	<-started
	require.NoError(t, b.srv.Close())
	require.ErrorIs(t, <-handlerCtxErr, context.Canceled)
	require.ErrorIs(t, <-sendErr, io.ErrUnexpectedEOF)
	b.requireServeStopped(t)
}

func TestServerTimeouts(t *testing.T) {
	t.Parallel()

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Server{Handler: echo, IdleTimeout: 50 * time.Millisecond})
		c := b.dial(t)
		require.Equal(t, "ACK:1", send(t, c, "1"))
		requireClosedByPeer(t, c.conn)
	})
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Server{Handler: echo, ReadTimeout: 50 * time.Millisecond})
		conn := b.rawConn(t)
		_, err := conn.Write([]byte("\x0bMSH|partial"))
		require.NoError(t, err)
		requireClosedByPeer(t, conn)
	})
}

func TestServerHandlerPanic(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: HandlerFunc(func(_ context.Context, msg []byte) []byte {
		if string(msg) == "boom" {
			panic("handler bug")
		}
		return []byte("ok")
	})})
	c := b.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Send(ctx, []byte("boom"))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Contains(t, b.logs.String(), "handler panicked")

	require.Equal(t, "ok", send(t, b.dial(t), "fine"), "the server goes on")
}

func TestServerNeverLogsContent(t *testing.T) {
	t.Parallel()

	b := setup(t, &Server{Handler: tooLargeHandler{echo}, MaxMessageSize: 100})
	c := b.dial(t)
	send(t, c, "PID|||SECRET-PATIENT")
	send(t, c, "PID|||SECRET-HUGE"+strings.Repeat("x", 200))
	require.NoError(t, c.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.srv.Shutdown(ctx))
	logs := b.logs.String()
	require.Contains(t, logs, "message received")
	require.NotContains(t, logs, "SECRET")
}

func TestServerRequiresHandler(t *testing.T) {
	t.Parallel()

	err := (&Server{}).Serve(newTestListener(t))
	require.ErrorContains(t, err, "Handler is nil")
}

func newTestListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}
