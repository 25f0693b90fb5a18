package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/internal/tomlpos"
)

// Kind names the wire protocol of a provider.
type Kind string

// Provider kinds. KindOpenAI also serves every OpenAI-compatible service
// (DeepSeek, Together, Fireworks, Groq, Mistral, DashScope, xAI, vLLM ...)
// through base_url.
const (
	KindOpenAI    Kind = "openai"
	KindAnthropic Kind = "anthropic"
	KindGoogleAI  Kind = "googleai"
	KindOllama    Kind = "ollama"
)

var kinds = []Kind{KindOpenAI, KindAnthropic, KindGoogleAI, KindOllama}

// Defaults applied to keys a [providers.NAME] table leaves out.
const (
	DefaultTimeout    = 60 * time.Second
	DefaultMaxRetries = 2
)

// ProviderConfig is one [providers.NAME] table. It holds the names of the
// environment variables that carry keys, never the keys.
type ProviderConfig struct {
	Name      string   // the NAME of [providers.NAME]
	Kind      Kind     // wire protocol; defaults to NAME when NAME is a kind
	APIKeyEnv []string // env vars holding keys, used in turn; empty only for ollama
	BaseURL   string   // "" = the kind's public endpoint
	Timeout   time.Duration
	// MaxRetries is how many times the executor may retry a Retryable
	// failure. The client itself only retries on another key after a 429,
	// 401 or 403 (calls that were surely not billed).
	MaxRetries int
	RPM        int // client-side requests per minute; 0 = unlimited
	TPM        int // client-side tokens per minute; 0 = unlimited
}

// Config is the providers part of a costwise configuration file. Its
// clients are created on first use and cached; it is safe for concurrent
// use. Use a *Config; do not copy it.
type Config struct {
	Path      string                    // file it was read from
	Providers map[string]ProviderConfig // by NAME

	mu      sync.Mutex
	clients map[string]*client
}

// DefaultConfigPath returns ./costwise.toml when it exists, else
// $XDG_CONFIG_HOME/costwise/config.toml ($HOME/.config when
// XDG_CONFIG_HOME is unset).
func DefaultConfigPath() string {
	if st, err := os.Stat("costwise.toml"); err == nil && !st.IsDir() {
		return "costwise.toml"
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".config")
		}
	}
	return filepath.Join(dir, "costwise", "config.toml")
}

// LoadConfig reads and validates the [providers.*] tables of the file at
// path (see [ParseConfig]).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("provider config %s does not exist: create it with a [providers.NAME] table per provider", path)
		}
		return nil, fmt.Errorf("provider config: %w", err)
	}
	return ParseConfig(path, data)
}

type rawProvider struct {
	Kind       *string  `toml:"kind"`
	APIKeyEnv  any      `toml:"api_key_env"`
	BaseURL    *string  `toml:"base_url"`
	TimeoutS   *float64 `toml:"timeout_s"`
	MaxRetries *int     `toml:"max_retries"`
	RPM        *int     `toml:"rpm"`
	TPM        *int     `toml:"tpm"`
}

