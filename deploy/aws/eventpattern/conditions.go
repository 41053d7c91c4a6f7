package eventpattern

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// literal: an exact value. Strings compare exactly (case-sensitive), numbers by value (300 and
// 3.0e2 are the same number), booleans and null by identity.
type literal struct{ v any }

func (l literal) match(v any, present bool) bool {
	if !present {
		return false
	}
	return equal(l.v, v)
}

func equal(a, b any) bool {
	if an, ok := number(a); ok {
		bn, ok := number(b)
		return ok && an == bn
	}
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return false
}

// stringCond matches string values only: prefix, suffix, equals-ignore-case, wildcard.
type stringCond struct {
	kind       string // "prefix", "suffix", "equals-ignore-case", "wildcard"
	s          string
	ignoreCase bool
}

func (c stringCond) match(v any, present bool) bool {
	sv, ok := v.(string)
	if !present || !ok {
		return false
	}
	return c.test(sv)
}

func (c stringCond) test(sv string) bool {
	want := c.s
	if c.ignoreCase {
		sv, want = strings.ToLower(sv), strings.ToLower(want)
	}
	switch c.kind {
	case "prefix":
		return strings.HasPrefix(sv, want)
	case "suffix":
		return strings.HasSuffix(sv, want)
	case "equals-ignore-case":
		return strings.EqualFold(sv, c.s)
	case "wildcard":
		return wildcard(want, sv)
	}
	return false
}

// wildcard matches s against a pattern where * stands for any run of characters and \* for a
// literal star (the documented escape).
func wildcard(pattern, s string) bool {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch {
		case pattern[i] == '\\' && i+1 < len(pattern):
			i++
			cur.WriteByte(pattern[i])
		case pattern[i] == '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(pattern[i])
		}
	}
	parts = append(parts, cur.String())
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

// anythingBut matches a present value that is none of the listed values, or (with inner set)
// a string that does not pass inner. An absent field does not match: only exists:false matches
// absence. A value of another JSON type than the listed ones is "anything but" them, so it
// matches (the docs do not say; this is the reading that forwards rather than drops).
type anythingBut struct {
	values []any
	inner  *stringCond
}

func (a anythingBut) match(v any, present bool) bool {
	if !present {
		return false
	}
	if a.inner != nil {
		sv, ok := v.(string)
		if !ok {
			return false // prefix/suffix forms are string matching
		}
		return !a.inner.test(sv)
	}
	for _, x := range a.values {
		if equal(x, v) {
			return false
		}
	}
	return true
}

type exists bool

func (e exists) match(_ any, present bool) bool { return bool(e) == present }

// numeric holds one or two comparisons, all of which must hold.
type numeric struct {
	ops  []string
	vals []float64
}

func (n numeric) match(v any, present bool) bool {
	f, ok := number(v)
	if !present || !ok {
		return false
	}
	for i, op := range n.ops {
		x := n.vals[i]
		var hold bool
		switch op {
		case "=":
			hold = f == x
		case "<":
			hold = f < x
		case "<=":
			hold = f <= x
		case ">":
			hold = f > x
		case ">=":
			hold = f >= x
		}
		if !hold {
			return false
		}
	}
	return true
}

// numericLimit: the docs limit numeric matching to -5.0e9..+5.0e9.
const numericLimit = 5.0e9

func compileCondition(e any, path string) (condition, error) {
	switch tv := e.(type) {
	case string, bool, nil, json.Number, float64, int:
		return literal{v: tv}, nil
	case map[string]any:
		if len(tv) != 1 {
			return nil, fmt.Errorf("eventpattern: %s: an operator object has exactly one key", path)
		}
		for op, arg := range tv {
			return compileOperator(op, arg, path)
		}
	}
	return nil, fmt.Errorf("eventpattern: %s: not a value or an operator object", path)
}

