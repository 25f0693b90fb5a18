package policies

import (
	"math"
	"slices"
	"strings"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// NodeEnv is what a node rule sees.
type NodeEnv struct {
	Node  NodeInfo  `expr:"node"`
	Model ModelInfo `expr:"model"`
	Est   EstInfo   `expr:"est"`
}

// NodeInfo describes the node.
type NodeInfo struct {
	ID          string   `expr:"id"`
	Task        string   `expr:"task"`
	When        float64  `expr:"when"`
	MinQuality  float64  `expr:"min_quality"`
	Requires    []string `expr:"requires"`
	Attachments []string `expr:"attachments"` // kinds, one per attachment entry
	DependsOn   []string `expr:"depends_on"`
	Loop        bool     `expr:"loop"` // the node has a repeat loop
}

// ModelInfo describes the model. Unknown prices are NaN.
type ModelInfo struct {
	ID                    string             `expr:"id"`
	Provider              string             `expr:"provider"`
	Name                  string             `expr:"name"`
	InputPerMTok          float64            `expr:"input_per_mtok"`
	OutputPerMTok         float64            `expr:"output_per_mtok"`
	CacheReadPerMTok      float64            `expr:"cache_read_per_mtok"`
	ContextWindow         int64              `expr:"context_window"`
	MaxOutputTokens       int64              `expr:"max_output_tokens"`
	Modalities            []string           `expr:"modalities"`
	Tools                 bool               `expr:"tools"`
	JSONMode              bool               `expr:"json_mode"`
	Reasoning             bool               `expr:"reasoning"`
	Deprecated            bool               `expr:"deprecated"`
	TTFTSeconds           float64            `expr:"ttft_s"`
	OutputTokensPerSecond float64            `expr:"output_tokens_per_s"`
	Quality               map[string]float64 `expr:"quality"`
}

// EstInfo is the estimator's numbers for the node on the model.
type EstInfo struct {
	InputTokens  float64 `expr:"input_tokens"`  // mean prompt tokens per call
	OutputTokens float64 `expr:"output_tokens"` // mean output tokens per call
	Calls        float64 `expr:"calls"`         // expected calls per run
	CostUSD      float64 `expr:"cost_usd"`      // expected cost per run
	CostP95USD   float64 `expr:"cost_p95_usd"`
	LatencyS     float64 `expr:"latency_s"`
	Quality      float64 `expr:"quality"`
	Feasible     bool    `expr:"feasible"`
}

// PlanEnv is what a plan rule sees.
type PlanEnv struct {
	Plan PlanInfo `expr:"plan"`
}

// PlanInfo describes a complete plan.
type PlanInfo struct {
	CostUSD   float64            `expr:"cost_usd"`  // expected cost of a run
	LatencyS  float64            `expr:"latency_s"` // critical-path latency
	Success   float64            `expr:"success"`   // product of node qualities
	Models    map[string]string  `expr:"models"`    // node id -> model id (a cascade's ID, "cascade:logprob:a@0.7>b", for a cascade)
	Providers map[string]int     `expr:"providers"` // provider -> nodes that may call it (every stage of a cascade counts)
	Costs     map[string]float64 `expr:"costs"`     // node id -> expected cost
	Nodes     int                `expr:"nodes"`
}

func rateOrNaN(r catalog.Rate) float64 {
	if !r.Known {
		return math.NaN()
	}
	return r.Value
}

func modelInfo(m *catalog.Model) ModelInfo {
	name := m.APIName
	if name == "" {
		_, name, _ = strings.Cut(m.ID, "/")
	}
	return ModelInfo{
		ID: m.ID, Provider: m.Provider, Name: name,
		InputPerMTok: rateOrNaN(m.InputPerMTok), OutputPerMTok: rateOrNaN(m.OutputPerMTok), CacheReadPerMTok: rateOrNaN(m.CacheReadPerMTok),
		ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens, Modalities: m.Modalities,
		Tools: m.Tools, JSONMode: m.JSONMode, Reasoning: m.Reasoning, Deprecated: m.Deprecated,
		TTFTSeconds: m.TTFTSeconds, OutputTokensPerSecond: m.OutputTokensPerSecond, Quality: m.Quality,
	}
}

func nodeInfo(n *graph.Node) NodeInfo {
	kinds := make([]string, len(n.Attachments))
	for i, a := range n.Attachments {
		kinds[i] = a.Kind
	}
	return NodeInfo{ID: n.ID, Task: n.Task, When: n.When, MinQuality: n.MinQuality, Requires: n.Requires,
		Attachments: kinds, DependsOn: n.DependsOn, Loop: n.Repeat.Max > 1}
}

// NodeEnvOf builds the environment of a node rule.
func NodeEnvOf(n *graph.Node, ne *estimator.NodeEstimate, c *estimator.Candidate) NodeEnv {
	return NodeEnv{
		Node:  nodeInfo(n),
		Model: modelInfo(c.Model),
		Est: EstInfo{InputTokens: c.InputTokens.Mean, OutputTokens: ne.OutputTokens.Mean, Calls: ne.Calls.Mean,
			CostUSD: c.Cost.Mean, CostP95USD: c.Cost.P95, LatencyS: c.LatencyS.Mean, Quality: c.Quality, Feasible: c.Feasible},
	}
}

// PlanEnvOf builds the environment of a plan rule from a complete plan.
func PlanEnvOf(w *graph.Workflow, choice []*estimator.Candidate, cost, latency, success float64) PlanEnv {
	p := PlanInfo{CostUSD: cost, LatencyS: latency, Success: success, Nodes: len(choice),
		Models: make(map[string]string, len(choice)), Providers: map[string]int{}, Costs: make(map[string]float64, len(choice))}
	for i, c := range choice {
		id := w.Nodes[i].ID
		p.Models[id] = c.ID()
		p.Costs[id] = c.Cost.Mean
		if c.Cascade == nil {
			p.Providers[c.Model.Provider]++
			continue
		}
		seen := map[string]bool{}
		for _, st := range c.Cascade.Stages {
			if !seen[st.Model.Provider] {
				seen[st.Model.Provider] = true
				p.Providers[st.Model.Provider]++
			}
		}
	}
	return PlanEnv{Plan: p}
}

// Helper functions available to every rule.
func helperFuncs() []helper {
	return []helper{
		{"glob", func(args ...any) (any, error) {
			ok, err := pathMatch(args[1].(string), args[0].(string))
			return ok, err
		}, []any{new(func(string, string) bool)}},
		{"provider_of", func(args ...any) (any, error) {
			p, _, _ := strings.Cut(args[0].(string), "/")
			return p, nil
		}, []any{new(func(string) string)}},
		{"has_modality", func(args ...any) (any, error) {
			return slices.Contains(args[0].(ModelInfo).Modalities, args[1].(string)), nil
		}, []any{new(func(ModelInfo, string) bool)}},
		{"supports", func(args ...any) (any, error) {
			m := args[0].(ModelInfo)
			switch args[1].(string) {
			case graph.RequireTools:
				return m.Tools, nil
			case graph.RequireJSON:
				return m.JSONMode, nil
			case graph.RequireReasoning:
				return m.Reasoning, nil
			}
			return false, nil
		}, []any{new(func(ModelInfo, string) bool)}},
	}
}

type helper struct {
	name  string
	fn    func(args ...any) (any, error)
	types []any
}