type rawFile struct {
	Providers map[string]rawProvider `toml:"providers"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseConfig decodes the [providers.*] tables of a TOML document; name is
// used in error messages. Other top-level tables ([server], [[route]] ...)
// belong to other parts of costwise and are ignored; unknown keys inside
// [providers.NAME] are errors. Every problem is reported as
// "name:line:col: providers.NAME.key: what is wrong; what to do", all of
// them joined.
func ParseConfig(name string, data []byte) (*Config, error) {
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: TOML syntax error: %s; fix the file's syntax", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		// Type mismatches (timeout_s = "60") come here, without position.
		return nil, fmt.Errorf("%s: %v; check the types of the [providers.*] keys (timeout_s is a number of seconds, rpm/tpm/max_retries integers)", name, err)
	}
	ix := tomlpos.Build(data)
	probs := tomlpos.NewProblems(name, ix)
	at := probs.At
	for _, u := range ix.Undecoded(md) {
		if !strings.HasPrefix(u.Path, "providers.") {
			continue
		}
		probs.AtPos(u.Pos, u.Path, fmt.Sprintf("unknown key %q; allowed keys are kind, api_key_env, base_url, timeout_s, max_retries, rpm, tpm", u.Key))
	}
	cfg := &Config{Path: name, Providers: map[string]ProviderConfig{}}
	names := make([]string, 0, len(raw.Providers))
	for n := range raw.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, pn := range names {
		rp := raw.Providers[pn]
		base := "providers." + pn
		pc := ProviderConfig{Name: pn, Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries}
		switch {
		case rp.Kind != nil:
			pc.Kind = Kind(*rp.Kind)
			if !validKind(pc.Kind) {
				at(base+".kind", fmt.Sprintf("unknown kind %q; use one of %s (any OpenAI-compatible service is \"openai\" with a base_url)", *rp.Kind, kindList()))
			}
		case validKind(Kind(pn)):
			pc.Kind = Kind(pn)
		default:
			at(base, fmt.Sprintf("missing kind; add kind = one of %s", kindList()))
		}
		switch v := rp.APIKeyEnv.(type) {
		case nil:
		case string:
			pc.APIKeyEnv = []string{v}
		case []any:
			if len(v) == 0 {
				at(base+".api_key_env", "the list is empty; name at least one environment variable")
			}
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					at(base+".api_key_env", "must be a string or a list of strings naming environment variables")
					pc.APIKeyEnv = nil
					break
				}
				pc.APIKeyEnv = append(pc.APIKeyEnv, s)
			}
		default:
			at(base+".api_key_env", "must be a string or a list of strings naming environment variables")
		}
		seen := map[string]bool{}
		for i, e := range pc.APIKeyEnv {
			// Never echo the value: a key pasted here by mistake must not
			// end up in logs.
			if !envName.MatchString(e) {
				at(base+".api_key_env", fmt.Sprintf("entry %d is not an environment variable name (letters, digits, _); put the key itself in an environment variable and name that variable here", i+1))
			} else if seen[e] {
				at(base+".api_key_env", fmt.Sprintf("variable %s is listed twice", e))
			}
			seen[e] = true
		}
		if len(pc.APIKeyEnv) == 0 && rp.APIKeyEnv == nil && pc.Kind != KindOllama && validKind(pc.Kind) {
			at(base, fmt.Sprintf("missing api_key_env; add api_key_env = \"%s_API_KEY\" (the name of the environment variable holding the key)", strings.ToUpper(pn)))
		}
		if rp.BaseURL != nil {
			u, err := url.Parse(*rp.BaseURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				at(base+".base_url", "must be an absolute http:// or https:// URL, e.g. \"https://api.deepseek.com/v1\"")
			} else if u.User != nil {
				at(base+".base_url", "must not carry credentials; use api_key_env")
			} else {
				pc.BaseURL = strings.TrimRight(*rp.BaseURL, "/")
			}
		}
		if rp.TimeoutS != nil {
			t := *rp.TimeoutS
			if !(t > 0) || t > 24*3600 {
				at(base+".timeout_s", fmt.Sprintf("must be between 0 and 86400 seconds (got %v)", t))
			} else {
				pc.Timeout = time.Duration(t * float64(time.Second))
			}
		}
		if rp.MaxRetries != nil {
			if *rp.MaxRetries < 0 || *rp.MaxRetries > 100 {
				at(base+".max_retries", fmt.Sprintf("must be between 0 and 100 (got %d)", *rp.MaxRetries))
			} else {
				pc.MaxRetries = *rp.MaxRetries
			}
		}
		for _, lim := range []struct {
			key string
			v   *int
			dst *int
		}{{"rpm", rp.RPM, &pc.RPM}, {"tpm", rp.TPM, &pc.TPM}} {
			if lim.v == nil {
				continue
			}
			if *lim.v < 0 {
				at(base+"."+lim.key, fmt.Sprintf("must be >= 0 (got %d); 0 or leaving it out means unlimited", *lim.v))
			} else {
				*lim.dst = *lim.v
			}
		}
		cfg.Providers[pn] = pc
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func validKind(k Kind) bool {
	for _, v := range kinds {
		if v == k {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = `"` + string(k) + `"`
	}
	return strings.Join(s, ", ")
}
