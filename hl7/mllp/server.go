package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Server defaults.
const (
	DefaultAddr         = ":2575" // the registered HL7 MLLP port
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = 5 * time.Minute
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or Close.
var ErrServerClosed = errors.New("mllp: server closed")

// Handler handles one framed message and returns the response frame content (the ACK); nil means no response.
type Handler interface {
	ServeMLLP(ctx context.Context, msg []byte) []byte
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, msg []byte) []byte

// ServeMLLP calls f(ctx, msg).
func (f HandlerFunc) ServeMLLP(ctx context.Context, msg []byte) []byte { return f(ctx, msg) }

// TooLargeHandler is implemented by a Handler that answers frames over
// Server.MaxMessageSize (typically with an AE acknowledgement built from the
// MSH segment found in head); size is the frame content size. Without it the
// server closes the connection on an oversize frame.
type TooLargeHandler interface {
	ServeMLLPTooLarge(ctx context.Context, head []byte, size int64) []byte
}

// Server accepts MLLP connections and hands every message to Handler.
// Messages of one connection are handled one at a time, in order, each
// response being written before the next message is read. A Server must not
// be copied after first use; its zero value (with a Handler) is usable.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on. Defaults to DefaultAddr.
	Addr string
	// Handler handles the messages. Required.
	Handler Handler
	// ReadTimeout is the longest time to read one message once its first byte arrived. Defaults to DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout is the longest time to write one response. Defaults to DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdleTimeout is the longest wait for the next message on an open connection. Defaults to DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxMessageSize is the largest message content in bytes. Defaults to DefaultMaxMessageSize.
	MaxMessageSize int
	// Logger receives connection events (never message content). Defaults to slog.Default().
	Logger *slog.Logger

	inShutdown atomic.Bool
	mu         sync.Mutex
	listeners  map[*onceCloseListener]struct{}
	conns      map[*conn]struct{}
	baseCtx    context.Context // parent of handler contexts, cancelled by Close
	cancel     context.CancelFunc
}

// ListenAndServe listens on Addr (TCP) and calls Serve; it always returns a non-nil error.
func (s *Server) ListenAndServe() error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mllp: listen on %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each in its own goroutine until
// Shutdown or Close, then returns ErrServerClosed; l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	if s.Handler == nil {
		_ = l.Close()
		return errors.New("mllp: Server.Handler is nil")
	}
	ln := &onceCloseListener{Listener: l}
	defer ln.Close()
	if !s.trackListener(ln, true) {
		return ErrServerClosed
	}
	defer s.trackListener(ln, false)

	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("mllp: accept: %w", err)
			}
			// Probably temporary (out of file descriptors…): back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().Warn("mllp: accept failed, retrying", "error", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &conn{srv: s, rwc: rwc}
		if !s.trackConn(c, true) {
			_ = rwc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops the server gracefully: it closes the listeners and idle
// connections, lets the messages being handled finish and their responses be
// written, then closes their connections. Handler contexts are not cancelled.
// If ctx ends first, Shutdown calls Close and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListenersLocked()
	s.mu.Unlock()

	const maxPoll = 200 * time.Millisecond
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if s.closeIdleConns() {
			return err
		}
		select {
		case <-ctx.Done():
			_ = s.Close()
			return ctx.Err()
		case <-timer.C:
			poll = min(2*poll, maxPoll)
			timer.Reset(poll)
		}
	}
}

// Close stops the server immediately: it closes the listeners and all
// connections and cancels the contexts of running handlers.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListenersLocked()
	s.initLocked()
	s.cancel()
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	return err
}

func (s *Server) initLocked() {
	if s.baseCtx == nil {
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[*onceCloseListener]struct{})
		s.conns = make(map[*conn]struct{})
	}
}

func (s *Server) trackListener(ln *onceCloseListener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.inShutdown.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) closeListenersLocked() error {
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.inShutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// closeIdleConns closes the idle connections and reports whether all were idle.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiescent := true
	for c := range s.conns {
		if c.active {
			quiescent = false
			continue
		}
		c.closed = true
		_ = c.rwc.Close()
	}
	return quiescent
}

