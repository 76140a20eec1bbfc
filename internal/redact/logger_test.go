package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

func TestLogger(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := redact.Logger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	leak := "550 5.1.1 <280017512345678@patient.mssante.fr>: no such user"
	log.With("job", leak).Debug("http: panic serving 10.0.0.1: "+leak,
		"error", errors.New(leak), "attempt", 2, "took", time.Second,
		slog.Group("args", "to", "279035121518989@Patient.MSSante.fr"))
	slog.NewLogLogger(log.Handler(), slog.LevelWarn).Print("TLS handshake error: " + leak)
	got := out.String()
	require.NotContains(t, got, "280017512345678")
	require.NotContains(t, got, "279035121518989")
	require.NotContains(t, got, "atient.mssante.fr")
	require.Contains(t, got, "550 5.1.1", "the codes stay")
	require.Contains(t, got, "attempt=2 took=1s", "numbers and durations as they were")
	require.Equal(t, 2, bytes.Count(out.Bytes(), []byte("\n")))
}
