package tomlpos

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Pos is a 1-based line and column (in bytes) in a TOML document.
type Pos struct {
	Line int
	Col  int
}

// IsValid reports whether p refers to a real position.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats p as "line:col".
func (p Pos) String() string { return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) }

// Index maps canonical key paths to positions. Paths join key parts with dots
// and mark elements of arrays of tables with their 0-based index:
// "node[2].repeat.max", "inputs.ticket.tokens", "model[0].tier[1]" (the
// header of that element).
type Index struct {
	keys  map[string]Pos // key path -> position of the key
	vals  map[string]Pos // key path -> position of the value's first byte
	order []string       // paths in document order
}

// Build scans src and indexes every key and table header in it.
func Build(src []byte) *Index {
	s := &scanner{src: src, line: 1, col: 1, ix: &Index{keys: map[string]Pos{}, vals: map[string]Pos{}}, counts: map[string]int{}}
	s.document()
	return s.ix
}

// Key returns the position of the key at path, or of its nearest indexed
// ancestor when the path itself was not written (a default, say).
func (ix *Index) Key(path string) Pos {
	for p := path; p != ""; p = parent(p) {
		if pos, ok := ix.keys[p]; ok {
			return pos
		}
	}
	return Pos{}
}

// Value returns the position of the first byte of the value at path; it falls
// back to Key when the value's position is unknown.
func (ix *Index) Value(path string) Pos {
	if pos, ok := ix.vals[path]; ok {
		return pos
	}
	return ix.Key(path)
}

// FindOnLine returns the position of a key written on the given line whose
// path, without array indices, is key (as BurntSushi names keys in errors).
func (ix *Index) FindOnLine(key string, line int) (Pos, bool) {
	for _, p := range ix.order {
		if pos := ix.keys[p]; pos.Line == line && stripIndices(p) == key {
			return pos, true
		}
	}
	return Pos{}, false
}

// Located is a key written in a document, with where it stands.
type Located struct {
	Path string // canonical path with array indices, e.g. "node[1].colour"
	Key  string // the key's last part, e.g. "colour"
	Pos  Pos
}

