package mail

import (
	"bytes"
	"testing"

	"github.com/emersion/go-message"
	"github.com/stretchr/testify/require"
)

// goMessageBase64 is the body go-message writes for data in a base64 part:
// what Message.Bytes wrote before it had base64Lines.
func goMessageBase64(t testing.TB, data []byte) []byte {
	var h message.Header
	h.Set("Content-Transfer-Encoding", "base64")
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, body, ok := bytes.Cut(buf.Bytes(), []byte("\r\n\r\n"))
	require.True(t, ok)
	return body
}

func TestBase64Lines(t *testing.T) {
	t.Parallel()
	// Around the lengths where a line (57 bytes, 76 characters) or a
	// quantum (3 bytes) ends.
	for _, n := range []int{0, 1, 2, 3, 4, 56, 57, 58, 113, 114, 115, 171, 1000, 100 << 10} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + n)
		}
		got := base64Lines(data)
		require.Equal(t, string(goMessageBase64(t, data)), string(got), "%d bytes", n)
		for _, line := range bytes.Split(got, []byte("\r\n")) {
			require.LessOrEqual(t, len(line), 76)
		}
	}
}

func FuzzBase64Lines(f *testing.F) {
	f.Add([]byte("%PDF-1.4"))
	f.Add(bytes.Repeat([]byte{0xff}, 57))
	f.Fuzz(func(t *testing.T, data []byte) {
		require.Equal(t, goMessageBase64(t, data), base64Lines(data))
	})
}
