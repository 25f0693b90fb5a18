package policies

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

const testCatalog = `
[[model]]
id = "acme/small"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 100000
modalities = ["text"]
tools = true
[model.quality]
default = 0.7

[[model]]
id = "beta/large-preview"
input_per_mtok = 10.0
output_per_mtok = 20.0
context_window = 100000
modalities = ["text", "image"]
[model.quality]
default = 0.95
`

func estimate(t *testing.T, src string) (*graph.Workflow, *estimator.Estimate) {
	t.Helper()
	w, err := graph.Parse("wf.toml", []byte(src))
	require.NoError(t, err)
	cat, err := catalog.LoadTOML("cat.toml", []byte(testCatalog))
	require.NoError(t, err)
	e, err := estimator.New(cat, estimator.WithSamples(50))
	require.NoError(t, err)
	est, err := e.Estimate(w)
	require.NoError(t, err)
	return w, est
}

func TestNodeRules(t *testing.T) {
	cases := []struct {
		name     string
		rule     string
		minQ     string
		rejected map[string]ReasonCode // model -> reason
		policy   string
	}{
		{"no preview", `not (model.id contains "preview")`, "", map[string]ReasonCode{"beta/large-preview": ReasonRule}, "p"},
		{"provider list", `model.provider in ["beta"]`, "", map[string]ReasonCode{"acme/small": ReasonRule}, "p"},
		{"glob helper", `glob(model.id, "acme/*")`, "", map[string]ReasonCode{"beta/large-preview": ReasonRule}, "p"},
		{"provider_of", `provider_of(model.id) == "acme"`, "", map[string]ReasonCode{"beta/large-preview": ReasonRule}, "p"},
		{"has_modality", `has_modality(model, "image")`, "", map[string]ReasonCode{"acme/small": ReasonRule}, "p"},
		{"supports", `supports(model, "tools")`, "", map[string]ReasonCode{"beta/large-preview": ReasonRule}, "p"},
		{"estimate numbers", `est.cost_usd < 0.001 && est.calls == 1 && est.input_tokens == 100`, "", map[string]ReasonCode{"beta/large-preview": ReasonRule}, "p"},
		{"node fields", `node.id == "a" && node.task == "code" && model.quality.default > 0.8`, "", map[string]ReasonCode{"acme/small": ReasonRule}, "p"},
		{"min quality", `true`, "min_quality = 0.9", map[string]ReasonCode{"acme/small": ReasonMinQuality}, "min_quality"},
		{"unknown price is NaN", `model.cache_read_per_mtok >= 0`, "", map[string]ReasonCode{"acme/small": ReasonRule, "beta/large-preview": ReasonRule}, "p"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "name = \"w\"\n[[policy]]\nname = \"p\"\nscope = \"node\"\nrule = '" + c.rule + "'\n[[node]]\nid = \"a\"\ntask = \"code\"\nprompt = \"x\"\ninput_tokens = 100\noutput_tokens = { mean = 10, p95 = 10 }\n" + c.minQ + "\n"
			w, est := estimate(t, src)
			set, err := Compile(w)
			require.NoError(t, err)
			got := map[string]ReasonCode{}
			for k := range est.Nodes[0].Candidates {
				cand := &est.Nodes[0].Candidates[k]
				for _, r := range set.FilterNode(w.Nodes[0], &est.Nodes[0], cand) {
					got[r.Model] = r.Reason
					assert.Equal(t, c.policy, r.Policy)
					assert.NotEmpty(t, r.Msg)
				}
			}
			assert.Equal(t, c.rejected, got)
		})
	}
}

