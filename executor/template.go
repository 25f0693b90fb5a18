package executor

import (
	"regexp"
	"strings"
)

var refPattern = regexp.MustCompile(`\{\{\s*([^}]*?)\s*\}\}`)

// render fills a prompt template with the run's inputs and the outputs of
// upstream nodes; a node that did not run leaves an empty string.
func render(tmpl string, inputs, outputs map[string]string) string {
	return refPattern.ReplaceAllStringFunc(tmpl, func(m string) string {
		ref := strings.TrimSpace(m[2 : len(m)-2])
		switch {
		case strings.HasPrefix(ref, "input."):
			return inputs[strings.TrimPrefix(ref, "input.")]
		case strings.HasPrefix(ref, "node.") && strings.HasSuffix(ref, ".output"):
			return outputs[strings.TrimSuffix(strings.TrimPrefix(ref, "node."), ".output")]
		}
		return m
	})
}
