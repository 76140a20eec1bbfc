package mllp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientSend(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	b := setup(t, &Server{Handler: HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		if string(msg) == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return append([]byte("ACK:"), msg...)
	})})
	t.Cleanup(func() { close(release) })

	t.Run("exchange", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		require.Equal(t, "ACK:1", send(t, c, "1"))
		require.Equal(t, "ACK:2", send(t, c, "2"))
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Send(ctx, []byte("slow"))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 3*time.Second)

		// The stream state is unknown: the client refuses further sends.
		_, err = c.Send(context.Background(), []byte("1"))
		require.ErrorContains(t, err, "unusable")
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.Send(ctx, []byte("slow"))
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("context already done", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Send(ctx, []byte("1"))
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, "ACK:2", send(t, c, "2"), "nothing was sent, the client is still usable")
	})
	t.Run("invalid content", func(t *testing.T) {
		t.Parallel()
		c := b.dial(t)
		_, err := c.Send(context.Background(), []byte("a\x1cb"))
		require.ErrorIs(t, err, ErrInvalidContent)
		require.Equal(t, "ACK:2", send(t, c, "2"))
	})
}

func TestDialError(t *testing.T) {
	t.Parallel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, addr)
	require.ErrorContains(t, err, "mllp: dial")
}
