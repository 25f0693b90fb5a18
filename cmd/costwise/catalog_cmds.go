package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/learn"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/planner/cascade"
)

// catalogFlags are the catalog options every command takes.
type catalogFlags struct {
	files     []string
	noDefault bool
	learnFrom string
	halfLife  time.Duration
	cascades  []string
}

func (f *catalogFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringArrayVar(&f.files, "catalog", nil, "catalog file to add (TOML or LiteLLM JSON); repeatable, later files override earlier entries field by field")
	cmd.PersistentFlags().BoolVar(&f.noDefault, "no-default-catalog", false, "leave the embedded default catalog out")
	cmd.PersistentFlags().StringVar(&f.learnFrom, "learn-from", "", `blend the ledger's observations into the catalog (quality and latency by task and model, weighted by evidence); a ledger path, or "default"`)
	cmd.PersistentFlags().DurationVar(&f.halfLife, "learn-half-life", 7*24*time.Hour, "with --learn-from: how fast old observations fade")
	cmd.PersistentFlags().StringArrayVar(&f.cascades, "cascades", nil, "fitted cascades ([[cascade]] TOML, as costwise eval --save-cascade writes) to offer the planner as node candidates; repeatable")
}

// pipeline loads the catalog (and the fitted cascades) for the planning
// commands.
func (f *catalogFlags) pipeline(stderr io.Writer, samples int, seed uint64) (*pipeline, error) {
	cat, err := f.load(stderr)
	if err != nil {
		return nil, err
	}
	cs, err := f.loadCascades(stderr, cat)
	if err != nil {
		return nil, err
	}
	return &pipeline{cat: cat, samples: samples, seed: seed, cascades: cs, warn: stderr}, nil
}

// loadCascades reads the --cascades files, every problem as file:line:col,
// and checks that their models are in the catalog.
func (f *catalogFlags) loadCascades(stderr io.Writer, cat *catalog.Catalog) ([]estimator.Cascade, error) {
	var all []estimator.Cascade
	bad := false
	for _, path := range f.cascades {
		cs, err := cascade.LoadSpecs(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			bad = true
			continue
		}
		for k, c := range cs {
			for _, m := range c.Models {
				if _, ok := cat.Lookup(m); !ok {
					msg := fmt.Sprintf("%s: cascade %d: model %q is not in the catalog", path, k+1, m)
					if s := suggest.Closest(m, catalogIDs(cat)); s != "" {
						msg += fmt.Sprintf("; did you mean %q?", s)
					}
					fmt.Fprintln(stderr, msg+" (add it with --catalog, or map the name with costwise eval --map)")
					bad = true
				}
			}
		}
		all = append(all, cs...)
	}
	if bad {
		return nil, &exitError{code: exitBadInput}
	}
	return all, nil
}

// modelFeatureNames are the features costwise models shows and --supports
// filters on.
var modelFeatureNames = []string{"tools", "json", "vision", "reasoning", "caching"}

// modelFeatures lists what the catalog says m can do, in
// modelFeatureNames' order: tool calling, JSON mode, image input, reasoning
// tokens, prompt caching.
func modelFeatures(m *catalog.Model) []string {
	var out []string
	for _, f := range []struct {
		name string
		has  bool
	}{{"tools", m.Tools}, {"json", m.JSONMode}, {"vision", m.HasModality("image")}, {"reasoning", m.Reasoning}, {"caching", m.PromptCaching}} {
		if f.has {
			out = append(out, f.name)
		}
	}
	return out
}

// catalogIDs lists the catalog's model IDs.
func catalogIDs(cat *catalog.Catalog) []string {
	var ids []string
	for _, m := range cat.Models() {
		ids = append(ids, m.ID)
	}
	return ids
}

// load builds the catalog, printing every problem as file:line:col.
func (f *catalogFlags) load(stderr io.Writer) (*catalog.Catalog, error) {
	cat, err := catalog.LoadFiles(f.files, !f.noDefault)
	if err != nil {
		var errs catalog.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
			return nil, &exitError{code: exitBadInput}
		}
		return nil, &exitError{code: exitBadInput, msg: err.Error()}
	}
	if cat.Len() == 0 {
		return nil, &exitError{code: exitBadInput, msg: "the catalog is empty: add --catalog FILE or drop --no-default-catalog"}
	}
	if f.learnFrom != "" {
		return f.blend(cat, stderr)
	}
	return cat, nil
}

