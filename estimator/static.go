package estimator

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/graph"
)

// Defaults for models that accept a medium but whose catalog entry gives no
// token rate for it (Gemini's documented rates).
const (
	defaultAudioTokensPerSecond = tokens.GeminiAudioTokensPerSecond
	defaultVideoTokensPerSecond = tokens.GeminiVideoTokensPerSecond
)

// framingPerMessage and replyPriming are OpenAI's chat framing (the
// cookbook's tokens_per_message and reply priming), applied to every model.
const (
	framingPerMessage = 3
	replyPriming      = 3
)

// staticTokens is what a node's first call sends to one model, apart from
// upstream outputs and loop history.
type staticTokens struct {
	text       float64 // system, prompt and inputs with framing; or input_tokens
	media      float64 // image, video and document tokens billed as input
	audio      float64 // audio input tokens
	prefix     float64 // tokens of the cached prefix (0 when the model does not cache)
	perCallUSD float64 // per-call fees: requests, per-image, per-second media
	unknown    []string
	reasons    []Reason
	vision     bool // the node sends visual input: quality capped by "vision"
}

func (s *staticTokens) prompt() float64 { return s.text + s.media + s.audio }

// textCounter counts each distinct text once per encoding.
type textCounter struct {
	counts   map[textKey]int
	stripped map[[2]string]string // system, prompt -> text without references
}

type textKey struct {
	enc  tokens.Encoding
	text string
}

func newTextCounter() *textCounter {
	return &textCounter{counts: map[textKey]int{}, stripped: map[[2]string]string{}}
}

// ownText is a node's system and prompt text without its {{...}}
// references, computed once per node.
func (tc *textCounter) ownText(system, prompt string) string {
	k := [2]string{system, prompt}
	if s, ok := tc.stripped[k]; ok {
		return s
	}
	s := refRE.ReplaceAllString(system, "") + refRE.ReplaceAllString(prompt, "")
	tc.stripped[k] = s
	return s
}

func (tc *textCounter) count(enc tokens.Encoding, text string) (int, error) {
	if text == "" {
		return 0, nil
	}
	k := textKey{enc, text}
	if n, ok := tc.counts[k]; ok {
		return n, nil
	}
	n, err := tokens.Count(enc, text)
	if err != nil {
		return 0, err
	}
	tc.counts[k] = n
	return n, nil
}

// modelTokens counts text for model m: exactly with its tokenizer, else
// o200k_base times its token ratio (the catalog's, or its provider's default).
func (tc *textCounter) modelTokens(m *catalog.Model, text string) (float64, error) {
	if m.Tokenizer != "" {
		n, err := tc.count(tokens.Encoding(m.Tokenizer), text)
		return float64(n), err
	}
	n, err := tc.count(tokens.O200kBase, text)
	if err != nil {
		return 0, err
	}
	return math.Ceil(float64(n) * textRatio(m)), nil
}

// textRatio is the model's tokens per o200k_base token.
func textRatio(m *catalog.Model) float64 {
	if m.TokenRatio > 0 {
		return m.TokenRatio
	}
	return tokens.RuleForProvider(m.Provider).Ratio
}

var refRE = regexp.MustCompile(`\{\{[^}]*\}\}`)

// staticFor computes what node n's first call sends to model m, and the
// feasibility problems that do not depend on the run's randomness.
func staticFor(w *graph.Workflow, n *graph.Node, m *catalog.Model, tc *textCounter) (staticTokens, error) {
	var st staticTokens
	if err := st.addText(w, n, m, tc); err != nil {
		return st, err
	}
	fees := catalog.Usage{Requests: 1}
	for _, a := range n.Attachments {
		if err := st.addAttachment(a, m, &fees); err != nil {
			return st, err
		}
	}
	c := catalog.Price(m, fees)
	st.perCallUSD = c.TotalUSD
	for _, u := range c.Unknown {
		st.unknown = append(st.unknown, string(u.Component))
	}
	for _, r := range n.Requires {
		ok := (r == graph.RequireTools && m.Tools) || (r == graph.RequireJSON && m.JSONMode) || (r == graph.RequireReasoning && m.Reasoning)
		if !ok {
			st.reasons = append(st.reasons, Reason{ReasonCapability, fmt.Sprintf("the node requires %s; %s does not support it", r, m.ID)})
		}
	}
	if n.CachePrefixTokens > 0 && (m.CacheReadPerMTok.Known || m.PromptCaching) {
		st.prefix = math.Min(float64(n.CachePrefixTokens), st.text)
	}
	return st, nil
}

