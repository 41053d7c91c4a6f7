package aws_test

// A small CloudFormation reader for the tests: YAML short-form tags to long form, reference
// checks, and an evaluator of the intrinsic functions for a given set of parameter values, so
// goformation can decode the result into typed resources. Resource references and
// attributes become readable symbols ("{Ref:Stream}", "{GetAtt:Stream.Arn}", "{AWS::Region}").

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var pseudoParams = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// noValue marks a value removed by AWS::NoValue.
type noValueT struct{}

var noValue = noValueT{}

type template struct {
	raw        map[string]any
	params     map[string]map[string]any
	resources  map[string]map[string]any
	conditions map[string]any
}

func loadTemplate(path string) (*template, *yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("template is not YAML: %w", err)
	}
	v, err := fromNode(&doc)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("template is not a mapping")
	}
	t := &template{raw: raw, params: map[string]map[string]any{}, resources: map[string]map[string]any{}}
	for k, p := range asMap(raw["Parameters"]) {
		t.params[k] = asMap(p)
	}
	for k, r := range asMap(raw["Resources"]) {
		t.resources[k] = asMap(r)
	}
	t.conditions = asMap(raw["Conditions"])
	return t, &doc, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!If": "Fn::If",
	"!Join": "Fn::Join", "!Split": "Fn::Split", "!Select": "Fn::Select", "!Equals": "Fn::Equals",
	"!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap",
	"!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Cidr": "Fn::Cidr",
}

