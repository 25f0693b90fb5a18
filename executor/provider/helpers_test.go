package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/provider/providertest"
)

// Fake keys; tests assert they never appear in error messages.
const (
	keyA = "sk-test-AAAAAAAAAAAAAAAAAAAAAAAA"
	keyB = "sk-test-BBBBBBBBBBBBBBBBBBBBBBBB"
)

// newTestClient builds a client of kind against srv with one key per env
// var given (values keyA, keyB in order).
func newTestClient(t *testing.T, kind Kind, srv *providertest.Server, mod func(*ProviderConfig), envs ...string) *client {
	t.Helper()
	vals := []string{keyA, keyB}
	if len(envs) == 0 {
		envs = []string{"CW_TEST_KEY_A"}
	}
	for i, e := range envs {
		t.Setenv(e, vals[i])
	}
	pc := ProviderConfig{Name: string(kind), Kind: kind, APIKeyEnv: envs, BaseURL: srv.BaseURL(), Timeout: 5 * time.Second}
	if mod != nil {
		mod(&pc)
	}
	cl, err := newClient(pc)
	require.NoError(t, err)
	return cl
}

// callErr runs req and returns its *Error (failing the test when the call
// succeeds or returns another type).
func callErr(t *testing.T, cl Client, req Request) *Error {
	t.Helper()
	_, err := cl.Call(context.Background(), req)
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "error %T %v is not *Error", err, err)
	return e
}
