package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/internal/server"
)

func TestServeRefusesPublicAddressWithoutKeys(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "costwise.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[providers.openai]\napi_key_env = \"CW_SERVE_TEST_KEY\"\n"), 0o600))
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--addr", "0.0.0.0:0", "--config", cfg, "--ledger", filepath.Join(t.TempDir(), "l.db")}, &out, &errb)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errb.String(), "refusing to listen on 0.0.0.0:0 without API keys")
}

func TestServeBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "costwise.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[[server.key]]\nname = \"a\"\nkey_sha256 = \"nothex\"\n"), 0o600))
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--config", cfg}, &out, &errb)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errb.String(), "costwise.toml:3:1: server.key[0].key_sha256: is not 64 hex digits")
}

// TestServeWorkflowsMatchCLI: the HTTP planning endpoints give the JSON
// the commands print.
func TestServeWorkflowsMatchCLI(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "support-triage", "workflow.toml")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	cat, err := catalog.Default()
	require.NoError(t, err)
	svc := &cliWorkflows{cat: cat}

	var cli bytes.Buffer
	require.Equal(t, 0, run([]string{"estimate", "--json", path}, &cli, &bytes.Buffer{}))
	status, body, err := svc.Workflow(context.Background(), server.KindEstimate, path, src)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	var viaHTTP bytes.Buffer
	require.NoError(t, writeJSON(&viaHTTP, body))
	assert.JSONEq(t, cli.String(), viaHTTP.String())

	for _, tc := range []struct {
		kind server.WorkflowKind
		args []string
	}{
		{server.KindPlan, []string{"plan", "--json", path}},
		{server.KindPreview, []string{"preview", "--format", "json", path}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			var cli bytes.Buffer
			require.Equal(t, 0, run(tc.args, &cli, &bytes.Buffer{}))
			status, body, err := svc.Workflow(context.Background(), tc.kind, path, src)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			var viaHTTP bytes.Buffer
			require.NoError(t, writeJSON(&viaHTTP, body))
			var a, b map[string]any
			require.NoError(t, json.Unmarshal(cli.Bytes(), &a))
			require.NoError(t, json.Unmarshal(viaHTTP.Bytes(), &b))
			delete(a, "stats") // search time and node counts vary run to run
			delete(b, "stats")
			assert.Equal(t, a, b)
		})
	}

	_, _, err = svc.Workflow(context.Background(), server.KindPlan, "request.toml", []byte("[workflow]\nname = 3\n"))
	var ie *server.InputError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, ie.Msg, `request.toml:1:1: workflow: unknown key "workflow"`)
}