// fromNode converts YAML to plain values, short-form tags to long form. CloudFormation accepts
// neither aliases nor merge keys, so neither is accepted here.
func fromNode(n *yaml.Node) (any, error) {
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("line %d: YAML anchors and aliases are not supported by CloudFormation", n.Line)
	}
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return fromNode(n.Content[0])
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				return nil, fmt.Errorf("line %d: merge keys are not supported by CloudFormation", n.Content[i].Line)
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			val, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			i, err := strconv.Atoi(n.Value)
			if err != nil {
				return nil, err
			}
			v = i
		case "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil {
				return nil, err
			}
			v = f
		case "!!bool":
			v = n.Value == "true"
		case "!!null":
			v = nil
		default:
			v = n.Value
		}
	}
	if long, ok := shortTags[n.Tag]; ok {
		if long == "Fn::GetAtt" {
			if s, ok := v.(string); ok {
				res, attr, _ := strings.Cut(s, ".")
				v = []any{res, attr}
			}
		}
		return map[string]any{long: v}, nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	return v, nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// references lists every problem with a Ref, GetAtt, Sub variable, condition name or
// DependsOn in the template.
func (t *template) references() []string {
	var bad []string
	known := func(name string) bool {
		_, p := t.params[name]
		_, r := t.resources[name]
		return p || r || pseudoParams[name]
	}
	var walk func(v any, where string, locals map[string]bool)
	walk = func(v any, where string, locals map[string]bool) {
		switch tv := v.(type) {
		case map[string]any:
			if len(tv) == 1 {
				for k, arg := range tv {
					switch k {
					case "Ref":
						if s, _ := arg.(string); !known(s) {
							bad = append(bad, fmt.Sprintf("%s: Ref %v", where, arg))
						}
						return
					case "Fn::GetAtt":
						a, _ := arg.([]any)
						if len(a) != 2 {
							bad = append(bad, fmt.Sprintf("%s: GetAtt %v", where, arg))
							return
						}
						if _, ok := t.resources[fmt.Sprint(a[0])]; !ok {
							bad = append(bad, fmt.Sprintf("%s: GetAtt %v", where, a[0]))
						}
						return
					case "Fn::Sub":
						str, vars := arg, map[string]bool{}
						if a, ok := arg.([]any); ok && len(a) == 2 {
							str = a[0]
							for name, val := range asMap(a[1]) {
								vars[name] = true
								walk(val, where, locals)
							}
						}
						s, _ := str.(string)
						for _, m := range subVar.FindAllStringSubmatch(s, -1) {
							name := m[1]
							if strings.HasPrefix(name, "!") {
								continue // ${!Literal}
							}
							res, _, isAttr := strings.Cut(name, ".")
							if vars[name] {
								continue
							}
							if isAttr {
								if _, ok := t.resources[res]; !ok {
									bad = append(bad, fmt.Sprintf("%s: Sub ${%s}", where, name))
								}
							} else if !known(name) {
								bad = append(bad, fmt.Sprintf("%s: Sub ${%s}", where, name))
							}
						}
						return
					case "Fn::If":
						a, _ := arg.([]any)
						if len(a) != 3 {
							bad = append(bad, fmt.Sprintf("%s: If needs 3 arguments", where))
							return
						}
						if _, ok := t.conditions[fmt.Sprint(a[0])]; !ok {
							bad = append(bad, fmt.Sprintf("%s: If condition %v", where, a[0]))
						}
						walk(a[1], where, locals)
						walk(a[2], where, locals)
						return
					case "Condition":
						if s, ok := arg.(string); ok {
							if _, ok := t.conditions[s]; !ok {
								bad = append(bad, fmt.Sprintf("%s: Condition %v", where, s))
							}
							return
						}
					}
				}
			}
			for k, x := range tv {
				walk(x, where+"."+k, locals)
			}
		case []any:
			for i, x := range tv {
				walk(x, fmt.Sprintf("%s[%d]", where, i), locals)
			}
		}
	}
	for name, r := range t.resources {
		if c, ok := r["Condition"].(string); ok {
			if _, ok := t.conditions[c]; !ok {
				bad = append(bad, fmt.Sprintf("Resources.%s: Condition %s", name, c))
			}
		}
		deps := r["DependsOn"]
		if s, ok := deps.(string); ok {
			deps = []any{s}
		}
		for _, d := range asSlice(deps) {
			if _, ok := t.resources[fmt.Sprint(d)]; !ok {
				bad = append(bad, fmt.Sprintf("Resources.%s: DependsOn %v", name, d))
			}
		}
		walk(r["Properties"], "Resources."+name, nil)
	}
	for name, o := range asMap(t.raw["Outputs"]) {
		om := asMap(o)
		if c, ok := om["Condition"].(string); ok {
			if _, ok := t.conditions[c]; !ok {
				bad = append(bad, fmt.Sprintf("Outputs.%s: Condition %s", name, c))
			}
		}
		walk(om["Value"], "Outputs."+name, nil)
	}
	for name, c := range t.conditions {
		walk(c, "Conditions."+name, nil)
	}
	sort.Strings(bad)
	return bad
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// evaluator resolves intrinsics for one set of parameter values.
type evaluator struct {
	t      *template
	values map[string]any // parameter -> value (CommaDelimitedList as []any)
	conds  map[string]bool
}

func (t *template) evaluator(overrides map[string]string) (*evaluator, error) {
	e := &evaluator{t: t, values: map[string]any{}, conds: map[string]bool{}}
	for name, p := range t.params {
		v, given := overrides[name]
		var val any
		if given {
			val = v
		} else if d, ok := p["Default"]; ok {
			val = d
		} else {
			return nil, fmt.Errorf("parameter %s has no default and no value", name)
		}
		typ, _ := p["Type"].(string)
		switch {
		case typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<"):
			s := fmt.Sprint(val)
			list := []any{}
			for _, x := range strings.Split(s, ",") {
				list = append(list, strings.TrimSpace(x))
			}
			val = list
		case typ == "Number":
			if s, ok := val.(string); ok {
				n, err := strconv.Atoi(s)
				if err != nil {
					return nil, fmt.Errorf("parameter %s: %w", name, err)
				}
				val = n
			}
		default:
			val = fmt.Sprint(val)
		}
		e.values[name] = val
	}
	for name := range t.conditions {
		b, err := e.condition(name, map[string]bool{})
		if err != nil {
			return nil, err
		}
		e.conds[name] = b
	}
	return e, nil
}

func (e *evaluator) condition(name string, seen map[string]bool) (bool, error) {
	if b, ok := e.conds[name]; ok {
		return b, nil
	}
	if seen[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	seen[name] = true
	v, err := e.eval(e.t.conditions[name])
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean: %v", name, v)
	}
	e.conds[name] = b
	return b, nil
}

func (e *evaluator) ref(name string) any {
	if v, ok := e.values[name]; ok {
		return v
	}
	if name == "AWS::NoValue" {
		return noValue
	}
	if pseudoParams[name] {
		return "{" + name + "}"
	}
	return "{Ref:" + name + "}"
}

func (e *evaluator) eval(v any) (any, error) {
	switch tv := v.(type) {
	case map[string]any:
		if len(tv) == 1 {
			for k, arg := range tv {
				if r, ok, err := e.intrinsic(k, arg); ok {
					return r, err
				}
			}
		}
		out := map[string]any{}
		for k, x := range tv {
			r, err := e.eval(x)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for _, x := range tv {
			r, err := e.eval(x)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) intrinsic(fn string, arg any) (any, bool, error) {
	args := func() ([]any, error) {
		a, ok := arg.([]any)
		if !ok {
			return nil, fmt.Errorf("%s takes a list", fn)
		}
		out := make([]any, len(a))
		for i, x := range a {
			r, err := e.eval(x)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	switch fn {
	case "Ref":
		return e.ref(fmt.Sprint(arg)), true, nil
	case "Condition":
		b, err := e.condition(fmt.Sprint(arg), map[string]bool{})
		return b, true, err
	case "Fn::GetAtt":
		a := asSlice(arg)
		return fmt.Sprintf("{GetAtt:%v.%v}", a[0], a[1]), true, nil
	case "Fn::If":
		a := asSlice(arg)
		b, err := e.condition(fmt.Sprint(a[0]), map[string]bool{})
		if err != nil {
			return nil, true, err
		}
		if b {
			r, err := e.eval(a[1])
			return r, true, err
		}
		r, err := e.eval(a[2])
		return r, true, err
	case "Fn::Equals":
		a, err := args()
		if err != nil || len(a) != 2 {
			return nil, true, fmt.Errorf("Equals: %v", err)
		}
		return fmt.Sprint(a[0]) == fmt.Sprint(a[1]), true, nil
	case "Fn::Not":
		a, err := args()
		if err != nil || len(a) != 1 {
			return nil, true, fmt.Errorf("Not: %v", err)
		}
		b, _ := a[0].(bool)
		return !b, true, nil
	case "Fn::And", "Fn::Or":
		a, err := args()
		if err != nil {
			return nil, true, err
		}
		acc := fn == "Fn::And"
		for _, x := range a {
			b, _ := x.(bool)
			if fn == "Fn::And" {
				acc = acc && b
			} else {
				acc = acc || b
			}
		}
		return acc, true, nil
	case "Fn::Join":
		a, err := args()
		if err != nil || len(a) != 2 {
			return nil, true, fmt.Errorf("Join: %v", err)
		}
		delim, ok := asSlice(arg)[0].(string)
		if !ok {
			return nil, true, fmt.Errorf("Join: the delimiter must be a literal string")
		}
		var parts []string
		for _, x := range asSlice(a[1]) {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, delim), true, nil
	case "Fn::Split":
		a, err := args()
		if err != nil || len(a) != 2 {
			return nil, true, fmt.Errorf("Split: %v", err)
		}
		var out []any
		for _, s := range strings.Split(fmt.Sprint(a[1]), fmt.Sprint(a[0])) {
			out = append(out, s)
		}
		return out, true, nil
	case "Fn::Select":
		a, err := args()
		if err != nil || len(a) != 2 {
			return nil, true, fmt.Errorf("Select: %v", err)
		}
		i, _ := a[0].(int)
		list := asSlice(a[1])
		if i < 0 || i >= len(list) {
			return nil, true, fmt.Errorf("Select: index %d out of range of %d", i, len(list))
		}
		return list[i], true, nil
	case "Fn::Sub":
		str, vars := arg, map[string]any{}
		if a, ok := arg.([]any); ok && len(a) == 2 {
			str = a[0]
			for name, val := range asMap(a[1]) {
				r, err := e.eval(val)
				if err != nil {
					return nil, true, err
				}
				vars[name] = r
			}
		}
		s, ok := str.(string)
		if !ok {
			return nil, true, fmt.Errorf("Sub: the string must be literal")
		}
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			if strings.HasPrefix(name, "!") {
				return "${" + name[1:] + "}"
			}
			if v, ok := vars[name]; ok {
				return fmt.Sprint(v)
			}
			if res, attr, isAttr := strings.Cut(name, "."); isAttr {
				return "{GetAtt:" + res + "." + attr + "}"
			}
			return fmt.Sprint(e.ref(name))
		})
		return out, true, nil
	}
	return nil, false, nil
}

// resolved returns the template with the intrinsics evaluated and the resources and outputs
// whose condition is false removed: what CloudFormation would create for these parameters.
func (e *evaluator) resolved() (map[string]any, error) {
	res := map[string]any{}
	for name, r := range e.t.resources {
		if c, ok := r["Condition"].(string); ok && !e.conds[c] {
			continue
		}
		out := map[string]any{}
		for k, v := range r {
			if k == "Condition" {
				continue
			}
			ev, err := e.eval(v)
			if err != nil {
				return nil, fmt.Errorf("Resources.%s.%s: %w", name, k, err)
			}
			out[k] = ev
		}
		res[name] = out
	}
	return map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Resources": res}, nil
}
