package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Client sends messages over one MLLP connection and reads their responses.
// It is safe for concurrent use; messages are exchanged one at a time.
type Client struct {
	conn net.Conn
	r    *Reader

	mu  sync.Mutex
	err error // set once an exchange failed: the stream state is unknown
}

// Dial connects to the MLLP server at addr (host:port) over TCP; ctx bounds the connection attempt.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	return NewClient(conn), nil
}

// NewClient returns a Client using conn (for instance a TLS connection); the Client owns conn.
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn, r: NewReader(conn, DefaultMaxMessageSize)}
}

// Send writes msg as one frame and returns the content of the response frame.
// The exchange is bounded by ctx (its deadline becomes the connection deadline
// and its cancellation interrupts the I/O). After a failed exchange the
// Client is unusable: close it and dial again.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	deadline, hasDeadline := ctx.Deadline()
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = c.conn.SetDeadline(time.Unix(1, 0)) // unblock the I/O in progress
	})
	defer func() {
		if !stop() {
			<-interrupted // the past deadline is set before the next Send resets it
		}
	}()

	resp, err := c.exchange(msg)
	if err == nil {
		return resp, nil
	}
	if errors.Is(err, ErrInvalidContent) {
		return nil, err // nothing was written
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("mllp: send: %w (%v)", ctxErr, err)
	} else if hasDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("mllp: send: %w (%v)", context.DeadlineExceeded, err)
	}
	c.err = fmt.Errorf("mllp: client unusable after a failed exchange: %w", err)
	return nil, err
}

func (c *Client) exchange(msg []byte) ([]byte, error) {
	if err := WriteMessage(c.conn, msg); err != nil {
		return nil, err
	}
	resp, err := c.r.ReadMessage()
	if err == io.EOF {
		return nil, fmt.Errorf("mllp: connection closed before the response: %w", io.ErrUnexpectedEOF)
	}
	return resp, err
}

// Close closes the connection.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("mllp: close: %w", err)
	}
	return nil
}
