package mllp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

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
			r := NewReader(strings.NewReader(tt.input), tt.max)
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
		})
	}
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
// the limit or holding a frame byte, and that frames written by WriteMessage
// are read back unchanged.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"",
		frame("MSH|a") + frame("B"),
		"junk" + frame("A") + "\x0bA\x1c",
		"\x0bA\x1cX",
		"\x0b\x0b\x1c\r\x1c\r",
		frame(strings.Repeat("z", 300)),
		"A\x00B\x00\x00C",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		r := NewReader(bytes.NewReader(data), limit)
		for range len(data) + 1 {
			msg, err := r.ReadMessage()
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
				require.True(t, err == io.EOF || err == io.ErrUnexpectedEOF, "unexpected error %v", err)
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