func (st *staticTokens) addText(w *graph.Workflow, n *graph.Node, m *catalog.Model, tc *textCounter) error {
	if n.InputTokens > 0 {
		st.text = float64(n.InputTokens)
		return nil
	}
	msgs := 1
	if strings.TrimSpace(n.System) != "" {
		msgs = 2
	}
	own, err := tc.modelTokens(m, tc.ownText(n.System, n.Prompt))
	if err != nil {
		return err
	}
	st.text = own + float64(framingPerMessage*msgs+replyPriming)
	for _, r := range n.Refs {
		if r.Kind != graph.RefInput {
			continue
		}
		in := w.Input(r.Name)
		switch {
		case in.Tokens > 0 || (in.Example == "" && in.File == ""):
			st.text += float64(in.Tokens)
		case in.Example != "":
			t, err := tc.modelTokens(m, in.Example)
			if err != nil {
				return err
			}
			st.text += t
		case in.Text == "":
			return fmt.Errorf("input %q is given as file %q, which was not read (load the workflow with graph.Load)", in.Name, in.File)
		default:
			t, err := tc.modelTokens(m, in.Text)
			if err != nil {
				return err
			}
			st.text += t
		}
	}
	return nil
}

// imageRule maps the catalog's image keys onto a token rule. A model that
// accepts images but names no rule is estimated with Anthropic's area rule.
func imageRule(m *catalog.Model) tokens.ImageRule {
	kind := tokens.ImageKind(m.ImageTokens)
	if kind == "" || kind == tokens.ImageNone {
		kind = tokens.ImageAnthropic
	}
	return tokens.ImageRule{Kind: kind, BaseTokens: int(m.ImageBaseTokens), TileTokens: int(m.ImageTileTokens), PatchMultiplier: m.ImagePatchMultiplier}
}

func (st *staticTokens) addAttachment(a graph.Attachment, m *catalog.Model, fees *catalog.Usage) error {
	count := float64(a.Count)
	needs := func(mods ...string) bool {
		for _, mod := range mods {
			if slices.Contains(m.Modalities, mod) {
				return true
			}
		}
		st.reasons = append(st.reasons, Reason{ReasonModality, fmt.Sprintf("the node sends %s input; %s accepts %s", a.Kind, m.ID, strings.Join(m.Modalities, ", "))})
		return false
	}
	switch a.Kind {
	case graph.KindImage:
		st.vision = true
		if !needs("image") {
			return nil
		}
		if m.ImageUSD.Known {
			fees.Images += int64(a.Count)
			return nil
		}
		t, err := tokens.ImageTokens(imageRule(m), a.Width, a.Height, tokens.Detail(a.Detail))
		if err != nil {
			return err
		}
		st.media += count * float64(t)
	case graph.KindAudio:
		if !needs("audio") {
			return nil
		}
		if m.AudioInputPerSecondUSD.Known {
			fees.AudioSeconds += count * a.Seconds
			return nil
		}
		rate := m.AudioTokensPerSecond
		if rate <= 0 {
			rate = defaultAudioTokensPerSecond
		}
		st.audio += count * math.Ceil(a.Seconds*rate)
	case graph.KindVideo:
		st.vision = true
		if !needs("video") {
			return nil
		}
		if m.VideoInputPerSecondUSD.Known {
			fees.VideoSeconds += count * a.Seconds
			return nil
		}
		rate := m.VideoTokensPerSecond
		if rate <= 0 {
			rate = defaultVideoTokensPerSecond
		}
		st.media += count * math.Ceil(a.Seconds*rate)
	case graph.KindDocument:
		if a.Tokens > 0 { // extracted text: any model reads it
			st.media += count * float64(a.Tokens)
			return nil
		}
		st.vision = true
		if !needs("document", "image") {
			return nil
		}
		t, err := tokens.PDFTokens(imageRule(m), a.Pages)
		if err != nil {
			return err
		}
		st.media += count * float64(t.Tokens)
	}
	return nil
}

// ImageTokensFor is what model m bills for one w x h image with OpenAI's
// detail ("" for auto): the rule its catalog entry names (image_tokens;
// Anthropic's area rule when it names none).
func ImageTokensFor(m *catalog.Model, w, h int, detail tokens.Detail) (int, error) {
	return tokens.ImageTokens(imageRule(m), w, h, detail)
}
