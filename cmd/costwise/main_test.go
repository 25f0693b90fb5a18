package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binary is the costwise command built once for the tests that run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "costwise-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "costwise")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the built command and returns its exit code and output.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

var diagLine = regexp.MustCompile(`^[^:]+\.toml:\d+:\d+: `)

func TestBrokenWorkflowsExitOne(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"cycle", "name = \"c\"\n[[node]]\nid = \"a\"\ndepends_on = [\"b\"]\nprompt = \"x\"\n[[node]]\nid = \"b\"\ndepends_on = [\"a\"]\nprompt = \"x\"\n",
			`:8:1: node "b": depends_on: dependency cycle: b -> a -> b`},
		{"unknown key", "name = \"u\"\n[[node]]\nid = \"a\"\nprompt = \"x\"\nmodel = \"gpt\"\n",
			`:5:1: node[0].model: unknown key "model"; did you mean "models"?`},
		{"syntax", "name = \"s\n", `:1:10: TOML syntax: strings cannot contain newlines`},
		{"out of range", "name = \"r\"\n[[node]]\nid = \"a\"\nprompt = \"x\"\nwhen = 2\n",
			`:5:1: node "a": when: is a probability and must be in [0, 1], got 2`},
		{"bad template", "name = \"t\"\n[[node]]\nid = \"a\"\nprompt = \"{{input.q}}\"\n",
			`:4:1: node "a": prompt: {{input.q}} names an input that is not declared; add [inputs.q]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "workflow.toml", c.src)
			code, stdout, stderr := runBinary(t, "validate", path)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, path+c.want)
			first := strings.SplitN(stderr, "\n", 2)[0]
			assert.Regexp(t, diagLine, first)
			assert.NotContains(t, stderr, "goroutine")
			assert.NotContains(t, stderr, "panic")
		})
	}
}

func TestExitCodes(t *testing.T) {
	good := filepath.Join("..", "..", "examples", "support-triage", "workflow.toml")
	cases := []struct {
		name string
		args []string
		code int
		out  string // substring of stdout
		err  string // substring of stderr
	}{
		{"validate ok", []string{"validate", good}, 0, "ok (", ""},
		{"validate no args", []string{"validate"}, 2, "", "takes one or more workflow files"},
		{"missing file", []string{"validate", "nope.toml"}, 1, "", "nope.toml: cannot read the workflow: no such file or directory"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"unknown flag", []string{"graph", "--colour", good}, 2, "", "unknown flag: --colour"},
		{"bad format", []string{"graph", good, "--format", "png"}, 2, "", "--format must be dot or mermaid"},
		{"graph dot", []string{"graph", good}, 0, "digraph \"support-triage\" {", ""},
		{"graph mermaid", []string{"graph", good, "--format", "mermaid"}, 0, "flowchart LR", ""},
		{"version", []string{"version"}, 0, "costwise ", ""},
		{"help", []string{"--help"}, 0, "Exit codes: 0 ok, 1 bad input or failed run, 2 usage, 3 no plan", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			assert.Equal(t, c.code, code, "stderr: %s", stderr.String())
			assert.Contains(t, stdout.String(), c.out)
			assert.Contains(t, stderr.String(), c.err)
		})
	}
}

// TestDOTRendersWithGraphviz renders every example with Graphviz when dot is
// installed (.ci/run installs it).
func TestDOTRendersWithGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz dot is not installed (apt-get install graphviz)")
	}
	paths, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "workflow.toml"))
	require.NotEmpty(t, paths)
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			code, out, stderr := runBinary(t, "graph", p)
			require.Equal(t, 0, code, stderr)
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(out)
			svg, err := cmd.Output()
			require.NoError(t, err)
			assert.Contains(t, string(svg), "<svg")
		})
	}
}

func TestValidateCompilesPolicies(t *testing.T) {
	path := writeFile(t, "workflow.toml", "name = \"p\"\n[[policy]]\nname = \"r\"\nscope = \"node\"\nrule = 'model.provder == \"x\"'\n[[node]]\nid = \"a\"\nprompt = \"x\"\n")
	code, _, stderr := runBinary(t, "validate", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, path+`:5:15: policy[0].rule: rule "r" does not compile: model has no field provder`)
	assert.Contains(t, stderr, "^")
}

func TestValidateCompilesOutputRules(t *testing.T) {
	path := writeFile(t, "workflow.toml", "name = \"p\"\n[[node]]\nid = \"a\"\nprompt = \"x\"\nvalidate = 'trim(output) inn [\"a\"]'\n")
	code, _, stderr := runBinary(t, "validate", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, path+`:5:1: node "a": validate: does not compile`)
}
