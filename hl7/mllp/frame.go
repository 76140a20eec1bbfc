package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
)

// Frame bytes of MLLP: a message travels as StartBlock, message, EndBlock, CarriageReturn.
const (
	StartBlock     = 0x0B // vertical tab, starts a frame
	EndBlock       = 0x1C // file separator, ends a frame
	CarriageReturn = 0x0D // follows EndBlock
)

// DefaultMaxMessageSize is the frame content limit used when none is given (16 MiB).
const DefaultMaxMessageSize = 16 << 20

// HeadSize is how many bytes of an oversize frame TooLargeError.Head keeps.
const HeadSize = 4 << 10

// ErrMessageTooLarge matches (with errors.Is) the *TooLargeError of an oversize frame.
var ErrMessageTooLarge = errors.New("mllp: message too large")

// ErrInvalidFrame reports a frame whose EndBlock is followed by another byte than CarriageReturn.
var ErrInvalidFrame = errors.New("mllp: invalid frame: end block not followed by carriage return")

// ErrInvalidContent reports a message that cannot be framed because it contains StartBlock or EndBlock.
var ErrInvalidContent = errors.New("mllp: message contains a frame delimiter")

// TooLargeError reports a frame larger than the limit. The frame has been read
// (and discarded) up to its end, so the stream can go on with the next frame.
type TooLargeError struct {
	Limit int    // the limit in bytes
	Size  int64  // size of the frame content in bytes
	Head  []byte // the first HeadSize bytes of the content, enough to find the MSH segment
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("mllp: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// Reader reads MLLP frames from a byte stream.
type Reader struct {
	br  *bufio.Reader
	max int
}

// NewReader returns a Reader of frames of at most maxSize content bytes (DefaultMaxMessageSize when maxSize <= 0).
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &Reader{br: bufio.NewReaderSize(r, 32<<10), max: maxSize}
}

// ReadMessage returns the content of the next frame.
//
// Bytes before StartBlock are skipped. A StartBlock inside a frame restarts
// the frame (the sender abandoned the previous one). EndBlock must be
// followed by CarriageReturn or by the end of the stream; any other byte gives
// ErrInvalidFrame (the byte is left unread). A frame over the limit is read to
// its end and reported as a *TooLargeError, after which reading can go on.
// ReadMessage returns io.EOF when the stream ends between frames (possibly
// after skipped bytes) and io.ErrUnexpectedEOF when it ends inside a frame;
// other read errors are wrapped.
func (r *Reader) ReadMessage() ([]byte, error) {
	for {
		b, err := r.br.ReadByte()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("mllp: read: %w", err)
		}
		if b == StartBlock {
			break
		}
	}

	buf := []byte{}
	var (
		size     int64
		tooLarge *TooLargeError
	)
	for {
		chunk, err := r.br.ReadSlice(EndBlock)
		data := chunk
		if err == nil {
			data = chunk[:len(chunk)-1]
		}
		// A start block inside a frame starts it again (the sender gave
		// up on the first). IndexByte first: LastIndexByte is not
		// vectorized, and most chunks hold none.
		if bytes.IndexByte(data, StartBlock) >= 0 {
			buf, size, tooLarge = buf[:0], 0, nil
			data = data[bytes.LastIndexByte(data, StartBlock)+1:]
		}
		size += int64(len(data))
		switch {
		case tooLarge != nil:
		case size > int64(r.max):
			head := append(buf[:len(buf):len(buf)], data[:min(len(data), max(0, HeadSize-len(buf)))]...)
			tooLarge = &TooLargeError{Limit: r.max, Head: bytes.Clone(head[:min(len(head), HeadSize)])}
			buf = nil
		default:
			buf = append(buf, data...)
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("mllp: read frame: %w", err)
	}

	switch b, err := r.br.ReadByte(); {
	case err == io.EOF:
		// EndBlock then end of stream: accepted, the next call returns io.EOF.
	case err != nil:
		return nil, fmt.Errorf("mllp: read frame end: %w", err)
	case b != CarriageReturn:
		_ = r.br.UnreadByte()
		return nil, ErrInvalidFrame
	}
	if tooLarge != nil {
		tooLarge.Size = size
		return nil, tooLarge
	}
	if buf == nil {
		buf = []byte{} // an empty frame is an empty, non-nil message
	}
	return buf, nil
}

// peek waits for the next byte without consuming it.
func (r *Reader) peek() error {
	_, err := r.br.Peek(1)
	return err
}

// WriteMessage writes msg as one MLLP frame (in a single write when w is a network connection).
func WriteMessage(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return ErrInvalidContent
	}
	bufs := net.Buffers{{StartBlock}, msg, {EndBlock, CarriageReturn}}
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("mllp: write frame: %w", err)
	}
	return nil
}
