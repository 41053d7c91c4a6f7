// Package eventpattern evaluates Amazon EventBridge event patterns against events, so the
// stack's rules can be tested against fixtures without an AWS account. No EventBridge pattern
// matcher is served by the Go module proxy here, so this is a small one of our own that follows
// the documented semantics (EventBridge User Guide: "Amazon EventBridge event patterns",
// "Content filtering in Amazon EventBridge event patterns", "Arrays in Amazon EventBridge event
// patterns", "Comparison operators for use in event patterns"):
//
//   - A pattern is a JSON object; every field in it must match (and). A field's value is either
//     a nested object (matched against the event's object at that key) or an array of
//     conditions, any of which may match (or). "$or" takes an array of sub-patterns.
//   - Conditions: exact string, number, boolean or null; {"prefix"}, {"suffix"} (each also with
//     {"equals-ignore-case"}); {"equals-ignore-case"}; {"wildcard"}; {"anything-but"} with a
//     value, a list of strings or of numbers, or one {"prefix"} / {"suffix"} /
//     {"equals-ignore-case"}; {"exists": true|false}; {"numeric": [op, n(, op, n)]}.
//   - A field absent from the event matches only {"exists": false}. A field whose event value is
//     an array matches when any element does (the documented "non-empty intersection").
//
// Not implemented (Compile refuses them rather than guessing): "cidr" and "anything-but" with
// "wildcard". Where the documentation leaves a case open, the choice is written next to the
// code that makes it.
package eventpattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Pattern is a compiled event pattern. It is immutable and safe for concurrent use.
type Pattern struct {
	root object
}

// object is a pattern object: every field must match, and every "$or" group must have a
// member that matches.
type object struct {
	fields []field
	ors    [][]object
}

type field struct {
	name   string
	nested *object     // set when the pattern value is an object
	conds  []condition // set when the pattern value is an array
}

// condition matches one leaf value of the event; v is nil for a JSON null, and present is false
// when the field is absent.
type condition interface {
	match(v any, present bool) bool
}

// Compile parses a pattern given as JSON.
func Compile(patternJSON []byte) (*Pattern, error) {
	var raw any
	dec := json.NewDecoder(strings.NewReader(string(patternJSON)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("eventpattern: pattern is not JSON: %w", err)
	}
	return CompileValue(raw)
}

// CompileValue compiles a pattern already decoded from JSON or YAML (maps, slices, strings,
// numbers as json.Number, float64 or int, booleans, nil).
func CompileValue(raw any) (*Pattern, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("eventpattern: a pattern must be a JSON object")
	}
	if len(m) == 0 {
		return nil, errors.New("eventpattern: a pattern must not be empty")
	}
	o, err := compileObject(m, "")
	if err != nil {
		return nil, err
	}
	return &Pattern{root: o}, nil
}

func compileObject(m map[string]any, path string) (object, error) {
	var o object
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	for _, k := range keys {
		v := m[k]
		p := join(path, k)
		if k == "$or" {
			arr, ok := v.([]any)
			if !ok || len(arr) < 2 {
				return object{}, fmt.Errorf("eventpattern: %s must be an array of at least two patterns", p)
			}
			var group []object
			for i, e := range arr {
				em, ok := e.(map[string]any)
				if !ok || len(em) == 0 {
					return object{}, fmt.Errorf("eventpattern: %s[%d] must be a non-empty object", p, i)
				}
				sub, err := compileObject(em, path)
				if err != nil {
					return object{}, err
				}
				group = append(group, sub)
			}
			o.ors = append(o.ors, group)
			continue
		}
		switch tv := v.(type) {
		case map[string]any:
			if len(tv) == 0 {
				return object{}, fmt.Errorf("eventpattern: %s must not be an empty object", p)
			}
			sub, err := compileObject(tv, p)
			if err != nil {
				return object{}, err
			}
			o.fields = append(o.fields, field{name: k, nested: &sub})
		case []any:
			if len(tv) == 0 {
				return object{}, fmt.Errorf("eventpattern: %s must not be an empty array", p)
			}
			var conds []condition
			for i, e := range tv {
				c, err := compileCondition(e, fmt.Sprintf("%s[%d]", p, i))
				if err != nil {
					return object{}, err
				}
				conds = append(conds, c)
			}
			o.fields = append(o.fields, field{name: k, conds: conds})
		default:
			return object{}, fmt.Errorf("eventpattern: %s must be an object or an array (leaf values go in arrays)", p)
		}
	}
	return o, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Matches reports whether the event (JSON) matches the pattern.
func (p *Pattern) Matches(eventJSON []byte) (bool, error) {
	var ev any
	dec := json.NewDecoder(strings.NewReader(string(eventJSON)))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return false, fmt.Errorf("eventpattern: event is not JSON: %w", err)
	}
	m, ok := ev.(map[string]any)
	if !ok {
		return false, errors.New("eventpattern: an event must be a JSON object")
	}
	return p.root.match(m), nil
}

func (o object) match(ev map[string]any) bool {
	for _, f := range o.fields {
		v, present := ev[f.name]
		if !f.match(v, present) {
			return false
		}
	}
	for _, group := range o.ors {
		matched := false
		for _, sub := range group {
			if sub.match(ev) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

func (f field) match(v any, present bool) bool {
	if f.nested != nil {
		switch tv := v.(type) {
		case map[string]any:
			return f.nested.match(tv)
		case []any:
			// An array of objects: matched element by element. (EventBridge flattens arrays, so
			// it could also combine fields of different elements; the docs give no example of
			// that, and no rule here relies on it.)
			for _, e := range tv {
				if em, ok := e.(map[string]any); ok && f.nested.match(em) {
					return true
				}
			}
			return false
		case nil:
			if !present {
				// An absent object: its fields are all absent, so only exists:false can hold.
				return f.nested.match(map[string]any{})
			}
			return false
		default:
			return false
		}
	}
	if arr, ok := v.([]any); ok {
		if len(arr) == 0 {
			return f.anyCond(nil, false) // an empty array offers no value; treated as absent
		}
		for _, e := range arr {
			if f.anyCond(e, true) {
				return true
			}
		}
		return false
	}
	if _, isObj := v.(map[string]any); isObj {
		return false // a leaf condition never matches an object ("exists" works on leaf nodes only)
	}
	return f.anyCond(v, present)
}

func (f field) anyCond(v any, present bool) bool {
	for _, c := range f.conds {
		if c.match(v, present) {
			return true
		}
	}
	return false
}

// number returns v as a float64 when it is a JSON number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}
