package graph

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and always returns exactly one of
// a valid workflow and an error whose diagnostics all name the file.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "examples", "*", "workflow.toml"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(valid))
	f.Add([]byte("name = \"x\"\n[[node]]\nid = \"a\"\ndepends_on = [\"a\"]\nprompt = \"{{node.a.output}}\"\n"))
	f.Add([]byte("[[node]]\nrepeat = { mean = 1e300 }\noutput_tokens = { mean = -1, max = 1e30 }\n"))
	f.Add([]byte("name = \"x\"\n[[node]]\nid = \"a\"\nprompt = \"p\"\noutput_schema = { type = \"object\", properties = { b = { enum = [1, \"c\"] } } }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse("fuzz.toml", data)
		if (w == nil) == (err == nil) {
			t.Fatalf("Parse returned workflow %v and error %v", w != nil, err)
		}
		if err != nil {
			errs, ok := err.(Errors)
			if !ok || len(errs) == 0 {
				t.Fatalf("error is %T, want non-empty Errors", err)
			}
			for _, d := range errs {
				if d.File != "fuzz.toml" || d.Msg == "" {
					t.Fatalf("diagnostic without file or message: %+v", d)
				}
			}
			return
		}
		if len(w.Order()) != len(w.Nodes) {
			t.Fatalf("order has %d nodes, workflow %d", len(w.Order()), len(w.Nodes))
		}
		weights := make([]float64, len(w.Nodes))
		w.LongestPath(weights)
	})
}
