package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFollowCommand: what send-sample prints to follow its report works
// pasted into a shell that has no variable set (issue #20, item 12), the
// token's and the id's characters intact.
func TestFollowCommand(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	const token = `it's "a" $token of 32 characters at least`
	const documentID = "1.2.250.1.999.42.1.4^DEMO-x&y"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Path != "/api/v1/reports" || r.URL.Query().Get("document_id") != documentID {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"id":7}`))
	}))
	defer api.Close()
	addr := strings.TrimPrefix(api.URL, "http://")

	command := followCommand(mapEnv(map[string]string{"MSSDISPATCH_HTTP_ADDR": addr, "MSSDISPATCH_API_TOKEN": token}), documentID)
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, `{"id":7}`, string(out), command)

	command = followCommand(mapEnv(map[string]string{"MSSDISPATCH_HTTP_ADDR": addr}), documentID)
	require.True(t, strings.HasPrefix(command, "http://"+addr+"/ (the dashboard"), "without a token, the dashboard: %s", command)
	require.NotContains(t, command, "$", "no variable")
}
