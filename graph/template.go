package graph

import (
	"fmt"
	"strings"
)

// parseTemplate finds the {{...}} references in a prompt template. It returns
// the references in order of first appearance, without duplicates, and a
// message for each malformed one.
func parseTemplate(s string) ([]Ref, []string) {
	var refs []Ref
	var problems []string
	seen := map[Ref]bool{}
	for {
		open := strings.Index(s, "{{")
		if open < 0 {
			if strings.Contains(s, "}}") {
				problems = append(problems, "\"}}\" without a matching \"{{\"")
			}
			return refs, problems
		}
		if strings.Contains(s[:open], "}}") {
			problems = append(problems, "\"}}\" without a matching \"{{\"")
		}
		rest := s[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			problems = append(problems, fmt.Sprintf("unclosed %q: close it with \"}}\"", snippet("{{"+rest)))
			return refs, problems
		}
		body := strings.TrimSpace(rest[:end])
		s = rest[end+2:]
		r, msg := parseRef(body)
		if msg != "" {
			problems = append(problems, msg)
			continue
		}
		if !seen[r] {
			seen[r] = true
			refs = append(refs, r)
		}
	}
}

func parseRef(body string) (Ref, string) {
	const forms = "use {{input.NAME}} or {{node.ID.output}}"
	parts := strings.Split(body, ".")
	switch {
	case len(parts) == 2 && parts[0] == "input" && inputRE.MatchString(parts[1]):
		return Ref{Kind: RefInput, Name: parts[1]}, ""
	case len(parts) == 3 && parts[0] == "node" && idRE.MatchString(parts[1]) && parts[2] == "output":
		return Ref{Kind: RefNode, Name: parts[1]}, ""
	case len(parts) == 3 && parts[0] == "node" && idRE.MatchString(parts[1]):
		return Ref{}, fmt.Sprintf("{{%s}}: a node exposes only .output; write {{node.%s.output}}", body, parts[1])
	}
	return Ref{}, fmt.Sprintf("unknown template reference {{%s}}; %s", body, forms)
}

func snippet(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 30 {
		s = s[:30] + "..."
	}
	return s
}
