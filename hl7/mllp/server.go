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

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

// Server defaults.
const (
	DefaultAddr         = ":2575" // the registered HL7 MLLP port
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = 5 * time.Minute

	// DefaultMaxConns is the default Server.MaxConns: a DPI opens a few
	// connections, the rest of the room is for reconnections and tools.
	DefaultMaxConns = 64
	// DefaultMaxBufferedBytes is the least default Server.MaxBufferedBytes (64 MiB).
	DefaultMaxBufferedBytes = 4 * DefaultMaxMessageSize
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
	// MaxConns is the most connections served at once. At the limit the
	// server stops accepting, as with netutil.LimitListener: new
	// connections wait in the kernel's listen backlog (connected, but not
	// answered) and are served in turn as served ones close, at the latest
	// when their IdleTimeout or ReadTimeout ends; a warning is logged (once
	// a minute at most). Defaults to DefaultMaxConns.
	MaxConns int
	// MaxBufferedBytes is the most bytes of frames held at once by all the
	// connections together: frames being read and messages being handled
	// (until the handler returns). A frame takes its bytes as it grows: its
	// exact size if it fits in the 32 KiB read buffer, else 64 KiB at a
	// time. Without room, it stops reading and waits for other frames to
	// release theirs; it is dropped, and its connection closed, when its
	// ReadTimeout ends first, or when every frame holding bytes waits for
	// more (the one holding the most is then dropped, so that the others go
	// on). Besides, each connection holds a 32 KiB read buffer, and a frame
	// being completed is copied once into its message. Must be at least
	// MaxMessageSize. Defaults to the larger of DefaultMaxBufferedBytes and
	// 4 × MaxMessageSize.
	MaxBufferedBytes int
	// Logger receives connection events (never message content). Defaults to slog.Default().
	Logger *slog.Logger

	inShutdown atomic.Bool
	mu         sync.Mutex
	listeners  map[*onceCloseListener]struct{}
	conns      map[*conn]struct{}
	baseCtx    context.Context // parent of handler contexts, cancelled by Close
	cancel     context.CancelFunc
	done       chan struct{} // closed by Shutdown and Close
	slots      chan struct{} // a token per connection served, MaxConns tokens at most
	budget     *budget       // the bytes of MaxBufferedBytes
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
	if err := s.validate(); err != nil {
		_ = l.Close()
		return err
	}
	ln := &onceCloseListener{Listener: l}
	defer func() { _ = ln.Close() }()
	if !s.trackListener(ln, true) {
		return ErrServerClosed
	}
	defer s.trackListener(ln, false)

	var (
		delay     time.Duration
		limitLogs time.Time // when the connection limit was last logged
	)
	for {
		if !s.acquireSlot(&limitLogs) {
			return ErrServerClosed
		}
		rwc, err := ln.Accept()
		if err != nil {
			s.releaseSlot()
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("mllp: accept: %w", err)
			}
			// Probably temporary (out of file descriptors…): back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().Warn("mllp: accept failed, retrying", "error", redact.Text(err.Error()), "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &conn{srv: s, rwc: rwc}
		if !s.trackConn(c, true) {
			_ = rwc.Close()
			s.releaseSlot()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// validate checks the configuration.
func (s *Server) validate() error {
	switch {
	case s.Handler == nil:
		return errors.New("mllp: Server.Handler is nil")
	case s.MaxMessageSize < 0 || s.MaxConns < 0 || s.MaxBufferedBytes < 0:
		return errors.New("mllp: Server.MaxMessageSize, MaxConns and MaxBufferedBytes must not be negative")
	case s.MaxBufferedBytes > 0 && s.MaxBufferedBytes < s.maxMessageSize():
		return fmt.Errorf("mllp: Server.MaxBufferedBytes (%d) must be at least MaxMessageSize (%d)",
			s.MaxBufferedBytes, s.maxMessageSize())
	}
	return nil
}

func (s *Server) maxMessageSize() int { return orDefault(s.MaxMessageSize, DefaultMaxMessageSize) }

// acquireSlot waits for the room to serve one more connection; false once
// the server is shutting down. It logs when the limit is reached, once a
// minute at most (*logged is when it last did).
func (s *Server) acquireSlot(logged *time.Time) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if time.Since(*logged) >= time.Minute {
		*logged = time.Now()
		s.logger().Warn("mllp: connection limit reached, new connections wait until one closes",
			"max_conns", cap(s.slots))
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) releaseSlot() { <-s.slots }

// Shutdown stops the server gracefully: it closes the listeners and idle
// connections, lets the messages being handled finish and their responses be
// written, then closes their connections. Handler contexts are not cancelled.
// If ctx ends first, Shutdown calls Close and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	s.initLocked()
	s.closeDoneLocked()
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
	s.initLocked()
	s.closeDoneLocked()
	err := s.closeListenersLocked()
	s.cancel()
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	return err
}

// initLocked sets the server up on first use; the limits are read then.
func (s *Server) initLocked() {
	if s.baseCtx == nil {
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[*onceCloseListener]struct{})
		s.conns = make(map[*conn]struct{})
		s.done = make(chan struct{})
		s.slots = make(chan struct{}, max(orDefault(s.MaxConns, DefaultMaxConns), 1))
		budget := orDefault(s.MaxBufferedBytes, max(DefaultMaxBufferedBytes, 4*s.maxMessageSize()))
		s.budget = newBudget(int64(budget))
	}
}

func (s *Server) closeDoneLocked() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// buffered returns the bytes of frames held now and the most held at once (for tests).
func (s *Server) buffered() (used, peak int64) {
	s.mu.Lock()
	s.initLocked()
	b := s.budget
	s.mu.Unlock()
	return b.stats()
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
	s.mu.Lock()
	ctx := context.WithValue(s.baseCtx, ctxKey{}, c.rwc.RemoteAddr())
	r := NewReader(c.rwc, s.maxMessageSize())
	r.lease, r.ctx = s.budget.newLease(), s.baseCtx
	s.mu.Unlock()
	defer func() {
		_ = c.rwc.Close()
		r.dropChunks()
		r.releaseMessage()
		s.trackConn(c, false)
		s.releaseSlot()
		log.Debug("mllp: connection closed")
	}()
	log.Debug("mllp: connection accepted")

	readTimeout := orDefault(s.ReadTimeout, DefaultReadTimeout)
	writeTimeout := orDefault(s.WriteTimeout, DefaultWriteTimeout)
	idleTimeout := orDefault(s.IdleTimeout, DefaultIdleTimeout)

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
		r.deadline = start.Add(readTimeout) // also ends a wait for room among the buffered bytes
		_ = c.rwc.SetReadDeadline(r.deadline)
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
		r.releaseMessage() // the handler returned: msg is no longer ours to count
		if !ok {
			return
		}
		if resp != nil {
			_ = c.rwc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := WriteMessage(c.rwc, resp); err != nil {
				log.Warn("mllp: response not written", "error", redact.Text(err.Error()), "size", len(resp))
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
			log.Error("mllp: handler panicked", "panic", redact.Text(fmt.Sprint(p)), "stack", string(debug.Stack()))
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
	log.Log(context.Background(), level, msg, "error", redact.Text(err.Error()))
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
