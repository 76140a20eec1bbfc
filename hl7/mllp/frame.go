package mllp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
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
	Head  []byte // the first HeadSize bytes of the content (all of it if shorter), enough to find the MSH segment
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("mllp: message of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// Reader buffer sizes.
const (
	readBufferSize = 32 << 10 // the bufio.Reader's: a frame that fits is copied once, to the message
	chunkSize      = 64 << 10 // a larger frame is gathered in chunks of this size, then copied to the message
)

// chunkPool holds the chunks of the frames being read, shared by all Readers
// so that a frame larger than the read buffer leaves no garbage but its message.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Reader reads MLLP frames from a byte stream.
type Reader struct {
	br        *bufio.Reader
	max       int
	chunkSize int
	chunks    [][]byte // content of the frame being read, when larger than the read buffer
	n         int      // content bytes in chunks

	// Set by the Server: the budget the bytes of frames are taken from, and
	// what ends a wait for it (the connection's context and read deadline).
	lease    *lease
	ctx      context.Context
	deadline time.Time
	reserved int64 // bytes of lease taken for the chunks
	handed   int64 // bytes of lease taken for the message last returned
}

// NewReader returns a Reader of frames of at most maxSize content bytes (DefaultMaxMessageSize when maxSize <= 0).
func NewReader(r io.Reader, maxSize int) *Reader {
	return newReader(r, maxSize, readBufferSize, chunkSize)
}

func newReader(r io.Reader, maxSize, bufSize, chunk int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: maxSize, chunkSize: min(chunk, maxSize)}
}

// ReadMessage returns the content of the next frame, in a new slice that the caller owns.
//
// Bytes before StartBlock are skipped. A StartBlock inside a frame restarts
// the frame (the sender abandoned the previous one). EndBlock must be
// followed by CarriageReturn or by the end of the stream; any other byte gives
// ErrInvalidFrame (the byte is left unread). A frame over the limit is read to
// its end and reported as a *TooLargeError, after which reading can go on.
// ReadMessage returns io.EOF when the stream ends between frames (possibly
// after skipped bytes) and io.ErrUnexpectedEOF when it ends inside a frame;
// other read errors are wrapped.
//
// Memory: a frame that fits in the 32 KiB read buffer is copied once, into
// the message; a larger one is gathered in 64 KiB chunks (pooled), then
// copied into a message of its exact size. A frame over the limit is not
// kept beyond its first HeadSize bytes.
func (r *Reader) ReadMessage() ([]byte, error) {
	r.releaseMessage()
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

	var (
		msg      []byte
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
			r.dropChunks()
			size, tooLarge = 0, nil
			data = data[bytes.LastIndexByte(data, StartBlock)+1:]
		}
		size += int64(len(data))
		switch {
		case tooLarge != nil:
			if n := HeadSize - len(tooLarge.Head); n > 0 {
				tooLarge.Head = append(tooLarge.Head, data[:min(len(data), n)]...)
			}
		case size > int64(r.max):
			tooLarge = &TooLargeError{Limit: r.max, Head: r.head(data)}
			r.dropChunks()
		case err == nil && len(r.chunks) == 0:
			// The whole frame is in the read buffer (the common case):
			// copy it now, before the next read overwrites it.
			if terr := r.take(len(data)); terr != nil {
				return nil, terr
			}
			msg = append([]byte{}, data...) // non-nil, even when empty
			r.handed, r.reserved = r.reserved, 0
		default:
			if werr := r.write(data); werr != nil {
				r.dropChunks()
				return nil, werr
			}
			if err == nil {
				msg = r.join()
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		r.dropChunks()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("mllp: read frame: %w", err)
	}

	switch b, err := r.br.ReadByte(); {
	case err == io.EOF:
		// EndBlock then end of stream: accepted, the next call returns io.EOF.
	case err != nil:
		r.releaseMessage()
		return nil, fmt.Errorf("mllp: read frame end: %w", err)
	case b != CarriageReturn:
		_ = r.br.UnreadByte()
		r.releaseMessage()
		return nil, ErrInvalidFrame
	}
	if tooLarge != nil {
		tooLarge.Size = size
		return nil, tooLarge
	}
	return msg, nil
}

// take reserves n bytes of the budget, if any, for the frame being read.
func (r *Reader) take(n int) error {
	if r.lease == nil || n == 0 {
		return nil
	}
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := r.lease.acquire(ctx, r.deadline, int64(n)); err != nil {
		return err
	}
	r.reserved += int64(n)
	return nil
}

// write appends data to the chunks, taking a new chunk when the last is
// full; the caller made sure that the content stays within the limit, so
// that the chunks never hold more than max bytes.
func (r *Reader) write(data []byte) error {
	for len(data) > 0 {
		if len(r.chunks) == 0 || len(r.chunks[len(r.chunks)-1]) == r.chunkSize {
			size := min(r.chunkSize, r.max-r.n)
			if err := r.take(size); err != nil {
				return err
			}
			var c []byte
			if size == chunkSize {
				c = chunkPool.Get().(*[chunkSize]byte)[:0]
			} else {
				c = make([]byte, 0, size)
			}
			r.chunks = append(r.chunks, c)
		}
		last := &r.chunks[len(r.chunks)-1]
		k := copy((*last)[len(*last):cap(*last)], data)
		*last = (*last)[:len(*last)+k]
		data = data[k:]
		r.n += k
	}
	return nil
}

// join returns the content of the chunks as one message and frees them; the
// message keeps its size of the bytes reserved for the chunks.
func (r *Reader) join() []byte {
	msg := bytes.Join(r.chunks, nil)
	if r.lease != nil {
		r.handed = int64(len(msg))
		r.reserved -= r.handed
	}
	r.dropChunks()
	return msg
}

// head returns the first HeadSize bytes of the chunks followed by data.
func (r *Reader) head(data []byte) []byte {
	h := make([]byte, 0, min(HeadSize, r.n+len(data)))
	for _, c := range r.chunks {
		h = append(h, c[:min(len(c), HeadSize-len(h))]...)
	}
	return append(h, data[:min(len(data), HeadSize-len(h))]...)
}

// dropChunks frees the chunks and releases what was reserved for them.
func (r *Reader) dropChunks() {
	for i, c := range r.chunks {
		if cap(c) == chunkSize {
			chunkPool.Put((*[chunkSize]byte)(c[:chunkSize]))
		}
		r.chunks[i] = nil
	}
	r.chunks, r.n = r.chunks[:0], 0
	if r.reserved > 0 {
		r.lease.release(r.reserved)
		r.reserved = 0
	}
}

// releaseMessage releases the bytes reserved for the message last returned
// (the Server calls it once the handler returned).
func (r *Reader) releaseMessage() {
	if r.handed > 0 {
		r.lease.release(r.handed)
		r.handed = 0
	}
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
