package cascade

import (
	"fmt"
	"strings"
)

// Arm is one side of an A/B comparison: a fixed Policy, or a prompt
// Classifier when Classifier is not nil.
type Arm struct {
	Name       string // a label, e.g. the file it came from
	Policy     Policy
	Classifier *Classifier
}

// PolicyArm is the arm that replays p.
func PolicyArm(p Policy) Arm { return Arm{Name: p.Name, Policy: p} }

// ClassifierArm is the arm that routes each query by c.
func ClassifierArm(name string, c *Classifier) Arm { return Arm{Name: name, Classifier: c} }

// Kind is "single", "cascade" or "classifier".
func (a Arm) Kind() string {
	if a.Classifier != nil {
		return "classifier"
	}
	return a.Policy.Kind()
}

// String describes the arm: the policy (see Policy.String), or the
// classifier's models and threshold.
func (a Arm) String() string {
	c := a.Classifier
	if c == nil {
		return a.Policy.String()
	}
	if len(c.Models) == 1 || c.Threshold > 1 {
		return "classifier: every prompt to " + c.Models[len(c.Models)-1]
	}
	return fmt.Sprintf("classifier: cheapest of %s with p >= %.4g, else %s",
		strings.Join(c.Models[:len(c.Models)-1], ", "), c.Threshold, c.Models[len(c.Models)-1])
}

// Check checks the arm against the table it will be replayed on (see
// CheckPolicy; a classifier needs its models and a prompt column).
func (a Arm) Check(t *Table) error {
	if a.Classifier == nil {
		return CheckPolicy(t, a.Policy)
	}
	// The header is enough: the prompt column and the model names.
	hdr := &Table{Models: t.Models, Origin: t.Origin}
	if t.Prompt != nil {
		hdr.Prompt = t.Prompt[:0]
	}
	_, err := a.Classifier.Routes(hdr)
	if err != nil && a.Name != "" {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	return err
}

// Evaluate replays the arm on every row of t.
func (a Arm) Evaluate(t *Table) (Metrics, error) {
	if a.Classifier == nil {
		return Evaluate(t, a.Policy)
	}
	return a.Classifier.Evaluate(t)
}

func (a Arm) perQuery(t *Table) (quality, cost []float64, err error) {
	if a.Classifier == nil {
		return PerQuery(t, a.Policy)
	}
	return a.Classifier.PerQuery(t)
}