// blend calibrates the catalog with the ledger's observations: where there
// is evidence, quality and latency become the learned posterior; each
// changed number's quality_source says how much came from observations.
func (f *catalogFlags) blend(cat *catalog.Catalog, stderr io.Writer) (*catalog.Catalog, error) {
	path := f.learnFrom
	if path == "default" {
		path = ""
	}
	l, err := openLedger(path)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	now := time.Now()
	rows, err := l.Observations(now.Add(-20 * f.halfLife))
	if err != nil {
		return nil, &exitError{code: exitBadInput, msg: err.Error()}
	}
	obs := observationsFromRows(rows, "", "")
	model := learn.Fit(obs, now, learn.Options{HalfLife: f.halfLife, Catalog: cat})
	blended, sources := model.Blend(cat)
	changed := 0
	for _, s := range sources {
		if s.Origin != learn.FromCatalog {
			changed++
		}
	}
	fmt.Fprintf(stderr, "learned from %d observations in %s: %d catalog numbers calibrated\n", len(obs), l.Path(), changed)
	return blended, nil
}

// lookupModel finds a model or says which ids come close.
func lookupModel(cat *catalog.Catalog, id string) (*catalog.Model, error) {
	if m, ok := cat.Lookup(id); ok {
		return m, nil
	}
	var near []string
	for _, m := range cat.Models() {
		if strings.Contains(m.ID, id) || strings.Contains(id, m.APIName) && m.APIName != "" {
			near = append(near, m.ID)
		}
	}
	msg := fmt.Sprintf("unknown model %q", id)
	if len(near) > 0 {
		if len(near) > 5 {
			near = near[:5]
		}
		msg += "; did you mean " + strings.Join(near, ", ") + "?"
	} else {
		msg += "; list models with 'costwise models'"
	}
	return nil, &exitError{code: exitBadInput, msg: msg}
}