func compileOperator(op string, arg any, path string) (condition, error) {
	switch op {
	case "prefix", "suffix", "wildcard":
		c, err := stringOperand(op, arg, path)
		if err != nil {
			return nil, err
		}
		return c, nil
	case "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("eventpattern: %s: equals-ignore-case takes a string", path)
		}
		return stringCond{kind: op, s: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return nil, fmt.Errorf("eventpattern: %s: exists takes true or false", path)
		}
		return exists(b), nil
	case "numeric":
		return compileNumeric(arg, path)
	case "anything-but":
		return compileAnythingBut(arg, path)
	case "cidr":
		return nil, fmt.Errorf("eventpattern: %s: cidr is not implemented", path)
	}
	return nil, fmt.Errorf("eventpattern: %s: unknown operator %q", path, op)
}

// stringOperand parses the argument of prefix/suffix/wildcard: a string, or (prefix and suffix
// only) {"equals-ignore-case": string}.
func stringOperand(op string, arg any, path string) (*stringCond, error) {
	switch a := arg.(type) {
	case string:
		return &stringCond{kind: op, s: a}, nil
	case map[string]any:
		if s, ok := a["equals-ignore-case"].(string); ok && len(a) == 1 && op != "wildcard" {
			return &stringCond{kind: op, s: s, ignoreCase: true}, nil
		}
	}
	return nil, fmt.Errorf("eventpattern: %s: %s takes a string", path, op)
}

func compileNumeric(arg any, path string) (condition, error) {
	arr, ok := arg.([]any)
	if !ok || (len(arr) != 2 && len(arr) != 4) {
		return nil, fmt.Errorf("eventpattern: %s: numeric takes [op, n] or [op, n, op, n]", path)
	}
	var n numeric
	for i := 0; i < len(arr); i += 2 {
		op, ok := arr[i].(string)
		if !ok {
			return nil, fmt.Errorf("eventpattern: %s: numeric operator must be a string", path)
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("eventpattern: %s: unknown numeric operator %q", path, op)
		}
		if op == "=" && len(arr) == 4 {
			return nil, fmt.Errorf("eventpattern: %s: \"=\" cannot be combined with a range", path)
		}
		x, ok := number(arr[i+1])
		if !ok || math.Abs(x) > numericLimit {
			return nil, fmt.Errorf("eventpattern: %s: numeric bound must be a number within ±5.0e9", path)
		}
		n.ops = append(n.ops, op)
		n.vals = append(n.vals, x)
	}
	return n, nil
}

func compileAnythingBut(arg any, path string) (condition, error) {
	switch a := arg.(type) {
	case string, json.Number, float64, int:
		return anythingBut{values: []any{a}}, nil
	case []any:
		if len(a) == 0 {
			return nil, fmt.Errorf("eventpattern: %s: anything-but list must not be empty", path)
		}
		_, firstIsString := a[0].(string)
		for _, x := range a {
			_, isString := x.(string)
			_, isNumber := number(x)
			// The docs allow lists of only strings or only numbers.
			if (firstIsString && !isString) || (!firstIsString && !isNumber) {
				return nil, fmt.Errorf("eventpattern: %s: anything-but list must hold only strings or only numbers", path)
			}
		}
		return anythingBut{values: a}, nil
	case map[string]any:
		if len(a) != 1 {
			return nil, fmt.Errorf("eventpattern: %s: anything-but takes one operator", path)
		}
		for op, inner := range a {
			switch op {
			case "prefix", "suffix":
				c, err := stringOperand(op, inner, path)
				if err != nil {
					return nil, fmt.Errorf("eventpattern: %s: anything-but %s takes a single string, not a list: %w", path, op, err)
				}
				return anythingBut{inner: c}, nil
			case "equals-ignore-case":
				s, ok := inner.(string)
				if !ok {
					return nil, fmt.Errorf("eventpattern: %s: anything-but equals-ignore-case takes a string", path)
				}
				return anythingBut{inner: &stringCond{kind: op, s: s}}, nil
			}
			return nil, fmt.Errorf("eventpattern: %s: anything-but %q is not implemented", path, op)
		}
	}
	return nil, fmt.Errorf("eventpattern: %s: anything-but takes a value, a list, or one of prefix / suffix / equals-ignore-case", path)
}
