package tokens

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// Encoding names an exact, locally available BPE vocabulary. The values match
// the catalog's `tokenizer` key.
type Encoding string

const (
	// O200kBase is the vocabulary of gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the
	// o-series reasoning models.
	O200kBase Encoding = "o200k_base"
	// Cl100kBase is the vocabulary of gpt-4, gpt-3.5-turbo and the
	// text-embedding-3 / ada-002 embedding models.
	Cl100kBase Encoding = "cl100k_base"
)

// ErrUnknownEncoding is returned (wrapped) for an Encoding this package cannot
// load.
var ErrUnknownEncoding = errors.New("unknown encoding")

// ErrUnknownModel is returned (wrapped) by EncodingForModel for a model name
// with no known OpenAI encoding.
var ErrUnknownModel = errors.New("unknown OpenAI model")

// codecs holds one lazily loaded codec per encoding. Loading builds the regexp
// and touches the multi-megabyte embedded vocabulary, so each is done once per
// process; the codecs themselves are safe for concurrent use (read-only
// vocabulary maps, and a regexp2 matcher documented as goroutine-safe).
var codecs = map[Encoding]*lazyCodec{
	O200kBase:  {enc: tokenizer.O200kBase},
	Cl100kBase: {enc: tokenizer.Cl100kBase},
}

type lazyCodec struct {
	enc   tokenizer.Encoding
	once  sync.Once
	codec tokenizer.Codec
	err   error
}

func (l *lazyCodec) get() (tokenizer.Codec, error) {
	l.once.Do(func() {
		l.codec, l.err = tokenizer.Get(l.enc)
	})
	return l.codec, l.err
}

func codecFor(enc Encoding) (tokenizer.Codec, error) {
	l, ok := codecs[enc]
	if !ok {
		return nil, fmt.Errorf("tokens: encoding %q: %w (use %q or %q)", enc, ErrUnknownEncoding, O200kBase, Cl100kBase)
	}
	c, err := l.get()
	if err != nil {
		return nil, fmt.Errorf("tokens: loading encoding %q: %w", enc, err)
	}
	return c, nil
}

// Preload loads the codecs for the given encodings now, so that later calls to
// Count do not pay the one-time loading cost. With no arguments it loads every
// supported encoding.
func Preload(encs ...Encoding) error {
	if len(encs) == 0 {
		encs = []Encoding{O200kBase, Cl100kBase}
	}
	for _, e := range encs {
		if _, err := codecFor(e); err != nil {
			return err
		}
	}
	return nil
}

// Count returns the exact number of tokens text encodes to under enc.
//
// Text is encoded as ordinary text: special-token spellings such as
// "<|endoftext|>" are counted as the characters they contain (tiktoken's
// encode_ordinary), which is what an API does with user content. Invalid UTF-8
// is tokenized byte-wise, never rejected.
func Count(enc Encoding, text string) (int, error) {
	c, err := codecFor(enc)
	if err != nil {
		return 0, err
	}
	n, err := countWith(c, text)
	if err != nil {
		return 0, fmt.Errorf("tokens: counting %d bytes with %s: %w", len(text), enc, err)
	}
	return n, nil
}

// countWith counts text with c, correcting a tiktoken-go v0.10.0 defect: it
// drops the DEL character (U+007F) instead of emitting its single-byte token.
// In both vocabularies DEL occurs in exactly one token (the lone byte), so it
// never merges with a neighbour and each DEL adds exactly one token.
func countWith(c tokenizer.Codec, text string) (int, error) {
	if text == "" {
		return 0, nil
	}
	n, err := c.Count(text)
	if err != nil {
		return 0, err
	}
	return n + strings.Count(text, "\x7f"), nil
}

// EncodingForModel maps an OpenAI model name to its encoding. It accepts the
// bare API name ("gpt-4o-mini"), a dated snapshot ("gpt-4-0613"), a catalog
// id ("openai/gpt-4.1"), and fine-tuned names ("ft:gpt-4o-mini:org::id").
// Matching is case-insensitive and by prefix, most specific prefix first, the
// way tiktoken's encoding_for_model resolves names.
func EncodingForModel(model string) (Encoding, error) {
	name := strings.ToLower(strings.TrimSpace(model))
	name = strings.TrimPrefix(name, "openai/")
	name = strings.TrimPrefix(name, "ft:")
	for _, p := range modelPrefixes {
		if name == p.prefix || strings.HasPrefix(name, p.prefix+p.sep) {
			return p.enc, nil
		}
	}
	return "", fmt.Errorf("tokens: model %q: %w; set the catalog's tokenizer key or token_ratio for it", model, ErrUnknownModel)
}

// modelPrefixes is ordered most specific first. sep is what must follow the
// prefix when the name is longer than it ("gpt-5" also matches "gpt-5.1").
var modelPrefixes = []struct {
	prefix, sep string
	enc         Encoding
}{
	{"gpt-4o", "-", O200kBase},
	{"chatgpt-4o", "-", O200kBase},
	{"gpt-4.1", "-", O200kBase},
	{"gpt-4.5", "-", O200kBase},
	{"gpt-5", "", O200kBase},
	{"gpt-oss", "-", O200kBase}, // o200k_harmony: o200k_base plus chat-format specials
	{"codex-mini", "-", O200kBase},
	{"o1", "-", O200kBase},
	{"o3", "-", O200kBase},
	{"o4-mini", "-", O200kBase},
	{"gpt-4", "-", Cl100kBase},
	{"gpt-3.5-turbo", "-", Cl100kBase},
	{"gpt-35-turbo", "-", Cl100kBase},
	{"text-embedding-3-small", "", Cl100kBase},
	{"text-embedding-3-large", "", Cl100kBase},
	{"text-embedding-ada-002", "", Cl100kBase},
}

// Message is one chat message as sent to a chat-completions API.
type Message struct {
	Role    string // "system", "user", "assistant", "tool", ...
	Content string
	Name    string // optional participant name; empty means absent
}

// Chat framing overhead for OpenAI chat models (gpt-3.5-turbo-0613 onwards,
// gpt-4, gpt-4o, gpt-4o-mini), as given in the OpenAI cookbook "How to count
// tokens with tiktoken".
const (
	// TokensPerMessage wraps every message: <|start|>{role}\n ... <|end|>.
	TokensPerMessage = 3
	// TokensPerName is added when a message carries a name.
	TokensPerName = 1
	// ReplyPriming primes the assistant reply: <|start|>assistant<|message|>.
	ReplyPriming = 3
)

// CountChat counts the prompt tokens of a chat request with the given
// messages: each message costs TokensPerMessage plus the tokens of its role,
// content and (when set) name plus TokensPerName, and the request costs
// ReplyPriming once. Tool definitions and images are not included; count
// those separately.
func CountChat(enc Encoding, msgs []Message) (int, error) {
	c, err := codecFor(enc)
	if err != nil {
		return 0, err
	}
	total := ReplyPriming
	for i, m := range msgs {
		total += TokensPerMessage
		for _, part := range [...]string{m.Role, m.Content, m.Name} {
			if part == "" {
				continue
			}
			n, err := countWith(c, part)
			if err != nil {
				return 0, fmt.Errorf("tokens: message %d (role %q): %w", i, m.Role, err)
			}
			total += n
		}
		if m.Name != "" {
			total += TokensPerName
		}
	}
	return total, nil
}