// rate is a price in JSON: a number, or null when the catalog does not state it.
func rate(r catalog.Rate) *float64 {
	if !r.Known {
		return nil
	}
	v := r.Value
	return &v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type modelJSON struct {
	ID                    string             `json:"id"`
	Provider              string             `json:"provider"`
	APIName               string             `json:"api_name"`
	InputPerMTok          *float64           `json:"input_per_mtok"`
	OutputPerMTok         *float64           `json:"output_per_mtok"`
	CacheReadPerMTok      *float64           `json:"cache_read_per_mtok"`
	CacheWritePerMTok     *float64           `json:"cache_write_per_mtok"`
	CacheWrite1hPerMTok   *float64           `json:"cache_write_1h_per_mtok"`
	ReasoningPerMTok      *float64           `json:"reasoning_per_mtok"`
	AudioInputPerMTok     *float64           `json:"audio_input_per_mtok"`
	AudioOutputPerMTok    *float64           `json:"audio_output_per_mtok"`
	PerRequestUSD         *float64           `json:"per_request_usd"`
	BatchDiscount         *float64           `json:"batch_discount"`
	Tiers                 []tierJSON         `json:"tiers"`
	ServiceTiers          []string           `json:"service_tiers"`
	ContextWindow         int64              `json:"context_window"`
	MaxOutputTokens       int64              `json:"max_output_tokens"`
	Modalities            []string           `json:"modalities"`
	Tools                 bool               `json:"tools"`
	JSONMode              bool               `json:"json_mode"`
	Reasoning             bool               `json:"reasoning"`
	TTFTSeconds           float64            `json:"ttft_s"`
	OutputTokensPerSecond float64            `json:"output_tokens_per_s"`
	Quality               map[string]float64 `json:"quality"`
	Source                string             `json:"source"`
	AsOf                  string             `json:"as_of"`
}

type tierJSON struct {
	AboveTokens   int64    `json:"above_tokens"`
	InputPerMTok  *float64 `json:"input_per_mtok"`
	OutputPerMTok *float64 `json:"output_per_mtok"`
}

func toModelJSON(m *catalog.Model) modelJSON {
	j := modelJSON{
		ID: m.ID, Provider: m.Provider, APIName: m.APIName,
		InputPerMTok: rate(m.InputPerMTok), OutputPerMTok: rate(m.OutputPerMTok),
		CacheReadPerMTok: rate(m.CacheReadPerMTok), CacheWritePerMTok: rate(m.CacheWritePerMTok),
		CacheWrite1hPerMTok: rate(m.CacheWrite1hPerMTok), ReasoningPerMTok: rate(m.ReasoningPerMTok),
		AudioInputPerMTok: rate(m.AudioInputPerMTok), AudioOutputPerMTok: rate(m.AudioOutputPerMTok),
		PerRequestUSD: rate(m.RequestUSD), BatchDiscount: rate(m.BatchDiscount),
		Tiers: []tierJSON{}, ServiceTiers: []string{},
		ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens, Modalities: m.Modalities,
		Tools: m.Tools, JSONMode: m.JSONMode, Reasoning: m.Reasoning,
		TTFTSeconds: m.TTFTSeconds, OutputTokensPerSecond: m.OutputTokensPerSecond,
		Quality: m.Quality, Source: m.Source,
	}
	if !m.AsOf.IsZero() {
		j.AsOf = m.AsOf.Format("2006-01-02")
	}
	for _, t := range m.Tiers {
		j.Tiers = append(j.Tiers, tierJSON{AboveTokens: t.AboveTokens, InputPerMTok: rate(t.InputPerMTok), OutputPerMTok: rate(t.OutputPerMTok)})
	}
	for name := range m.ServiceTiers {
		j.ServiceTiers = append(j.ServiceTiers, name)
	}
	sort.Strings(j.ServiceTiers)
	if j.Modalities == nil {
		j.Modalities = []string{}
	}
	return j
}

func newModelsCmd(cf *catalogFlags) *cobra.Command {
	var provider, task string
	var supports []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the catalog's models with prices per million tokens",
		Example: `  costwise models
  costwise models --provider anthropic
  costwise models --task code --json
  costwise models --catalog model_prices_and_context_window.json --provider openai`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := cf.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			for _, f := range supports {
				if !slices.Contains(modelFeatureNames, f) {
					return usageError("--supports %q: use %s", f, strings.Join(modelFeatureNames, ", "))
				}
			}
			models := cat.Filter(func(m *catalog.Model) bool {
				if provider != "" && m.Provider != provider {
					return false
				}
				has := modelFeatures(m)
				for _, f := range supports {
					if !slices.Contains(has, f) {
						return false
					}
				}
				if task != "" {
					if _, ok := m.Quality[task]; !ok {
						return false
					}
				}
				return true
			})
			if task != "" { // best first for the task
				sort.SliceStable(models, func(a, b int) bool { return models[a].Quality[task] > models[b].Quality[task] })
			}
			if asJSON {
				out := make([]modelJSON, len(models))
				for i, m := range models {
					out[i] = toModelJSON(m)
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			if len(models) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no models match")
				return nil
			}
			qkind := task
			if qkind == "" {
				qkind = "default"
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "MODEL\tIN $/M\tOUT $/M\tCACHE $/M\tCONTEXT\tMAX OUT\tQUALITY(%s)\tINPUTS\tFEATURES\t\n", qkind)
			for _, m := range models {
				q := "-"
				if v, ok := m.QualityFor(qkind); ok {
					q = strconv.FormatFloat(v, 'f', 2, 64)
				}
				feats := strings.Join(modelFeatures(m), ",")
				if feats == "" {
					feats = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.ID, money(m.InputPerMTok), money(m.OutputPerMTok), money(m.CacheReadPerMTok),
					count(m.ContextWindow), count(m.MaxOutputTokens), q, strings.Join(m.Modalities, ","), feats)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d models\n", len(models))
			return nil
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "only models of this provider (e.g. openai, anthropic, gemini)")
	cmd.Flags().StringVar(&task, "task", "", "only models rated for this task kind, best first")
	cmd.Flags().StringSliceVar(&supports, "supports", nil, "only models the catalog lists with these features: tools, json, vision, reasoning, caching (comma-separated or repeated)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func money(r catalog.Rate) string {
	if !r.Known {
		return "-"
	}
	return strconv.FormatFloat(r.Value, 'f', -1, 64)
}

func count(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n >= 1000:
		return strconv.FormatInt(int64(math.Round(float64(n)/1000)), 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

func newTokensCmd(cf *catalogFlags) *cobra.Command {
	var model, encoding string
	var images []string
	var audioSeconds, videoSeconds float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tokens (--model M | --encoding E) [FILE|-]",
		Short: "Count the tokens of a text and attachments for a model or an encoding",
		Long: `Count the tokens of a text (a file, or standard input with "-" or no argument)
and of images, audio and video, as the model bills them. OpenAI models count
exactly (o200k_base or cl100k_base); other providers are estimated from
o200k_base with their token ratio, and the JSON says "exact": false.`,
		Example: `  costwise tokens --encoding o200k_base prompt.txt
  echo "hello world" | costwise tokens --model openai/gpt-4o
  costwise tokens --model anthropic/claude-sonnet-4-5 --image 1024x768:high --image 200x200 --json notes.md`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError("tokens takes at most one FILE (or - for standard input)")
			}
			if (model == "") == (encoding == "") {
				return usageError("give exactly one of --model and --encoding")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readText(cmd, args)
			if err != nil {
				return err
			}
			res := tokensResult{Breakdown: map[string]int{}}
			var rule tokens.ImageRule
			audioRate, videoRate := float64(tokens.GeminiAudioTokensPerSecond), float64(tokens.GeminiVideoTokensPerSecond)
			textRule := tokens.TextRule{Encoding: tokens.Encoding(encoding)}
			if model != "" {
				cat, err := cf.load(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				m, err := lookupModel(cat, model)
				if err != nil {
					return err
				}
				res.Model = m.ID
				textRule = tokens.TextRule{Encoding: tokens.Encoding(m.Tokenizer), Ratio: m.TokenRatio}
				if m.Tokenizer == "" && m.TokenRatio == 0 {
					textRule = tokens.RuleForProvider(m.Provider)
				}
				rule = tokens.ImageRule{Kind: tokens.ImageKind(m.ImageTokens), BaseTokens: int(m.ImageBaseTokens), TileTokens: int(m.ImageTileTokens), PatchMultiplier: m.ImagePatchMultiplier}
				if m.AudioTokensPerSecond > 0 {
					audioRate = m.AudioTokensPerSecond
				}
				if m.VideoTokensPerSecond > 0 {
					videoRate = m.VideoTokensPerSecond
				}
			} else {
				if encoding != string(tokens.O200kBase) && encoding != string(tokens.Cl100kBase) {
					return usageError("--encoding must be o200k_base or cl100k_base, got %q", encoding)
				}
				res.Encoding = encoding
				rule = tokens.ImageRule{Kind: tokens.ImageOpenAITile, BaseTokens: 85, TileTokens: 170} // gpt-4o's rule
			}
			tc, err := tokens.CountText(textRule, text)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			res.Exact = tc.Exact
			res.RelErr = tc.RelErr
			res.Breakdown["text"] = tc.Tokens
			for _, spec := range images {
				w, h, detail, err := parseImageSpec(spec)
				if err != nil {
					return err
				}
				n, err := tokens.ImageTokens(rule, w, h, detail)
				if err != nil {
					return &exitError{code: exitBadInput, msg: fmt.Sprintf("--image %s: %v", spec, err)}
				}
				res.Breakdown["images"] += n
			}
			if audioSeconds > 0 {
				n, err := tokens.MediaTokens(audioSeconds, audioRate)
				if err != nil {
					return &exitError{code: exitBadInput, msg: "--audio-seconds: " + err.Error()}
				}
				res.Breakdown["audio"] = n
			}
			if videoSeconds > 0 {
				n, err := tokens.MediaTokens(videoSeconds, videoRate)
				if err != nil {
					return &exitError{code: exitBadInput, msg: "--video-seconds: " + err.Error()}
				}
				res.Breakdown["video"] = n
			}
			for _, n := range res.Breakdown {
				res.Tokens += n
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Tokens)
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "catalog model id, e.g. openai/gpt-4o")
	cmd.Flags().StringVar(&encoding, "encoding", "", "o200k_base or cl100k_base")
	cmd.Flags().StringArrayVar(&images, "image", nil, "an image WIDTHxHEIGHT[:low|high|auto]; repeatable")
	cmd.Flags().Float64Var(&audioSeconds, "audio-seconds", 0, "seconds of audio input")
	cmd.Flags().Float64Var(&videoSeconds, "video-seconds", 0, "seconds of video input")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON {"tokens": N, "breakdown": {...}}`)
	return cmd
}

type tokensResult struct {
	Tokens    int            `json:"tokens"`
	Breakdown map[string]int `json:"breakdown"`
	Exact     bool           `json:"exact"`
	RelErr    float64        `json:"rel_err"`
	Model     string         `json:"model,omitempty"`
	Encoding  string         `json:"encoding,omitempty"`
}

// readText reads FILE, or standard input for "-" or no argument.
func readText(cmd *cobra.Command, args []string) (string, error) {
	if len(args) == 0 || args[0] == "-" {
		if f, ok := cmd.InOrStdin().(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "", nil // a terminal: no text, attachments only
			}
		}
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return "", &exitError{code: exitBadInput, msg: "reading standard input: " + err.Error()}
		}
		return string(b), nil
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return "", &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot read: %v", args[0], unwrapPath(err))}
	}
	return string(b), nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func parseImageSpec(spec string) (int, int, tokens.Detail, error) {
	size, detail, _ := strings.Cut(spec, ":")
	ws, hs, ok := strings.Cut(strings.ToLower(size), "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, "", usageError("--image %q: want WIDTHxHEIGHT[:low|high|auto], e.g. 1024x768:high", spec)
	}
	switch d := tokens.Detail(detail); d {
	case "":
		return w, h, tokens.DetailAuto, nil
	case tokens.DetailLow, tokens.DetailHigh, tokens.DetailAuto:
		return w, h, d, nil
	}
	return 0, 0, "", usageError("--image %q: detail must be low, high or auto", spec)
}

func newCostCmd(cf *catalogFlags) *cobra.Command {
	var model, serviceTier string
	var u catalog.Usage
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cost --model M --input-tokens N --output-tokens N [flags]",
		Short: "Price one call exactly, with its breakdown",
		Long: `Price one call as the provider bills it. --input-tokens counts UNCACHED input only;
cached reads and writes go in their own flags. Long-context tiers apply when the whole
prompt (input + cache reads + cache writes + audio input) exceeds the tier's threshold.`,
		Example: `  costwise cost --model openai/gpt-4o --input-tokens 1200 --output-tokens 300
  costwise cost --model anthropic/claude-sonnet-4-5 --input-tokens 250000 --output-tokens 2000 --json
  costwise cost --model anthropic/claude-haiku-4-5 --input-tokens 200 --cache-read-tokens 1800 --output-tokens 50 --batch`,
		Args: exactArgs(0, "no arguments (use flags)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" {
				return usageError("--model is required")
			}
			for name, v := range map[string]int64{"--input-tokens": u.InputTokens, "--output-tokens": u.OutputTokens, "--cache-read-tokens": u.CacheReadTokens,
				"--cache-write-tokens": u.CacheWriteTokens, "--cache-write-1h-tokens": u.CacheWrite1hTokens, "--reasoning-tokens": u.ReasoningTokens,
				"--audio-input-tokens": u.AudioInputTokens, "--audio-output-tokens": u.AudioOutputTokens, "--images": u.Images} {
				if v < 0 {
					return usageError("%s must be >= 0, got %d", name, v)
				}
			}
			cat, err := cf.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m, err := lookupModel(cat, model)
			if err != nil {
				return err
			}
			u.ServiceTier = serviceTier
			c := catalog.Price(m, u)
			res := costResult{Model: m.ID, CostUSD: c.TotalUSD, CostNanoUSD: c.NanoUSD(), Complete: c.Complete(), TierAbove: c.TierAbove,
				Breakdown: map[string]lineJSON{}, Unknown: []unknownJSON{}}
			for _, l := range c.Lines {
				res.Breakdown[string(l.Component)] = lineJSON{Quantity: l.Quantity, Rate: l.Rate, USD: l.USD, Note: l.Note}
			}
			for _, x := range c.Unknown {
				res.Unknown = append(res.Unknown, unknownJSON{Component: string(x.Component), Reason: x.Reason})
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: $%s\n", m.ID, usd(c.TotalUSD))
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			for _, l := range c.Lines {
				unit := "$/M tokens"
				if l.Component == catalog.CompImage || l.Component == catalog.CompRequest || strings.HasSuffix(string(l.Component), "seconds") {
					unit = "$/unit"
				}
				fmt.Fprintf(tw, "  %s\t%s\tx %s %s\t= $%s\t%s\n", l.Component, strconv.FormatFloat(l.Quantity, 'f', -1, 64), strconv.FormatFloat(l.Rate, 'f', -1, 64), unit, usd(l.USD), l.Note)
			}
			tw.Flush()
			if c.TierAbove > 0 {
				fmt.Fprintf(out, "  long-context tier: prompt above %d tokens\n", c.TierAbove)
			}
			for _, x := range c.Unknown {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is not priced: %s; the total is a lower bound\n", x.Component, x.Reason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "catalog model id, e.g. openai/gpt-4o")
	f.Int64Var(&u.InputTokens, "input-tokens", 0, "uncached input tokens")
	f.Int64Var(&u.OutputTokens, "output-tokens", 0, "output text tokens (excluding reasoning)")
	f.Int64Var(&u.CacheReadTokens, "cache-read-tokens", 0, "input tokens read from the prompt cache")
	f.Int64Var(&u.CacheWriteTokens, "cache-write-tokens", 0, "input tokens written to the cache (5-minute TTL)")
	f.Int64Var(&u.CacheWrite1hTokens, "cache-write-1h-tokens", 0, "input tokens written to the cache (1-hour TTL)")
	f.Int64Var(&u.ReasoningTokens, "reasoning-tokens", 0, "reasoning (thinking) tokens")
	f.Int64Var(&u.AudioInputTokens, "audio-input-tokens", 0, "audio input tokens")
	f.Int64Var(&u.AudioOutputTokens, "audio-output-tokens", 0, "audio output tokens")
	f.Int64Var(&u.Images, "images", 0, "input images billed per image (models with a per-image fee)")
	f.BoolVar(&u.Batch, "batch", false, "price through the batch API")
	f.StringVar(&serviceTier, "service-tier", "", "flex or priority")
	f.BoolVar(&asJSON, "json", false, `print JSON {"model": "...", "cost_usd": x, "breakdown": {...}}`)
	return cmd
}

type costResult struct {
	Model       string              `json:"model"`
	CostUSD     float64             `json:"cost_usd"`
	CostNanoUSD int64               `json:"cost_nano_usd"`
	Complete    bool                `json:"complete"`
	TierAbove   int64               `json:"tier_above_tokens"`
	Breakdown   map[string]lineJSON `json:"breakdown"`
	Unknown     []unknownJSON       `json:"unknown"`
}

type lineJSON struct {
	Quantity float64 `json:"quantity"`
	Rate     float64 `json:"rate"`
	USD      float64 `json:"usd"`
	Note     string  `json:"note,omitempty"`
}

type unknownJSON struct {
	Component string `json:"component"`
	Reason    string `json:"reason"`
}

// usd formats dollars with enough digits for sub-cent amounts.
func usd(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 4, 64)
	case math.Abs(v) >= 0.01:
		return strconv.FormatFloat(v, 'f', 5, 64)
	}
	return strconv.FormatFloat(v, 'f', 8, 64)
}
