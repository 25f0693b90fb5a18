package graph

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// valid is a small workflow that each case breaks in one place.
const valid = `name = "t"

[inputs.ticket]
tokens = 600

[[node]]
id = "a"
prompt = "Classify {{input.ticket}}"
output_tokens = 20

[[node]]
id = "b"
depends_on = ["a"]
prompt = "Answer {{node.a.output}}"
`

func TestParseValid(t *testing.T) {
	w, err := Parse("t.toml", []byte(valid))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, w.Order())
	assert.Equal(t, TaskDefault, w.Nodes[0].Task)
	assert.Equal(t, 1.0, w.Nodes[1].When)
	assert.Equal(t, []Ref{{Kind: RefNode, Name: "a"}}, w.Nodes[1].Refs)
	assert.Equal(t, Pos{Line: 11, Col: 1}, w.Nodes[1].Pos)
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // each a complete diagnostic line
	}{
		{"toml syntax", "name = \"t\"\n[[node]\nid = \"a\"\n",
			[]string{"t.toml:3:7: TOML syntax: expected end of table array name delimiter ']', but got '\\n' instead"}},
		{"unknown top-level key", "nmae = \"t\"\n" + valid[len("name = \"t\"\n"):],
			[]string{`t.toml:1:1: nmae: unknown key "nmae"; did you mean "name"?`, `t.toml:1:1: name: is required: give the workflow a name, e.g. name = "support-triage"`}},
		{"unknown node key", strings.Replace(valid, `id = "b"`, "id = \"b\"\ncolour = 1", 1),
			[]string{`t.toml:13:1: node[1].colour: unknown key "colour"; allowed keys here: id, task, description, depends_on, system, prompt, input_tokens, output_tokens, min_quality, models, when, run_if, repeat, validate, cache_prefix_tokens, requires, attachment`}},
		{"wrong type", strings.Replace(valid, "output_tokens = 20", `output_tokens = "lots"`, 1),
			[]string{`t.toml:9:1: node "a": output_tokens: has type string; give a number of tokens, or a table { mean = 20, p95 = 40, max = 64 }`}},
		{"wrong scalar type", strings.Replace(valid, `id = "b"`, "id = \"b\"\nwhen = \"often\"", 1),
			[]string{`t.toml:13:1: node.when: has type string, must be a number`}},
		{"duplicate id", strings.Replace(valid, `id = "b"`, `id = "a"`, 1),
			[]string{`t.toml:12:1: node "a": id: duplicate node id (first defined at line 6)`}},
		{"bad id", strings.Replace(valid, `id = "b"`, `id = "B b"`, 1),
			[]string{`t.toml:12:1: node "B b": id: may use only lowercase letters, digits, '_' and '-'`}},
		{"unknown dependency", strings.Replace(valid, `depends_on = ["a"]`, `depends_on = ["aa"]`, 1),
			[]string{`t.toml:13:1: node "b": depends_on: unknown node "aa"; did you mean "a"?`}},
		{"self dependency", strings.Replace(valid, `depends_on = ["a"]`, `depends_on = ["b"]`, 1),
			[]string{`t.toml:13:1: node "b": depends_on: dependency cycle: b -> b; a node cannot depend on itself`}},
		{"cycle", valid + "\n[[node]]\nid = \"c\"\ndepends_on = [\"b\"]\nprompt = \"x\"\n" + "",
			nil}, // c after b: no cycle, sanity check
		{"three-node cycle", "name = \"t\"\n[[node]]\nid = \"a\"\ndepends_on = [\"c\"]\nprompt = \"x\"\n[[node]]\nid = \"b\"\ndepends_on = [\"a\"]\nprompt = \"x\"\n[[node]]\nid = \"c\"\ndepends_on = [\"b\"]\nprompt = \"x\"\n",
			[]string{`t.toml:12:1: node "c": depends_on: dependency cycle: c -> a -> b -> c; remove one of these dependencies`}},
		{"unknown input", strings.Replace(valid, "{{input.ticket}}", "{{input.tickt}}", 1),
			[]string{`t.toml:8:1: node "a": prompt: {{input.tickt}} names an input that is not declared; add [inputs.tickt]`}},
		{"not upstream", strings.Replace(strings.Replace(valid, `depends_on = ["a"]`, "", 1), "Answer", "Answer", 1),
			[]string{`t.toml:14:1: node "b": prompt: {{node.a.output}} is not upstream of "b"; add "a" to depends_on`}},
		{"unknown node ref", strings.Replace(valid, "{{node.a.output}}", "{{node.zz.output}}", 1),
			[]string{`t.toml:14:1: node "b": prompt: {{node.zz.output}} names an unknown node; depends_on lists the ids of other [[node]] tables`}},
		{"bad ref form", strings.Replace(valid, "{{node.a.output}}", "{{node.a.text}}", 1),
			[]string{`t.toml:14:1: node "b": prompt: {{node.a.text}}: a node exposes only .output; write {{node.a.output}}`}},
		{"unclosed template", strings.Replace(valid, "{{node.a.output}}", "{{node.a.output", 1),
			[]string{`t.toml:14:1: node "b": prompt: unclosed "{{node.a.output": close it with "}}"`}},
		{"when out of range", strings.Replace(valid, `id = "b"`, "id = \"b\"\nwhen = 1.5", 1),
			[]string{`t.toml:13:1: node "b": when: is a probability and must be in [0, 1], got 1.5`}},
		{"min_quality out of range", strings.Replace(valid, `id = "b"`, "id = \"b\"\nmin_quality = -0.1", 1),
			[]string{`t.toml:13:1: node "b": min_quality: must be in [0, 1], got -0.1`}},
		{"min_success out of range", valid + "[budget]\nmin_success = 1.2\n",
			[]string{`t.toml:16:1: budget.min_success: must be a probability in [0, 1], got 1.2`}},
		{"zero budget", valid + "[budget]\nmax_cost_usd = 0\n",
			[]string{`t.toml:16:1: budget.max_cost_usd: must be > 0; omit the key for no limit`}},
		{"negative tokens", strings.Replace(valid, "output_tokens = 20", "output_tokens = 20\ninput_tokens = -5", 1),
			[]string{`t.toml:10:1: node "a": input_tokens: must be between 0 and 10000000 tokens, got -5`}},
		{"absurd tokens", strings.Replace(valid, "output_tokens = 20", "output_tokens = 2e9", 1),
			[]string{`t.toml:9:1: node "a": output_tokens: mean must be between 0 and 10000000 tokens, got 2e+09`}},
		{"p95 below mean", strings.Replace(valid, "output_tokens = 20", "output_tokens = { mean = 20, p95 = 10 }", 1),
			[]string{`t.toml:9:1: node "a": output_tokens: p95 (10) is less than mean (20)`}},
		{"unknown output key", strings.Replace(valid, "output_tokens = 20", "output_tokens = { mean = 20, p99 = 10 }", 1),
			[]string{`t.toml:9:1: node "a": output_tokens: unknown key "p99"; give a number of tokens, or a table { mean = 20, p95 = 40, max = 64 }`}},
		{"repeat max below mean", strings.Replace(valid, `id = "b"`, "id = \"b\"\nrepeat = { mean = 3, max = 2 }", 1),
			[]string{`t.toml:13:22: node "b": repeat.max: (2) is less than repeat.mean (3)`}},
		{"repeat without mean", strings.Replace(valid, `id = "b"`, "id = \"b\"\nrepeat = { max = 2 }", 1),
			[]string{`t.toml:13:1: node "b": repeat.mean: is required in a repeat table: the expected number of iterations`, `t.toml:13:1: node "b": repeat.mean: must be between 1 and 10000 iterations, got 0`}},
		{"unknown repeat key", strings.Replace(valid, `id = "b"`, "id = \"b\"\nrepeat = { mean = 2, history = true, hist = 1 }", 1),
			[]string{`t.toml:13:38: node[1].repeat.hist: unknown key "hist"; did you mean "history"?`}},
		{"unknown attachment kind", valid + "[[node.attachment]]\nkind = \"hologram\"\n",
			[]string{`t.toml:16:1: node "b": attachment[0].kind: unknown attachment kind "hologram"; use "image", "audio", "video" or "document"`}},
		{"image without size", valid + "[[node.attachment]]\nkind = \"image\"\n",
			[]string{`t.toml:15:1: node "b": attachment[0].width: an image needs width and height in pixels between 1 and 100000, got 0x0`}},
		{"bad detail", valid + "[[node.attachment]]\nkind = \"image\"\nwidth = 10\nheight = 10\ndetail = \"ultra\"\n",
			[]string{`t.toml:19:1: node "b": attachment[0].detail: must be "low", "high" or "auto", got "ultra"`}},
		{"audio needs seconds", valid + "[[node.attachment]]\nkind = \"audio\"\npages = 2\n",
			[]string{`t.toml:15:1: node "b": attachment[0].seconds: audio needs seconds between 0 and 86400, got 0`, `t.toml:17:1: node "b": attachment[0].pages: does not apply to audio attachments; remove it`}},
		{"document needs size", valid + "[[node.attachment]]\nkind = \"document\"\n",
			[]string{`t.toml:15:1: node "b": attachment[0].pages: a document needs pages = N or tokens = N`}},
		{"bad glob", strings.Replace(valid, `id = "b"`, "id = \"b\"\nmodels = [\"openai/[\"]", 1),
			[]string{`t.toml:13:1: node "b": models[0]: bad glob "openai/[": use * and ? over model ids such as "openai/gpt-4o*"`}},
		{"bad capability", strings.Replace(valid, `id = "b"`, "id = \"b\"\nrequires = [\"telepathy\"]", 1),
			[]string{`t.toml:13:1: node "b": requires: unknown capability "telepathy"; use "tools", "json" or "reasoning"`}},
		{"input with two hints", strings.Replace(valid, "tokens = 600", "tokens = 600\nexample = \"hi\"", 1),
			[]string{`t.toml:3:1: inputs.ticket: give exactly one size hint: tokens = N, example = "text" or file = "path"`}},
		{"policy scope", valid + "[[policy]]\nname = \"p\"\nscope = \"world\"\nrule = \"true\"\n",
			[]string{`t.toml:17:1: policy[0].scope: must be "node" or "plan", got "world"`}},
		{"policy without rule", valid + "[[policy]]\nname = \"p\"\nscope = \"node\"\n",
			[]string{`t.toml:15:1: policy[0].rule: is required: an expr-lang expression that is true when the policy holds`}},
		{"missing prompt", strings.Replace(valid, "prompt = \"Answer {{node.a.output}}\"", "", 1),
			[]string{`t.toml:11:1: node "b": prompt: is required: the prompt template sent to the model`}},
		{"prefix exceeds input", strings.Replace(valid, "output_tokens = 20", "input_tokens = 100\ncache_prefix_tokens = 200", 1),
			[]string{`t.toml:10:1: node "a": cache_prefix_tokens: (200) exceeds input_tokens (100): the cached prefix is part of the prompt`}},
		{"no nodes", "name = \"t\"\n",
			[]string{`t.toml:1:1: node: the workflow has no [[node]]; add at least one step`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := Parse("t.toml", []byte(c.src))
			if c.want == nil {
				require.NoError(t, err)
				require.NotNil(t, w)
				return
			}
			require.Error(t, err)
			assert.Nil(t, w)
			var errs Errors
			require.True(t, errors.As(err, &errs), "error type %T", err)
			var got []string
			for _, d := range errs {
				got = append(got, d.Error())
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestValidateInCode(t *testing.T) {
	w := &Workflow{Name: "code", Nodes: []*Node{
		{ID: "a", Task: TaskDefault, Prompt: "x", When: 1},
		{ID: "b", Task: TaskDefault, Prompt: "{{node.a.output}}", When: 1, DependsOn: []string{"a", "c"}},
	}}
	err := w.Validate()
	require.Error(t, err)
	assert.Equal(t, `<workflow>: node "b": depends_on: unknown node "c"; depends_on lists the ids of other [[node]] tables`, err.Error())

	w.Nodes[1].DependsOn = []string{"a"}
	require.NoError(t, w.Validate())
	assert.Equal(t, []int{0, 1}, w.Order())
	assert.True(t, w.Upstream(1, 0))
	assert.False(t, w.Upstream(0, 1))
}

func TestDAGHelpers(t *testing.T) {
	// a -> b -> d ; a -> c -> d ; e alone. Declared out of order on purpose.
	src := `name = "dag"
[[node]]
id = "d"
depends_on = ["b", "c"]
prompt = "x"
[[node]]
id = "b"
depends_on = ["a"]
prompt = "x"
[[node]]
id = "a"
prompt = "x"
[[node]]
id = "c"
depends_on = ["a"]
prompt = "x"
[[node]]
id = "e"
prompt = "x"
`
	w, err := Parse("dag.toml", []byte(src))
	require.NoError(t, err)
	idx := func(id string) int { i, ok := w.NodeIndex(id); require.True(t, ok); return i }
	ids := func(is []int) []string {
		var out []string
		for _, i := range is {
			out = append(out, w.Nodes[i].ID)
		}
		return out
	}
	assert.Equal(t, []string{"a", "e", "b", "c", "d"}, ids(w.Order()))
	assert.Equal(t, []string{"b", "c"}, ids(w.Preds(idx("d"))))
	assert.Equal(t, []string{"b", "c"}, ids(w.Succs(idx("a"))))
	assert.True(t, w.Upstream(idx("d"), idx("a")))
	assert.False(t, w.Upstream(idx("d"), idx("e")))

	cases := []struct {
		name    string
		weights map[string]float64
		length  float64
		path    []string
	}{
		{"through c", map[string]float64{"a": 1, "b": 2, "c": 5, "d": 1, "e": 3}, 7, []string{"a", "c", "d"}},
		{"through b", map[string]float64{"a": 1, "b": 6, "c": 5, "d": 1, "e": 3}, 8, []string{"a", "b", "d"}},
		{"lone node", map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1, "e": 30}, 30, []string{"e"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wt := make([]float64, len(w.Nodes))
			for id, v := range c.weights {
				wt[idx(id)] = v
			}
			l, p := w.LongestPath(wt)
			assert.Equal(t, c.length, l)
			assert.Equal(t, c.path, ids(p))
		})
	}
}

func TestParseTemplate(t *testing.T) {
	cases := []struct {
		in       string
		refs     []Ref
		problems []string
	}{
		{"plain", nil, nil},
		{"{{ input.a }} and {{node.b.output}} and {{input.a}}", []Ref{{RefInput, "a"}, {RefNode, "b"}}, nil},
		{"}} stray", nil, []string{`"}}" without a matching "{{"`}},
		{"{{input}}", nil, []string{"unknown template reference {{input}}; use {{input.NAME}} or {{node.ID.output}}"}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			refs, problems := parseTemplate(c.in)
			assert.Equal(t, c.refs, refs)
			assert.Equal(t, c.problems, problems)
		})
	}
}