// Undecoded lists every place where a key that md did not decode is written,
// in document order. MetaData reports such keys without array indices; this
// finds each occurrence.
func (ix *Index) Undecoded(md toml.MetaData) []Located {
	want := map[string]bool{}
	for _, k := range md.Undecoded() {
		want[k.String()] = true
	}
	if len(want) == 0 {
		return nil
	}
	var out []Located
	for _, p := range ix.order {
		if !want[stripIndices(p)] {
			continue
		}
		// Report the outermost unknown key only: a whole unknown table lists
		// its own keys as undecoded too.
		if ancestorIn(p, want) {
			continue
		}
		out = append(out, Located{Path: p, Key: last(p), Pos: ix.keys[p]})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
	return out
}

func ancestorIn(p string, set map[string]bool) bool {
	for a := parent(p); a != ""; a = parent(a) {
		if set[stripIndices(a)] {
			return true
		}
	}
	return false
}

// parent drops the last part of a path: "a[1].b" -> "a[1]", "a[1]" -> "a".
func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func last(p string) string {
	p = stripIndices(p)
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func stripIndices(p string) string {
	if !strings.Contains(p, "[") {
		return p
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

type scanner struct {
	src       []byte
	i         int
	line, col int
	ix        *Index
	prefix    string         // canonical path of the current table
	counts    map[string]int // canonical array-table path -> elements seen
	arrays    map[string]bool
	arrayPath map[string]string // stripped path -> canonical path of its current element
}

func (s *scanner) pos() Pos { return Pos{Line: s.line, Col: s.col} }

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) next() byte {
	if s.eof() {
		return 0
	}
	c := s.src[s.i]
	s.i++
	if c == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return c
}

func (s *scanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(s.src[s.i:min(len(s.src), s.i+len(p))]), p)
}

func (s *scanner) skipBlank() { // spaces and tabs
	for !s.eof() && (s.peek() == ' ' || s.peek() == '\t') {
		s.next()
	}
}

func (s *scanner) skipLine() {
	for !s.eof() && s.peek() != '\n' {
		s.next()
	}
}

// skipTrivia skips white space, newlines and comments.
func (s *scanner) skipTrivia() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.next()
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

func (s *scanner) record(path string, key Pos) {
	if _, dup := s.ix.keys[path]; !dup {
		s.ix.order = append(s.ix.order, path)
	}
	s.ix.keys[path] = key
}

func (s *scanner) document() {
	s.arrays = map[string]bool{}
	s.arrayPath = map[string]string{}
	for {
		s.skipTrivia()
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			s.header()
			continue
		}
		before := s.i
		s.keyValue(s.prefix)
		if s.i == before {
			s.next()
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and sets the current table.
func (s *scanner) header() {
	at := s.pos()
	s.next()
	array := s.peek() == '['
	if array {
		s.next()
	}
	s.skipBlank()
	parts := s.keyParts()
	s.skipLine()
	// Resolve every leading part through the arrays of tables seen so far.
	canon := ""
	for n, part := range parts {
		stripped := strings.Join(parts[:n+1], ".")
		if canon == "" {
			canon = part
		} else {
			canon += "." + part
		}
		isLast := n == len(parts)-1
		if isLast && array {
			k := s.counts[canon]
			s.counts[canon] = k + 1
			s.arrays[stripped] = true
			elem := canon + "[" + strconv.Itoa(k) + "]"
			s.arrayPath[stripped] = elem
			canon = elem
		} else if s.arrays[stripped] {
			canon = s.arrayPath[stripped]
		}
	}
	s.prefix = canon
	s.record(canon, at)
}

// keyParts reads a dotted key up to "=", "]" or the end of the line.
func (s *scanner) keyParts() []string {
	var parts []string
	for !s.eof() {
		s.skipBlank()
		switch c := s.peek(); c {
		case '"', '\'':
			parts = append(parts, s.quotedKey(c))
		case '.':
			s.next()
		case '=', ']', '\n', '#':
			return parts
		default:
			start := s.i
			for !s.eof() && isBare(s.peek()) {
				s.next()
			}
			if s.i == start { // not a key character: give up on this line
				s.next()
				continue
			}
			parts = append(parts, string(s.src[start:s.i]))
		}
	}
	return parts
}

func isBare(c byte) bool {
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func (s *scanner) quotedKey(q byte) string {
	s.next()
	var b strings.Builder
	for !s.eof() && s.peek() != q && s.peek() != '\n' {
		c := s.next()
		if c == '\\' && q == '"' && !s.eof() {
			c = s.next()
		}
		b.WriteByte(c)
	}
	if !s.eof() && s.peek() == q {
		s.next()
	}
	return b.String()
}

// keyValue reads "key = value" inside the table at prefix.
func (s *scanner) keyValue(prefix string) {
	at := s.pos()
	parts := s.keyParts()
	if len(parts) == 0 || s.peek() != '=' {
		s.skipLine()
		return
	}
	s.next() // '='
	path := prefix
	for _, p := range parts {
		if path == "" {
			path = p
		} else {
			path += "." + p
		}
	}
	s.record(path, at)
	s.skipBlank()
	s.ix.vals[path] = s.pos()
	s.value(path)
}

// value skips one value, indexing the keys of inline tables under path.
func (s *scanner) value(path string) {
	switch {
	case s.hasPrefix(`"""`), s.hasPrefix(`'''`):
		s.multiline(string(s.src[s.i : s.i+3]))
	case s.peek() == '"' || s.peek() == '\'':
		s.quotedKey(s.peek()) // same lexing as a quoted key
	case s.peek() == '[':
		s.next()
		for n := 0; ; n++ {
			s.skipTrivia()
			if s.eof() || s.peek() == ']' {
				break
			}
			before := s.i
			s.value(path + "[" + strconv.Itoa(n) + "]")
			if s.i == before { // malformed: make progress
				s.next()
			}
			s.skipTrivia()
			if s.peek() == ',' {
				s.next()
			}
		}
		if !s.eof() {
			s.next()
		}
	case s.peek() == '{':
		s.next()
		for {
			s.skipTrivia()
			if s.eof() || s.peek() == '}' {
				break
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			before := s.i
			s.keyValue(path)
			if s.i == before {
				s.next()
			}
		}
		if !s.eof() {
			s.next()
		}
	default:
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.next()
		}
	}
}

func (s *scanner) multiline(delim string) {
	for range 3 {
		s.next()
	}
	for !s.eof() {
		if s.hasPrefix(delim) {
			for range 3 {
				s.next()
			}
			// Up to two further quotes belong to the string's content.
			for !s.eof() && s.peek() == delim[0] {
				s.next()
			}
			return
		}
		if c := s.next(); c == '\\' && delim[0] == '"' && !s.eof() {
			s.next()
		}
	}
}

// TypeName names the TOML type of a value BurntSushi/toml decoded into an
// interface ("a string", "an array of tables", ...), for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("%T", v)
}
