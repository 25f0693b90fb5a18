package server

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/planner/cascade"
)

// saveClassifier trains a prompt classifier on an outcome table in which
// openai/small answers greetings right and sonnets wrong, openai/large
// both, and saves it as `costwise eval --save-classifier` does.
func saveClassifier(t *testing.T, models ...string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1200
	tab := &cascade.Table{Models: models, Perf: [][]float64{make([]float64, n), make([]float64, n)},
		Cost: [][]float64{make([]float64, n), make([]float64, n)}, Conf: [][]float64{nil, nil}}
	for r := range n {
		sonnet := rng.IntN(2) == 0
		if sonnet {
			tab.Prompt = append(tab.Prompt, fmt.Sprintf("Write a sonnet about the sea, number %d.", r))
		} else {
			tab.Prompt = append(tab.Prompt, fmt.Sprintf("Say hello to visitor %d.", r))
			tab.Perf[0][r] = 1
		}
		tab.Perf[1][r] = 1
		tab.Cost[0][r], tab.Cost[1][r] = 0.0001, 0.01
		tab.Origin = append(tab.Origin, cascade.Origin{File: "gen", Row: r + 1, Line: r + 2})
	}
	c, err := cascade.TrainClassifier(tab, cascade.ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "router.json")
	require.NoError(t, c.SaveFile(path))
	return path
}

func TestRouteWithClassifier(t *testing.T) {
	path := saveClassifier(t, "openai/small", "openai/large")
	cfg := serverTOML + fmt.Sprintf("\n[[route]]\nname = \"learned\"\nclassifier = %q\n", path)
	e := newEnv(t, providertest.Script{"small": {{Text: "Hello!"}}, "large": {{Text: "The sea, the sea..."}}}, providertest.Script{}, cfg, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	for _, tc := range []struct{ prompt, want string }{
		{"Say hello to visitor 123456.", "openai/small"},
		{"Write a sonnet about the sea, number 123456.", "openai/large"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("learned", tc.prompt, ""))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, tc.want, resp.Header.Get("x-costwise-model"))
		})
	}
}

func TestRouteClassifierErrors(t *testing.T) {
	t.Run("a missing file is reported at the key", func(t *testing.T) {
		_, err := ParseConfig("costwise.toml", []byte("[[route]]\nname = \"learned\"\nclassifier = \"nope.json\"\n"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "costwise.toml:3:1")
		assert.Contains(t, err.Error(), "route[0].classifier")
	})
	t.Run("models outside the catalog are refused at start", func(t *testing.T) {
		path := saveClassifier(t, "small-model", "big-model")
		cfg := serverTOML + fmt.Sprintf("\n[[route]]\nname = \"learned\"\nclassifier = %q\n", path)
		scfg, err := ParseConfig("costwise.toml", []byte(cfg))
		require.NoError(t, err)
		var got error
		newEnv(t, providertest.Script{}, providertest.Script{}, "", func(o *Options) {
			o2 := *o
			o2.Config = scfg
			_, got = New(o2)
		})
		err = got
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), `"small-model", which is not in the catalog`), err.Error())
	})
}

func TestAutoModelWithClassifier(t *testing.T) {
	path := saveClassifier(t, "openai/small", "openai/large")
	// [server] must come before the [[server.key]] tables of serverTOML.
	cfg := fmt.Sprintf("[server]\nauto_classifier = %q\n", path) + serverTOML
	e := newEnv(t, providertest.Script{"small": {{Text: "Hello!"}}, "large": {{Text: "The sea, the sea..."}}}, providertest.Script{}, cfg, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	for _, tc := range []struct{ prompt, want string }{
		{"Say hello to visitor 424242.", "openai/small"},
		{"Write a sonnet about the sea, number 424242.", "openai/large"},
	} {
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody(AutoModel, tc.prompt, ""))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, tc.want, resp.Header.Get("x-costwise-model"), tc.prompt)
	}

	_, err := ParseConfig("costwise.toml", []byte("[server]\nauto_classifier = \"nope.json\"\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "costwise.toml:2:1")
	assert.Contains(t, err.Error(), "server.auto_classifier")
}

// A fitted cascade offered to the gateway (serve --cascades) heads the
// ladder of a route it beats: cheap-chat's writing calls go to openai/small
// first, and to openai/large only when small is unsure.
func TestRouteWithCascade(t *testing.T) {
	cas := estimator.Cascade{Task: "writing", Models: []string{"openai/small", "openai/large"}, Thresholds: []float64{0.8},
		Signal: estimator.SignalLogprob, Reach: []float64{1, 0.2}, Quality: 0.93}
	for _, tc := range []struct {
		name string
		lp   float64
		want string
		esc  string
	}{
		{"sure", -0.01, "openai/small", "0"},
		{"unsure", -1.5, "openai/large", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, providertest.Script{"small": {{Text: "Leaves.", LogProbs: []float64{tc.lp}}}, "large": {{Text: "Falling leaves."}}},
				providertest.Script{"mid": {{Text: "wrong model"}}}, serverTOML, func(o *Options) { o.Router.Cascades = []estimator.Cascade{cas} })
			ts := httptest.NewServer(e.srv.Handler())
			defer ts.Close()
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku about autumn.", ""))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, tc.want, resp.Header.Get("x-costwise-model"))
			assert.Equal(t, tc.esc, resp.Header.Get("x-costwise-escalations"))
		})
	}
}
