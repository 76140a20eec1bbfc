package mllp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

func TestReadMessage(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("0123456789", 10_000) // larger than the bufio buffer
	tests := []struct {
		name    string
		input   string
		max     int
		want    []string
		wantErr error // error after the messages
	}{
		{"one frame", frame("MSH|a"), 0, []string{"MSH|a"}, io.EOF},
		{"two frames", frame("A") + frame("B"), 0, []string{"A", "B"}, io.EOF},
		{"empty stream", "", 0, nil, io.EOF},
		{"empty frame", frame(""), 0, []string{""}, io.EOF},
		{"garbage before start block", "garbage\r\n" + frame("A") + "\r\n\x00" + frame("B"), 0, []string{"A", "B"}, io.EOF},
		{"garbage then end of stream", frame("A") + "trailing junk", 0, []string{"A"}, io.EOF},
		{"end block then end of stream", "\x0bA\x1c", 0, []string{"A"}, io.EOF},
		{"end block not followed by CR", "\x0bA\x1c\x0bB\x1c\r", 0, nil, ErrInvalidFrame},
		{"end of stream inside frame", "\x0bMSH|partial", 0, nil, io.ErrUnexpectedEOF},
		{"start block restarts the frame", "\x0babandoned\x0bA\x1c\r", 0, []string{"A"}, io.EOF},
		{"segments keep their CR", frame("MSH|1\rPID|2\r"), 0, []string{"MSH|1\rPID|2\r"}, io.EOF},
		{"large frame", frame(big), 0, []string{big}, io.EOF},
		{"exactly at the limit", frame("12345"), 5, []string{"12345"}, io.EOF},
		{"over the limit", frame("123456"), 5, nil, ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []*Reader{
				NewReader(strings.NewReader(tt.input), tt.max),
				newReader(strings.NewReader(tt.input), tt.max, 16, 7), // frames over many chunks
			} {
				var got []string
				var err error
				for {
					var msg []byte
					msg, err = r.ReadMessage()
					if err != nil {
						break
					}
					require.NotNil(t, msg)
					got = append(got, string(msg))
				}
				require.Equal(t, tt.want, got)
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// TestReadMessageBudget checks the bytes a Reader takes from a budget: the
// size of the message it returned, until the next call or releaseMessage,
// and nothing after an error.
func TestReadMessageBudget(t *testing.T) {
	t.Parallel()

	big := strings.Repeat("0123456789", 10)
	input := frame(big) + frame("A") + "\x0babandoned" + frame("B") + frame(big+"!") +
		"\x0bC\x1cX" + frame("") + frame(big) + "\x0bpartial"
	for _, r := range []*Reader{
		newReader(strings.NewReader(input), 100, 16, 7),
		newReader(strings.NewReader(input), 100, 16, 64),
		newReader(strings.NewReader(input), 100, 256, 1000),
	} {
		bb := setupBudget(t, 100, 0)
		r.lease = bb.b.newLease()
		type result struct {
			msg  string
			err  error
			used int64
		}
		var got []result
		for {
			msg, err := r.ReadMessage()
			used, _ := bb.b.stats()
			got = append(got, result{string(msg), err, used})
			if errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
		}
		require.Len(t, got, 8)
		for i, want := range []result{
			{big, nil, 100},
			{"A", nil, 1},
			{"B", nil, 1},
			{"", ErrMessageTooLarge, 0},
			{"", ErrInvalidFrame, 0},
			{"", nil, 0},
			{big, nil, 100},
			{"", io.ErrUnexpectedEOF, 0},
		} {
			require.Equal(t, want.msg, got[i].msg, "message %d", i)
			require.ErrorIs(t, got[i].err, want.err, "message %d", i)
			require.Equal(t, want.used, got[i].used, "message %d", i)
		}
		r.releaseMessage()
		bb.requireUsed(t, 0)
		require.Zero(t, bb.b.holders)
		require.Empty(t, r.chunks)
	}
}

// TestReadMessageBudgetWait checks that a frame waits for room in the
// budget until the Reader's deadline, then fails with the bytes released.
func TestReadMessageBudgetWait(t *testing.T) {
	t.Parallel()

	bb := setupBudget(t, 100, 1)
	other := bb.leases[0]
	require.NoError(t, other.acquire(context.Background(), time.Time{}, 60))

	pr, pw := io.Pipe()
	r := newReader(pr, 100, 16, 7)
	r.lease = bb.b.newLease()
	r.deadline = time.Now().Add(5 * time.Second)
	type result struct {
		msg []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		msg, err := r.ReadMessage()
		done <- result{msg, err}
	}()
	t.Cleanup(func() { _ = pw.Close() })
	write := func(s string) { go func() { _, _ = pw.Write([]byte(s)) }() } // blocks while the Reader waits
	write("\x0b" + strings.Repeat("x", 50))
	require.Eventually(t, func() bool {
		bb.b.mu.Lock()
		defer bb.b.mu.Unlock()
		return len(bb.b.waiters) == 1
	}, 5*time.Second, time.Millisecond, "waiting for room")
	bb.requireUsed(t, 60+35)

	other.release(60) // room: the frame goes on
	require.Eventually(t, func() bool {
		bb.b.mu.Lock()
		defer bb.b.mu.Unlock()
		return len(bb.b.waiters) == 0
	}, 5*time.Second, time.Millisecond, "room granted")
	write(strings.Repeat("y", 50) + "\x1c\r")
	res := <-done
	require.NoError(t, res.err)
	require.Equal(t, strings.Repeat("x", 50)+strings.Repeat("y", 50), string(res.msg))
	bb.requireUsed(t, 100)

	// The same, but nobody makes room before the deadline.
	r.releaseMessage()
	require.NoError(t, other.acquire(context.Background(), time.Time{}, 60))
	r.deadline = time.Now().Add(100 * time.Millisecond)
	go func() {
		msg, err := r.ReadMessage()
		done <- result{msg, err}
	}()
	write("\x0b" + strings.Repeat("x", 50))
	res = <-done
	require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
	require.Nil(t, res.msg)
	bb.requireUsed(t, 60)
	require.Empty(t, r.chunks)
}

func TestReadMessageTooLargeThenContinue(t *testing.T) {
	t.Parallel()

	huge := "MSH|^~\\&|A|B|C|D|1||ORU^R01|CTRL-9|P|2.5\r" + strings.Repeat("x", 100_000)
	r := NewReader(strings.NewReader(frame(huge)+frame("next")), 1000)

	_, err := r.ReadMessage()
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	require.ErrorIs(t, err, ErrMessageTooLarge)
	require.Equal(t, 1000, tl.Limit)
	require.Equal(t, int64(len(huge)), tl.Size)
	require.Equal(t, huge[:HeadSize], string(tl.Head))
	require.Contains(t, tl.Error(), "exceeds the limit of 1000 bytes")

	msg, err := r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "next", string(msg))

	// A small limit keeps what was read before the limit in Head.
	r = NewReader(strings.NewReader(frame("0123456789")), 4)
	_, err = r.ReadMessage()
	require.ErrorAs(t, err, &tl)
	require.Equal(t, "0123456789", string(tl.Head))
}

func TestReadMessageInvalidFrameLeavesByte(t *testing.T) {
	t.Parallel()

	r := NewReader(strings.NewReader("\x0bA\x1c\x0bB\x1c\r"), 0)
	_, err := r.ReadMessage()
	require.ErrorIs(t, err, ErrInvalidFrame)
	msg, err := r.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "B", string(msg))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadMessageWrapsErrors(t *testing.T) {
	t.Parallel()

	boom := errors.New("boom")
	_, err := NewReader(errReader{boom}, 0).ReadMessage()
	require.ErrorIs(t, err, boom)
	_, err = NewReader(io.MultiReader(strings.NewReader("\x0bpartial"), errReader{boom}), 0).ReadMessage()
	require.ErrorIs(t, err, boom)
}

func TestWriteMessage(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	require.NoError(t, WriteMessage(&buf, []byte("MSH|1\r")))
	require.Equal(t, "\x0bMSH|1\r\x1c\r", buf.String())

	buf.Reset()
	require.ErrorIs(t, WriteMessage(&buf, []byte("a\x1cb")), ErrInvalidContent)
	require.ErrorIs(t, WriteMessage(&buf, []byte("a\x0bb")), ErrInvalidContent)
	require.Zero(t, buf.Len())
}

// FuzzReader checks that ReadMessage never panics nor returns a message over
// the limit or holding a frame byte; that a Reader gathering frames in tiny
// chunks, with a budget, reads the same (holding in the budget the size of
// the message returned, nothing after an error); and that frames written by
// WriteMessage are read back unchanged.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"",
		frame("MSH|a") + frame("B"),
		"junk" + frame("A") + "\x0bA\x1c",
		"\x0bA\x1cX",
		"\x0b\x0b\x1c\r\x1c\r",
		frame(strings.Repeat("z", 300)),
		"A\x00B\x00\x00C",
		"\x0b" + strings.Repeat("y", 40) + "\x0b" + strings.Repeat("z", 30) + "\x1c\r",
		frame(strings.Repeat("w", 255)) + frame(strings.Repeat("v", 257)) + frame("u"),
		"\x0b" + strings.Repeat("t", 300) + "\x0bs\x1c\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		r := NewReader(bytes.NewReader(data), limit)
		small := newReader(bytes.NewReader(data), limit, 16, 7)
		bb := setupBudget(t, limit, 0)
		small.lease = bb.b.newLease()
		for range len(data) + 1 {
			msg, err := r.ReadMessage()
			smallMsg, smallErr := small.ReadMessage()
			require.Equal(t, msg, smallMsg)
			require.Equal(t, err, smallErr)
			used, _ := bb.b.stats()
			require.Equal(t, int64(len(smallMsg)), used)
			if err != nil {
				var tl *TooLargeError
				switch {
				case errors.As(err, &tl):
					require.Greater(t, tl.Size, int64(limit))
					require.LessOrEqual(t, len(tl.Head), HeadSize)
					continue
				case errors.Is(err, ErrInvalidFrame):
					continue
				}
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "unexpected error %v", err)
				break
			}
			require.LessOrEqual(t, len(msg), limit)
			require.NotContains(t, string(msg), "\x0b")
			require.NotContains(t, string(msg), "\x1c")
		}

		// Round trip: the input split on NUL, without frame bytes, as messages.
		clean := bytes.Map(func(r rune) rune {
			if r == StartBlock || r == EndBlock {
				return -1
			}
			return r
		}, data)
		msgs := bytes.Split(clean, []byte{0})
		var stream bytes.Buffer
		for _, m := range msgs {
			require.NoError(t, WriteMessage(&stream, m))
		}
		r = NewReader(&stream, 0)
		for _, m := range msgs {
			got, err := r.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, string(m), string(got))
		}
		_, err := r.ReadMessage()
		require.Equal(t, io.EOF, err)
	})
}
