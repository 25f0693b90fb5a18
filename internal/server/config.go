package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/internal/tomlpos"
	"github.com/costwise/costwise/planner/cascade"
)

// Built-in model names a client may send besides catalog ids and routes.
const (
	// AutoModel routes by the prompt: the task comes from
	// [executor.ClassifyTask], the quality floor from [Config.AutoMinQuality];
	// with [Config.AutoClassifier] the trained classifier picks the first
	// rung.
	AutoModel = "costwise/auto"
	// pinnedRoute is the internal route of requests naming a catalog id.
	pinnedRoute = "costwise/pinned"
)

// DefaultAutoMinQuality is the quality floor of AutoModel when the
// [server] table sets none.
const DefaultAutoMinQuality = 0.75

// DefaultMaxBodyBytes limits request bodies when the [server] table sets
// no max_body_bytes: room for a few pictures sent inline (a phone photo is
// 3 to 6 MB as base64), far below what would strain the server.
const DefaultMaxBodyBytes = 16 << 20

// Key is one client API key: [[server.key]]. Only its SHA-256 is kept.
type Key struct {
	Name string
	// SHA256 is the digest of the key as the client sends it after
	// "Bearer ".
	SHA256 [sha256.Size]byte
	// BudgetNanoPerDay caps what the key's requests may spend per UTC day,
	// in nano-USD; 0 = no cap.
	BudgetNanoPerDay int64
	// RPM caps the key's requests per minute; 0 = unlimited.
	RPM int
}

// Config is the [server] and [[route]] part of a costwise configuration
// file.
type Config struct {
	Path string
	Keys []Key
	// Routes are the [[route]] tables, selected by a request's model.
	Routes []executor.Route
	// AutoMinQuality is AutoModel's quality floor ([server] auto_min_quality).
	AutoMinQuality float64
	// AutoClassifier, when set ([server] auto_classifier), picks
	// AutoModel's first rung per prompt.
	AutoClassifier *cascade.Classifier
	// DailyBudgetNano caps the whole gateway's spend per UTC day
	// ([server] budget_usd_per_day); 0 = none.
	DailyBudgetNano int64
	// MaxBodyBytes limits request bodies ([server] max_body_bytes).
	MaxBodyBytes int64
}

// match returns the key whose digest is sha256(presented), comparing every
// configured digest in constant time.
func (c *Config) match(presented string) (*Key, bool) {
	sum := sha256.Sum256([]byte(presented))
	var found *Key
	for i := range c.Keys {
		if subtle.ConstantTimeCompare(sum[:], c.Keys[i].SHA256[:]) == 1 {
			found = &c.Keys[i]
		}
	}
	return found, found != nil
}

// LoadConfig reads the file at path with [ParseConfig]. A file that does
// not exist gives an empty configuration (no keys, no routes).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &Config{Path: path, AutoMinQuality: DefaultAutoMinQuality, MaxBodyBytes: DefaultMaxBodyBytes}, nil
		}
		return nil, fmt.Errorf("server config: %w", err)
	}
	return ParseConfig(path, data)
}

type rawKey struct {
	Name            *string  `toml:"name"`
	KeySHA256       *string  `toml:"key_sha256"`
	BudgetUSDPerDay *float64 `toml:"budget_usd_per_day"`
	RPM             *int     `toml:"rpm"`
}

type rawServer struct {
	Key             []rawKey `toml:"key"`
	AutoMinQuality  *float64 `toml:"auto_min_quality"`
	AutoClassifier  string   `toml:"auto_classifier"`
	BudgetUSDPerDay *float64 `toml:"budget_usd_per_day"`
	MaxBodyBytes    *int64   `toml:"max_body_bytes"`
}

type rawRoute struct {
	Name       *string  `toml:"name"`
	Task       string   `toml:"task"`
	MinQuality float64  `toml:"min_quality"`
	Models     []string `toml:"models"`
	Providers  []string `toml:"providers"`
	MaxCostUSD float64  `toml:"max_cost_usd"`
	Validate   string   `toml:"validate"`
	Classifier string   `toml:"classifier"`
}

type rawServerFile struct {
	Server rawServer  `toml:"server"`
	Route  []rawRoute `toml:"route"`
}

var (
	hexDigest = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	routeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
)

