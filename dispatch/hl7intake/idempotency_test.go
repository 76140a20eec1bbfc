package hl7intake_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestRetransmissionGetsTheSameACK(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := oru(t, n1)
	first := b.handler.ServeMLLP(b.ctx, msg)
	require.Equal(t, "AA", parseACK(t, first).Segment("MSA").Get(1))

	// Byte for byte, also when the DPI resends with other line ends and a new MSH-7.
	again := bytes.ReplaceAll(msg, []byte("\r"), []byte("\r\n"))
	again = bytes.Replace(again, []byte("|20261122100000||ORU"), []byte("|20261122100500||ORU"), 1)
	require.Equal(t, first, b.handler.ServeMLLP(b.ctx, again))
	require.Equal(t, first, b.handler.HandleHL7(b.ctx, msg), "whatever the channel")
	require.Equal(t, 1, b.count(t, "reports"))
	require.Equal(t, 0, b.count(t, "quarantine"))
}

func TestConcurrentRetransmissions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := oru(t, n1)
	acks := make([][]byte, 100)
	var wg sync.WaitGroup
	for i := range acks {
		wg.Go(func() { acks[i] = b.handler.ServeMLLP(b.ctx, msg) })
	}
	wg.Wait()
	for _, ack := range acks {
		require.Equal(t, acks[0], ack, "every retransmission gets the first ACK")
	}
	require.Equal(t, "AA", parseACK(t, acks[0]).Segment("MSA").Get(1))
	require.Equal(t, 1, b.count(t, "reports"), "exactly one report")
	var attempts int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT attempts FROM inbound_messages").Scan(&attempts))
	require.Equal(t, 100, attempts)
}

func TestReusedControlID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "AA", parseACK(t, b.handler.ServeMLLP(b.ctx, oru(t, n1))).Segment("MSA").Get(1))

	other := oru(t, n1, replace("PID", "DUPONT^Marie", "DURAND^Paul"))
	ack := parseACK(t, b.handler.ServeMLLP(b.ctx, other))
	require.Equal(t, "AE", ack.Segment("MSA").Get(1))
	require.Equal(t, "205", ack.Segment("ERR").Component(3, 1))
	require.Equal(t, "MSH", ack.Segment("ERR").Component(2, 1))
	require.Equal(t, 1, b.count(t, "reports"))
	require.Equal(t, 1, b.count(t, "quarantine"), "the other message is kept, not lost")
}

func TestRefusedMessagesAreKept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := oru(t, n1, replace("OBX", "^Base64^", "^Base64^!!"))
	first := b.handler.ServeMLLP(b.ctx, bad)
	require.Equal(t, "AE", parseACK(t, first).Segment("MSA").Get(1))
	require.Equal(t, first, b.handler.ServeMLLP(b.ctx, bad), "a retransmitted refusal gets the same ACK")

	garbage := []byte("MSH|^~\\&|DPI\rPID|1\r")
	require.Equal(t, "AE", parseACK(t, b.handler.ServeMLLP(b.ctx, garbage)).Segment("MSA").Get(1))

	rows, err := b.pool.Query(b.ctx, "SELECT reason, raw FROM quarantine ORDER BY id")
	require.NoError(t, err)
	var kept [][]byte
	for rows.Next() {
		var reason string
		var raw []byte
		require.NoError(t, rows.Scan(&reason, &raw))
		require.NotEmpty(t, reason)
		kept = append(kept, raw)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, [][]byte{bad, garbage}, kept, "each refused message kept once, whole")
	require.Zero(t, b.count(t, "reports"))
	require.True(t, strings.Contains(string(kept[0]), "OBX"))
}
