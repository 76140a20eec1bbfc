package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Client defaults.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultTimeout     = 30 * time.Second
)

// ErrClientClosed is returned by Send after Close.
var ErrClientClosed = errors.New("mllp: client closed")

// Config configures a Client. Only Addr is required.
type Config struct {
	// Addr is the TCP address (host:port) of the MLLP server. Required.
	Addr string
	// DialTimeout bounds one connection attempt, TCP connect and TLS
	// handshake included. Defaults to DefaultDialTimeout.
	DialTimeout time.Duration
	// Timeout bounds one exchange of Send: dialing when needed, writing the
	// message and reading its response. The deadline of Send's context
	// applies when it comes earlier. Defaults to DefaultTimeout.
	Timeout time.Duration
	// MaxMessageSize is the largest response content in bytes. Defaults to DefaultMaxMessageSize.
	MaxMessageSize int
	// TLSConfig, when not nil, makes the Client speak MLLP over TLS with it
	// (an empty ServerName is taken from Addr). Defaults to nil: plain TCP.
	TLSConfig *tls.Config
}

// Client sends messages to one MLLP server and returns their responses.
//
// It dials on the first Send and keeps the connection for the next ones. A
// connection that failed during an exchange is closed and the next Send
// dials again; so is a connection that the server closed (or wrote on) while
// idle, before anything is written to it. A failed Send is not retried: the
// caller decides, knowing from SendError whether the message may have been
// delivered.
//
// A Client is safe for concurrent use. Exchanges are serialised on the one
// connection (each response is read before the next message is written), so
// every Send gets the response to its own message.
type Client struct {
	cfg Config
	sem chan struct{} // holds a token while a Send uses the connection

	mu     sync.Mutex // guards conn and closed
	conn   *clientConn
	closed bool
}

// NewClient validates cfg and returns a Client; it does not dial.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("mllp: Config.Addr is required")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("mllp: Config.Addr %q: want host:port: %w", cfg.Addr, err)
	}
	if cfg.DialTimeout < 0 || cfg.Timeout < 0 || cfg.MaxMessageSize < 0 {
		return nil, errors.New("mllp: Config.DialTimeout, Timeout and MaxMessageSize must not be negative")
	}
	cfg.DialTimeout = orDefault(cfg.DialTimeout, DefaultDialTimeout)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.MaxMessageSize = orDefault(cfg.MaxMessageSize, DefaultMaxMessageSize)
	return &Client{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// Dial returns a Client of addr (host:port) with the Config defaults, already
// connected so that an unreachable server is reported at once; ctx bounds the
// connection attempt. The Client dials again after a broken connection.
func Dial(ctx context.Context, addr string) (*Client, error) {
	c, err := NewClient(Config{Addr: addr})
	if err != nil {
		return nil, err
	}
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if _, err := c.connection(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Send writes msg as one frame and returns the content of the response frame.
//
// Send waits while another Send uses the connection, dials if there is no
// usable connection, then exchanges the message within Config.Timeout and
// ctx's deadline; the end of ctx interrupts the wait, the dial and the I/O.
// A failure is a *SendError saying whether the message may have been
// delivered (see MaybeDelivered), except ErrInvalidContent (msg contains a
// frame delimiter; nothing is sent) and ErrClientClosed.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return nil, ErrInvalidContent
	}
	if err := ctx.Err(); err != nil {
		return nil, c.sendError("wait", false, err)
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, c.sendError("wait", false, ctx.Err())
	}
	defer func() { <-c.sem }()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cc, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, cc, msg)
	if err != nil {
		c.drop(cc)
		return nil, err
	}
	return resp, nil
}

// Close closes the connection and makes later Sends fail with
// ErrClientClosed; a Send in progress fails. Close may be called again.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cc := c.conn
	c.conn = nil
	c.mu.Unlock()
	if cc == nil {
		return nil
	}
	if err := cc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mllp: close: %w", err)
	}
	return nil
}

// connection returns the usable connection, dialing a new one when there is
// none or when the server closed or wrote on the idle one. The caller holds sem.
func (c *Client) connection(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	closed, cc := c.closed, c.conn
	c.mu.Unlock()
	if closed {
		return nil, ErrClientClosed
	}
	if cc != nil {
		if cc.idle() {
			return cc, nil
		}
		c.drop(cc)
	}

	nd := &net.Dialer{Timeout: c.cfg.DialTimeout}
	var (
		nc  net.Conn
		err error
	)
	if c.cfg.TLSConfig != nil {
		nc, err = (&tls.Dialer{NetDialer: nd, Config: c.cfg.TLSConfig}).DialContext(ctx, "tcp", c.cfg.Addr)
	} else {
		nc, err = nd.DialContext(ctx, "tcp", c.cfg.Addr)
	}
	if err != nil {
		return nil, c.sendError("dial", false, withContext(ctx, err))
	}
	cc = newClientConn(nc, c.cfg.MaxMessageSize)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = cc.Close()
		return nil, ErrClientClosed
	}
	c.conn = cc
	return cc, nil
}

