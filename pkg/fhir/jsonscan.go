package fhir

import (
	"encoding/json"
	"errors"
	"strconv"
)

// A small JSON reader for the few fields this package needs from a page. encoding/json scans
// a page twice (validity, then decoding) and every resource twice more when each entry is a
// RawMessage decoded again for its head; this reader passes over the bytes once, validating
// the grammar as strictly as json.Valid, and hands back the exact byte span of each resource
// so its Raw is copied once and never re-encoded. Keys match exactly (FHIR names are case
// sensitive; encoding/json would also accept "ID" for "id").

// errSyntax is the only error of the scanner: callers turn it into ErrMalformedBundle without
// any detail, since a position or a quoted byte could point into PHI.
var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting, as encoding/json does, so a hostile page cannot exhaust the stack.
const maxDepth = 10000

type scanner struct {
	data  []byte
	pos   int
	depth int
}

// ws skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) ws() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	if s.ws() != 0 {
		return errSyntax
	}
	return nil
}

// object reads an object, calling each with every key; each must consume the key's value
// (with skip or a typed read). A value that is not an object is a syntax error to the
// caller, who can check peek first where another type is acceptable.
func (s *scanner) object(each func(key []byte) error) error {
	if s.ws() != '{' {
		return errSyntax
	}
	s.pos++
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	if s.ws() == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if s.ws() != '"' {
			return errSyntax
		}
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if s.ws() != ':' {
			return errSyntax
		}
		s.pos++
		if err := each(key); err != nil {
			return err
		}
		switch s.ws() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// array reads an array, calling each at every element, which it must consume.
func (s *scanner) array(each func() error) error {
	if s.ws() != '[' {
		return errSyntax
	}
	s.pos++
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	if s.ws() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := each(); err != nil {
			return err
		}
		switch s.ws() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// str reads a string at the current position and returns its bytes between the quotes (still
// escaped when escaped is true).
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if s.ws() != '"' {
		return nil, false, errSyntax
	}
	start := s.pos + 1
	i := start
	d := s.data
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return nil, false, errSyntax
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return nil, false, errSyntax
				}
				i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default:
			i++
		}
	}
	return nil, false, errSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringValue reads a string value; ok is false (and the value consumed) when the value is of
// another type, so a field of the wrong type reads as absent instead of failing the page.
func (s *scanner) stringValue() (v string, ok bool, err error) {
	if s.ws() != '"' {
		return "", false, s.skip()
	}
	raw, escaped, err := s.str()
	if err != nil {
		return "", false, err
	}
	if !escaped {
		return string(raw), true, nil
	}
	u, err := unescape(s.data[s.pos-len(raw)-2 : s.pos])
	return u, err == nil, err
}

// unescape decodes a quoted JSON string with escapes. Rare in the fields read here (ids,
// codes, instants), so encoding/json does it; a separate function keeps the fast path of its
// callers free of the heap variable Unmarshal needs.
func unescape(quoted []byte) (string, error) {
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return "", errSyntax
	}
	return v, nil
}

// skip consumes one value of any type, checking its grammar.
func (s *scanner) skip() error {
	switch c := s.ws(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	default:
		return errSyntax
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return errSyntax
	}
	s.pos += len(lit)
	return nil
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	d, start := s.data, s.pos
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return nil, errSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errSyntax
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, errSyntax
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return d[start:i], nil
}

// intValue reads a non-negative integer; ok is false for any other value (consumed).
func (s *scanner) intValue() (n int, ok bool, err error) {
	if c := s.ws(); c != '-' && (c < '0' || c > '9') {
		return 0, false, s.skip()
	}
	text, err := s.number()
	if err != nil {
		return 0, false, err
	}
	n, perr := strconv.Atoi(string(text))
	if perr != nil || n < 0 {
		return 0, false, nil
	}
	return n, true, nil
}