func TestPlanRules(t *testing.T) {
	src := `name = "w"
[[policy]]
name = "value"
scope = "plan"
rule = 'plan.cost_usd / plan.success <= 0.001 && plan.providers["beta"] == 0 && plan.models["a"] == "acme/small"'
[[node]]
id = "a"
prompt = "x"
input_tokens = 100
output_tokens = { mean = 10, p95 = 10 }
`
	w, est := estimate(t, src)
	set, err := Compile(w)
	require.NoError(t, err)
	require.True(t, set.HasPlanFilters())
	for _, c := range []struct {
		model string
		ok    bool
	}{{"acme/small", true}, {"beta/large-preview", false}} {
		t.Run(c.model, func(t *testing.T) {
			cand, ok := est.Candidate(0, c.model)
			require.True(t, ok)
			st := set.FilterPlan(&Plan{Workflow: w, Choice: []*estimator.Candidate{cand}, CostUSD: cand.Cost.Mean, Success: cand.Quality})
			assert.Equal(t, c.ok, st.OK(), "%v", st)
			if !c.ok {
				assert.Equal(t, "value", st.Policy)
				assert.Equal(t, Rejected, st.Code)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, rule, scope, want string
	}{
		{"unknown field", `model.colour == "red"`, "node", "wf.toml:5:15: policy[0].rule: rule \"p\" does not compile: model has no field colour\n | model.colour == \"red\"\n | ......^"},
		{"not bool", `model.input_per_mtok`, "node", "wf.toml:5:8: policy[0].rule: rule \"p\" does not compile: expected bool, but got float64"},
		{"plan var in node rule", `plan.cost_usd < 1`, "node", "wf.toml:5:9: policy[0].rule: rule \"p\" does not compile: unknown name plan\n | plan.cost_usd < 1\n | ^"},
		{"syntax", `model.id ==`, "node", "wf.toml:5:19: policy[0].rule: rule \"p\" does not compile: unexpected token EOF\n | model.id ==\n | ..........^"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "name = \"w\"\n[[policy]]\nname = \"p\"\nscope = \"" + c.scope + "\"\nrule = '" + c.rule + "'\n[[node]]\nid = \"a\"\nprompt = \"x\"\n"
			w, err := graph.Parse("wf.toml", []byte(src))
			require.NoError(t, err)
			_, err = Compile(w)
			require.Error(t, err)
			var errs graph.Errors
			require.True(t, errors.As(err, &errs))
			require.Len(t, errs, 1)
			assert.Equal(t, c.want, errs[0].Error())
		})
	}
}

func TestHostileRuleIsContained(t *testing.T) {
	r, err := CompileRule("big", "node", `len(map(1..100000000, # * 2)) > 0`)
	require.NoError(t, err)
	st := r.Plugin().(NodeFilter).FilterNode(&graph.Node{ID: "a"}, &estimator.NodeEstimate{}, &estimator.Candidate{Model: &catalog.Model{ID: "x/y"}})
	require.False(t, st.OK())
	assert.Equal(t, Error, st.Code)
	assert.Contains(t, st.Msg, "memory budget exceeded")

	_, err = CompileRule("deep", "node", deepRule(3000))
	require.Error(t, err)
}

func deepRule(n int) string {
	s := "true"
	for range n {
		s = "(" + s + " && true)"
	}
	return s
}

// A plugin registered from Go.
type noXAI struct{}

func (noXAI) Name() string { return "no-xai" }
func (noXAI) FilterNode(_ *graph.Node, _ *estimator.NodeEstimate, c *estimator.Candidate) *Status {
	if c.Model.Provider == "xai" {
		return &Status{Code: Rejected, Reason: ReasonRule, Msg: "xai is not approved"}
	}
	return nil
}

type nameOnly struct{}

func (nameOnly) Name() string { return "idle" }

func TestRegister(t *testing.T) {
	s := &Set{}
	require.NoError(t, s.Register(noXAI{}))
	assert.ErrorContains(t, s.Register(noXAI{}), `a policy named "no-xai" is already registered`)
	rej := s.FilterNode(&graph.Node{ID: "a"}, &estimator.NodeEstimate{}, &estimator.Candidate{Model: &catalog.Model{ID: "xai/grok", Provider: "xai"}})
	require.Len(t, rej, 1)
	assert.Equal(t, Rejection{Node: "a", Model: "xai/grok", Reason: ReasonRule, Policy: "no-xai", Msg: "xai is not approved"}, rej[0])
	assert.ErrorContains(t, s.Register(nameOnly{}), `"idle" implements neither NodeFilter nor PlanFilter`)
}

func FuzzCompileRule(f *testing.F) {
	for _, s := range []string{`model.id contains "x"`, `plan.cost_usd < 1`, `glob(model.id, "a/*")`, `1..`, `"` + "\x00"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, src string, node bool) {
		scope := "plan"
		if node {
			scope = "node"
		}
		r, err := CompileRule("f", scope, src)
		if err != nil {
			return
		}
		if node {
			_ = r.Plugin().(NodeFilter).FilterNode(&graph.Node{ID: "a"}, &estimator.NodeEstimate{}, &estimator.Candidate{Model: &catalog.Model{ID: "x/y"}})
		} else {
			_ = r.Plugin().(PlanFilter).FilterPlan(&Plan{Workflow: &graph.Workflow{}})
		}
	})
}