// exchange writes msg on cc and waits for the response. The caller holds sem.
func (c *Client) exchange(ctx context.Context, cc *clientConn, msg []byte) ([]byte, error) {
	deadline, _ := ctx.Deadline() // set by Send
	if err := cc.SetWriteDeadline(deadline); err != nil {
		return nil, c.sendError("write", false, err)
	}
	// The end of ctx interrupts a blocked write by closing the connection
	// (the read side waits on ctx.Done below).
	stop := context.AfterFunc(ctx, func() { _ = cc.Close() })
	defer stop()

	if err := WriteMessage(cc, msg); err != nil {
		// The end block was not written: the server cannot have a complete frame.
		return nil, c.sendError("write", false, withContext(ctx, err))
	}
	var r readResult
	select {
	case r = <-cc.frames:
	case <-ctx.Done():
		select {
		case r = <-cc.frames: // the response came in time after all
		default:
			return nil, c.sendError("read", true, ctx.Err())
		}
	}
	if r.err != nil {
		return nil, c.sendError("read", true, withContext(ctx, r.err))
	}
	if !stop() {
		c.drop(cc) // closed by the AfterFunc just after the response
	}
	return r.msg, nil
}

// drop forgets cc and closes it.
func (c *Client) drop(cc *clientConn) {
	c.mu.Lock()
	if c.conn == cc {
		c.conn = nil
	}
	c.mu.Unlock()
	_ = cc.Close()
}

func (c *Client) sendError(op string, maybeDelivered bool, err error) *SendError {
	return &SendError{Op: op, Addr: c.cfg.Addr, MaybeDelivered: maybeDelivered, Err: err}
}

// withContext makes err, an I/O error, match the error of ctx when ctx ended
// (the I/O error is then its consequence); a connection deadline, always
// ctx's, counts as context.DeadlineExceeded.
func withContext(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		cerr = context.DeadlineExceeded
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// SendError reports a failed Send and whether the server may have received the message.
type SendError struct {
	// Op is the step that failed: "wait" (for the connection), "dial", "write" or "read" (the response).
	Op string
	// Addr is the server address.
	Addr string
	// MaybeDelivered is true when the whole frame was written but no
	// response was read: the server may have received and processed the
	// message, and sending it again may deliver it twice. It is false when
	// the server cannot have received the complete frame.
	MaybeDelivered bool
	// Err is the cause; it matches context.DeadlineExceeded on a timeout and
	// io.ErrUnexpectedEOF when the server closed the connection before responding.
	Err error
}

// Error implements error.
func (e *SendError) Error() string {
	outcome := "not delivered"
	if e.MaybeDelivered {
		outcome = "the message may have been delivered"
	}
	op := map[string]string{"wait": "wait for the connection to", "write": "write to", "read": "read the response from"}[e.Op]
	if op == "" {
		op = e.Op
	}
	return fmt.Sprintf("mllp: %s %s: %v (%s)", op, e.Addr, e.Err, outcome)
}

// Unwrap returns Err.
func (e *SendError) Unwrap() error { return e.Err }

// Temporary reports whether sending again may succeed: true for network
// failures, timeouts and cancellations, false when the server's response
// broke the protocol (over MaxMessageSize or badly framed).
func (e *SendError) Temporary() bool {
	return !errors.Is(e.Err, ErrMessageTooLarge) && !errors.Is(e.Err, ErrInvalidFrame)
}

// MaybeDelivered reports whether err, returned by Send, leaves open that the
// server received the message, so that sending it again may duplicate it.
// It is false for a nil error (delivered and acknowledged) and for errors
// raised before the whole frame was written.
func MaybeDelivered(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.MaybeDelivered
}

// clientConn is one connection of a Client. Its read loop reads every frame
// the server writes, so that a connection closed by the server while idle is
// noticed before the next message is written on it.
type clientConn struct {
	net.Conn
	frames chan readResult // capacity 1: the frame read and not yet taken
	done   chan struct{}   // closed when the read loop stopped
}

type readResult struct {
	msg []byte
	err error
}

func newClientConn(nc net.Conn, maxSize int) *clientConn {
	cc := &clientConn{Conn: nc, frames: make(chan readResult, 1), done: make(chan struct{})}
	go cc.readLoop(NewReader(nc, maxSize))
	return cc
}

// readLoop hands the frames read to exchange until a read error (which it
// hands over too) or a second frame nobody asked for.
func (cc *clientConn) readLoop(r *Reader) {
	defer close(cc.done)
	for {
		msg, err := r.ReadMessage()
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection closed by the server: %w", io.ErrUnexpectedEOF)
		}
		select {
		case cc.frames <- readResult{msg, err}:
		default:
			return // an unanswered frame is waiting: the connection is out of step
		}
		if err != nil {
			return
		}
	}
}

// idle reports whether cc can carry the next message: the read loop runs and
// the server wrote nothing since the last response.
func (cc *clientConn) idle() bool {
	select {
	case <-cc.done:
		return false
	default:
		return len(cc.frames) == 0
	}
}