// setActive marks c as handling a message; false if Shutdown already closed it.
func (s *Server) setActive(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed {
		return false
	}
	c.active = true
	return true
}

// setIdle marks c as waiting for a message; false if the server is shutting down.
func (s *Server) setIdle(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.active = false
	return !s.inShutdown.Load()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// conn is one accepted connection; active and closed are guarded by Server.mu.
type conn struct {
	srv    *Server
	rwc    net.Conn
	active bool // a message is being read, handled or answered
	closed bool // closed by Shutdown while idle
}

type ctxKey struct{}

// RemoteAddr returns the remote address of the connection a handler context belongs to, nil if none.
func RemoteAddr(ctx context.Context) net.Addr {
	a, _ := ctx.Value(ctxKey{}).(net.Addr)
	return a
}

func (c *conn) serve() {
	s := c.srv
	log := s.logger().With("remote", c.rwc.RemoteAddr().String())
	defer func() {
		_ = c.rwc.Close()
		s.trackConn(c, false)
		log.Debug("mllp: connection closed")
	}()
	log.Debug("mllp: connection accepted")

	s.mu.Lock()
	ctx := context.WithValue(s.baseCtx, ctxKey{}, c.rwc.RemoteAddr())
	s.mu.Unlock()
	readTimeout := orDefault(s.ReadTimeout, DefaultReadTimeout)
	writeTimeout := orDefault(s.WriteTimeout, DefaultWriteTimeout)
	idleTimeout := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	r := NewReader(c.rwc, orDefault(s.MaxMessageSize, DefaultMaxMessageSize))

	for {
		// Idle: wait for the first byte of the next frame.
		_ = c.rwc.SetReadDeadline(time.Now().Add(idleTimeout))
		if err := r.peek(); err != nil {
			logReadError(log, "mllp: connection ended while idle", err, slog.LevelDebug)
			return
		}
		if !s.setActive(c) {
			return
		}
		start := time.Now()
		_ = c.rwc.SetReadDeadline(start.Add(readTimeout))
		msg, err := r.ReadMessage()
		var (
			resp     []byte
			ok       bool
			tooLarge *TooLargeError
		)
		switch {
		case err == nil:
			log.Debug("mllp: message received", "size", len(msg))
			resp, ok = c.handle(log, func() []byte { return s.Handler.ServeMLLP(ctx, msg) })
		case errors.As(err, &tooLarge):
			th, can := s.Handler.(TooLargeHandler)
			log.Warn("mllp: message too large", "size", tooLarge.Size, "limit", tooLarge.Limit, "answered", can)
			if !can {
				return
			}
			resp, ok = c.handle(log, func() []byte { return th.ServeMLLPTooLarge(ctx, tooLarge.Head, tooLarge.Size) })
		default:
			logReadError(log, "mllp: read failed", err, slog.LevelWarn)
			return
		}
		if !ok {
			return
		}
		if resp != nil {
			_ = c.rwc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := WriteMessage(c.rwc, resp); err != nil {
				log.Warn("mllp: response not written", "error", err, "size", len(resp))
				return
			}
		}
		log.Debug("mllp: message done", "response_size", len(resp), "duration", time.Since(start))
		if !s.setIdle(c) {
			return
		}
	}
}

// handle runs fn, turning a panic into a logged error (ok false: close the connection without response).
func (c *conn) handle(log *slog.Logger, fn func() []byte) (resp []byte, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("mllp: handler panicked", "panic", p, "stack", string(debug.Stack()))
			resp, ok = nil, false
		}
	}()
	return fn(), true
}

// logReadError logs err at Debug for a closed connection, at timeoutLevel for a timeout and at Warn otherwise.
func logReadError(log *slog.Logger, msg string, err error, timeoutLevel slog.Level) {
	level := slog.LevelWarn
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		level = slog.LevelDebug
	case errors.Is(err, os.ErrDeadlineExceeded):
		level = timeoutLevel
	}
	log.Log(context.Background(), level, msg, "error", err)
}

// onceCloseListener protects a listener against double Close.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