// ParseConfig decodes the [server] table, its [[server.key]] array and the
// [[route]] tables of a TOML document; name is used in messages. Other
// top-level tables ([providers.*] ...) belong to other parts of costwise
// and are ignored; unknown keys inside [server] or [[route]] are errors.
// Every problem is reported as "name:line:col: path: what is wrong; what to
// do", all of them joined. Route rules (task kinds, globs, validate) are
// checked again, against the catalog, when the router is built.
func ParseConfig(name string, data []byte) (*Config, error) {
	var raw rawServerFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: TOML syntax error: %s; fix the file's syntax", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v; check the types of the [server], [[server.key]] and [[route]] keys (budgets and qualities are numbers, rpm an integer, names strings, models a list of strings)", name, err)
	}
	ix := tomlpos.Build(data)
	probs := tomlpos.NewProblems(name, ix)
	at := probs.At
	for _, u := range ix.Undecoded(md) {
		var allowed string
		switch {
		case strings.HasPrefix(u.Path, "server.key["):
			allowed = "name, key_sha256, budget_usd_per_day, rpm"
		case strings.HasPrefix(u.Path, "server."):
			allowed = "key, auto_min_quality, budget_usd_per_day, max_body_bytes"
		case strings.HasPrefix(u.Path, "route["):
			allowed = "name, task, min_quality, models, providers, max_cost_usd, validate"
		default:
			continue
		}
		probs.AtPos(u.Pos, u.Path, fmt.Sprintf("unknown key %q; allowed keys are %s", u.Key, allowed))
	}
	cfg := &Config{Path: name, AutoMinQuality: DefaultAutoMinQuality, MaxBodyBytes: DefaultMaxBodyBytes}
	rs := raw.Server
	if v := rs.AutoMinQuality; v != nil {
		if !(*v >= 0 && *v <= 1) {
			at("server.auto_min_quality", fmt.Sprintf("%v is not between 0 and 1", *v))
		} else {
			cfg.AutoMinQuality = *v
		}
	}
	if rs.AutoClassifier != "" {
		if c, err := loadClassifier(name, rs.AutoClassifier); err != nil {
			at("server.auto_classifier", err.Error())
		} else {
			cfg.AutoClassifier = c
		}
	}
	if v := rs.BudgetUSDPerDay; v != nil {
		if n, ok := usdToNano(*v); !ok {
			at("server.budget_usd_per_day", fmt.Sprintf("%v is not a finite amount >= 0; use 0 or leave it out for no cap", *v))
		} else {
			cfg.DailyBudgetNano = n
		}
	}
	if v := rs.MaxBodyBytes; v != nil {
		if *v < 1024 || *v > 1<<30 {
			at("server.max_body_bytes", fmt.Sprintf("%d is not between 1024 and 1073741824", *v))
		} else {
			cfg.MaxBodyBytes = *v
		}
	}
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]string{}
	for i, rk := range rs.Key {
		base := fmt.Sprintf("server.key[%d]", i)
		k := Key{}
		switch {
		case rk.Name == nil || strings.TrimSpace(*rk.Name) == "":
			at(base, `missing name; add name = "team-a" (it labels the key in logs and errors)`)
		case names[*rk.Name]:
			at(base+".name", fmt.Sprintf("name %q is used twice; give each key its own name", *rk.Name))
		default:
			k.Name = *rk.Name
			names[k.Name] = true
		}
		switch {
		case rk.KeySHA256 == nil:
			at(base, "missing key_sha256; add the hex SHA-256 of the key (printf %s \"$KEY\" | sha256sum), never the key itself")
		case !hexDigest.MatchString(*rk.KeySHA256):
			// Never echo the value: it may be a key pasted by mistake.
			at(base+".key_sha256", "is not 64 hex digits; give the hex SHA-256 of the key (printf %s \"$KEY\" | sha256sum), never the key itself")
		default:
			b, _ := hex.DecodeString(*rk.KeySHA256)
			copy(k.SHA256[:], b)
			if other, dup := digests[k.SHA256]; dup {
				at(base+".key_sha256", fmt.Sprintf("the same key is already configured at %s; give every client its own key", other))
			}
			digests[k.SHA256] = base
		}
		if v := rk.BudgetUSDPerDay; v != nil {
			if n, ok := usdToNano(*v); !ok {
				at(base+".budget_usd_per_day", fmt.Sprintf("%v is not a finite amount >= 0; use 0 or leave it out for no cap", *v))
			} else {
				k.BudgetNanoPerDay = n
			}
		}
		if v := rk.RPM; v != nil {
			if *v < 0 {
				at(base+".rpm", fmt.Sprintf("must be >= 0 (got %d); 0 or leaving it out means unlimited", *v))
			} else {
				k.RPM = *v
			}
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	routes := map[string]bool{}
	for i, rr := range raw.Route {
		base := fmt.Sprintf("route[%d]", i)
		r := executor.Route{Task: rr.Task, MinQuality: rr.MinQuality, Models: rr.Models, Providers: rr.Providers,
			MaxCostUSD: rr.MaxCostUSD, Validate: rr.Validate}
		switch {
		case rr.Name == nil || *rr.Name == "":
			at(base, `missing name; add name = "cheap-chat" (clients send it as the model)`)
		case !routeName.MatchString(*rr.Name):
			at(base+".name", fmt.Sprintf("%q is not a valid route name; use letters, digits and . _ : / -", *rr.Name))
		case strings.HasPrefix(*rr.Name, "costwise/"):
			at(base+".name", fmt.Sprintf("%q: names starting with costwise/ are reserved for built-in routes; rename the route", *rr.Name))
		case routes[*rr.Name]:
			at(base+".name", fmt.Sprintf("route %q is defined twice; give each route its own name", *rr.Name))
		default:
			r.Name = *rr.Name
			routes[r.Name] = true
		}
		if !(rr.MinQuality >= 0 && rr.MinQuality <= 1) {
			at(base+".min_quality", fmt.Sprintf("%v is not between 0 and 1", rr.MinQuality))
		}
		if _, ok := usdToNano(rr.MaxCostUSD); !ok {
			at(base+".max_cost_usd", fmt.Sprintf("%v is not a finite amount >= 0; use 0 or leave it out for no cap", rr.MaxCostUSD))
		}
		if rr.Classifier != "" {
			if c, err := loadClassifier(cfg.Path, rr.Classifier); err != nil {
				at(base+".classifier", err.Error())
			} else {
				r.Classifier = c
			}
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadClassifier reads a prompt classifier named in the config file at
// configPath (relative names are relative to its folder).
func loadClassifier(configPath, file string) (*cascade.Classifier, error) {
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(configPath), file)
	}
	c, err := cascade.LoadClassifierFile(file)
	if err != nil {
		return nil, fmt.Errorf("%v; write one with costwise eval --classifier --save-classifier FILE", err)
	}
	return c, nil
}

func usdToNano(v float64) (int64, bool) {
	if !(v >= 0) || math.IsInf(v, 0) || v > 1e9 {
		return 0, false
	}
	return int64(math.Round(v * 1e9)), true
}
