package executor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/graph"
)

// classifyByRegexps is ClassifyTask without the literal prefilters: the
// rules' regexps alone decide. The prefilters must never change an answer.
func classifyByRegexps(prompt string) string {
	if len(prompt) > longContextBytes {
		return graph.TaskLongContext
	}
	lower := strings.ToLower(prompt)
	switch {
	case strings.Contains(prompt, "```") || codeLineRule.re.MatchString(prompt) || codeWordsRule.re.MatchString(lower):
		return graph.TaskCode
	case classifyRule.re.MatchString(lower):
		return graph.TaskClassification
	case summaryRule.re.MatchString(lower):
		return graph.TaskSummarization
	case extractRule.re.MatchString(lower):
		return graph.TaskExtraction
	}
	return graph.TaskDefault
}

// classifyCorpus has a prompt for every alternative of every rule, and
// near misses.
var classifyCorpus = []string{
	"", "Say ok.", "```go\nx := 1\n```", "def f():\n  pass", "  func main() {}", "class A {}", "import os", "package main",
	"#include <stdio.h>", "public static void main", "fn main() {}", "const x = 1", "const answer = 42", "SELECT a FROM t",
	"select a from t", "Please refactor this", "a stack trace", "a stacktrace", "Traceback (most recent call last)",
	"a compile error", "write unit tests", "a unit test", "Write a function that adds", "write the script", "write a poem",
	"a REGEX for emails", "a regular expression", "an SQL query", "a segfault", "Debug this", "in Golang", "Python code",
	"JavaScript", "TypeScript types", "Rust code please", "rustic code", "Classify this review", "classification task",
	"Categorize these", "categorise them", "label this", "Label the image", "label each row", "which category?", "Which label fits",
	"the sentiment of", "Is this spam?", "is this positive", "is this negative", "answer yes or no", "Answer only with yes or no",
	"answer with yes or no", "Summarize the text", "summarise it", "a summary", "TL;DR", "tldr please", "the key points",
	"extract the dates", "pull out the names", "list all names", "list every the emails", "list all the entities",
	"extraction", "classifier", "summaries", "prefactor", "a definition", "functional", "the classic", "important",
	"subclass of", "fn", "SELECTED FROM", "unit testing", "ÉXTRACT", "İstanbul python", "ẞ regex", strings.Repeat("x", 50) + "\nimport y",
	"label\tthis", "which\ncategory", "key  points", "tl;;dr",
}

func TestClassifyTaskPrefiltersAgreeWithTheRegexps(t *testing.T) {
	for _, p := range classifyCorpus {
		t.Run(fmt.Sprintf("%.30q", p), func(t *testing.T) {
			require.Equal(t, classifyByRegexps(p), ClassifyTask(p))
		})
	}
	t.Run("every rule fires in the corpus", func(t *testing.T) {
		seen := map[string]bool{}
		for _, p := range classifyCorpus {
			seen[ClassifyTask(p)] = true
		}
		for _, want := range []string{graph.TaskCode, graph.TaskClassification, graph.TaskSummarization, graph.TaskExtraction, graph.TaskDefault} {
			require.True(t, seen[want], want)
		}
	})
}

// FuzzClassifyTask checks that the literal prefilters never change what
// the regexps decide.
func FuzzClassifyTask(f *testing.F) {
	for _, p := range classifyCorpus {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := ClassifyTask(p), classifyByRegexps(p); got != want {
			t.Fatalf("ClassifyTask(%q) = %s, the regexps say %s", p, got, want)
		}
	})
}

// BenchmarkClassifyTask measures ClassifyTask on prompts of growing size
// that match no rule (the common case, and the slowest for the regexps),
// against the regexps alone.
func BenchmarkClassifyTask(b *testing.B) {
	const sentence = "Please draft a short friendly note to the team about the picnic next week, and mention the weather. "
	for _, size := range []int{8, 128, 2048} {
		p := strings.Repeat(sentence, size/len(sentence)+1)[:size]
		require.Equal(b, graph.TaskDefault, ClassifyTask(p))
		require.Equal(b, classifyByRegexps(p), ClassifyTask(p))
		for _, impl := range []struct {
			name string
			fn   func(string) string
		}{{"prefiltered", ClassifyTask}, {"regexps", classifyByRegexps}} {
			b.Run(fmt.Sprintf("bytes=%d/%s", size, impl.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					impl.fn(p)
				}
			})
		}
	}
}
