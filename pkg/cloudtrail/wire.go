package cloudtrail

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Reading a record. Decide runs on every record of the stream, so it reads the JSON itself, in
// one pass, instead of with encoding/json, which checks the whole text once and then decodes it
// again by reflection: most of a record (userIdentity, tlsDetails...) is fields no decision
// reads. The decoder below checks the syntax of every byte but keeps only the fields listed in
// record, as slices of the data (no copies), until Decide builds a Change.
//
// It must decide exactly as encoding/json into the structs Decide used before did (that
// decoder is kept in reference_test.go; FuzzDecideMatchesReference compares the two), so it
// follows encoding/json wherever a record could tell them apart:
//
//   - Syntax: what encoding/json accepts (RFC 8259; any byte but a control character in a
//     string, even invalid UTF-8; nesting at most 10000 deep), nothing else. On a syntax
//     error, Decide asks encoding/json where it is, so the Detail is as before.
//   - Keys are unescaped, then matched exactly or else case-insensitively with Unicode
//     folding ("SOURCE" and "ſource" are source), as encoding/json matches struct fields.
//   - Of duplicate keys the last wins. An object field (requestParameters, responseElements,
//     an import event's detail) is replaced by each occurrence; an API call's detail is
//     merged across occurrences and reset by a null (encoding/json decoded it into one
//     *detail), and one occurrence of a wrong type is enough to reject it.
//   - Escapes are decoded as encoding/json decodes them (a string with escapes is the only
//     thing the decoder copies).
//
// Leaf fields never fail on a type mismatch: they note what JSON type they saw (presence), and
// Decide looks at them in its own order and names the exact field that is wrong.

// record is what Decide reads of one record.
type record struct {
	source, detailType, account, region field
	id, time                            field // import events only
	api                                 apiDetail
	// apiSeen: detail was an object (and no null came after it); apiWrongType: some value
	// of detail was neither an object nor null.
	apiSeen, apiWrongType bool
	job                   jobDetail // detail again, read as an import event's
}

// apiDetail is detail as an "AWS API Call via CloudTrail" has it: the CloudTrail record.
type apiDetail struct {
	eventSource, eventName, eventID, eventTime, errorCode field
	params                                                requestParameters
	response                                              responseElements
}

type requestParameters struct {
	p                         presence
	datastoreID, resourceType field
}

type responseElements struct {
	p          presence
	statusCode status
}

// jobDetail is detail as an import job event has it.
type jobDetail struct {
	p                                         presence
	datastoreID, jobID, jobStatus, submitTime field
}

// The keys each object is searched for. Within a list no two names fold alike, so a key
// matches at most one of them.
var (
	envelopeKeys = []string{"source", "detail-type", "account", "region", "detail", "id", "time"}
	detailKeys   = []string{
		"eventSource", "eventName", "eventID", "eventTime", "errorCode", "requestParameters", "responseElements", // API call
		"datastoreId", "jobId", "jobStatus", "submitTime", // import job event
	}
	paramsKeys   = []string{"datastoreId", "resourceType"}
	responseKeys = []string{"statusCode"}
)

// presence is what a field held, judged by its JSON type only.
type presence uint8

const (
	absent    presence = iota // no such key, or null
	present                   // the expected JSON type
	wrongType                 // any other JSON type
)

// field is a value Decide wants as a JSON string.
type field struct {
	p presence
	s []byte // the string, unescaped; a slice of the data unless it had escapes
}

// status is an HTTP status code: a JSON number. A number that is not an integer from 100 to
// 599 is present but not valid; a string, even "201", is the wrong type.
type status struct {
	p     presence
	code  int
	valid bool
}

// decodeRecord reads data into r. It reports false if data is not valid JSON.
func decodeRecord(data []byte, r *record) bool {
	d := decoder{data: data}
	d.space()
	if d.peek() != '{' || !d.envelope(r) {
		return false
	}
	d.space()
	return d.pos == len(data)
}

// decoder reads JSON from data, checking its syntax as it goes. Every method that reads a
// value starts at the value's first byte and reports false on a syntax error.
type decoder struct {
	data  []byte
	pos   int
	depth int // arrays and objects open at pos
}

// maxDepth is encoding/json's limit on nesting; deeper is a syntax error there.
const maxDepth = 10000

func (d *decoder) envelope(r *record) bool {
	return d.object(func(k key) bool {
		switch match(k, envelopeKeys) {
		case "source":
			return d.stringField(&r.source)
		case "detail-type":
			return d.stringField(&r.detailType)
		case "account":
			return d.stringField(&r.account)
		case "region":
			return d.stringField(&r.region)
		case "id":
			return d.stringField(&r.id)
		case "time":
			return d.stringField(&r.time)
		case "detail":
			return d.detail(r)
		}
		return d.skip()
	})
}

// detail reads one occurrence of detail, both as an API call's and as an import event's: which
// one it is depends on detail-type, which may come later.
func (d *decoder) detail(r *record) bool {
	r.job = jobDetail{}
	switch d.peek() {
	case '{':
	case 'n':
		r.api, r.apiSeen = apiDetail{}, false
		return d.literal("null")
	default:
		r.apiWrongType, r.job.p = true, wrongType
		return d.skip()
	}
	r.apiSeen, r.job.p = true, present
	api, job := &r.api, &r.job
	return d.object(func(k key) bool {
		switch match(k, detailKeys) {
		case "eventSource":
			return d.stringField(&api.eventSource)
		case "eventName":
			return d.stringField(&api.eventName)
		case "eventID":
			return d.stringField(&api.eventID)
		case "eventTime":
			return d.stringField(&api.eventTime)
		case "errorCode":
			return d.stringField(&api.errorCode)
		case "requestParameters":
			p := &api.params
			*p = requestParameters{}
			return d.objectField(&p.p, func(k key) bool {
				switch match(k, paramsKeys) {
				case "datastoreId":
					return d.stringField(&p.datastoreID)
				case "resourceType":
					return d.stringField(&p.resourceType)
				}
				return d.skip()
			})
		case "responseElements":
			re := &api.response
			*re = responseElements{}
			return d.objectField(&re.p, func(k key) bool {
				if match(k, responseKeys) == "statusCode" {
					return d.statusField(&re.statusCode)
				}
				return d.skip()
			})
		case "datastoreId":
			return d.stringField(&job.datastoreID)
		case "jobId":
			return d.stringField(&job.jobID)
		case "jobStatus":
			return d.stringField(&job.jobStatus)
		case "submitTime":
			return d.stringField(&job.submitTime)
		}
		return d.skip()
	})
}

// stringField reads a value that should be a string into f.
func (d *decoder) stringField(f *field) bool {
	*f = field{}
	switch d.peek() {
	case '"':
		quoted, escaped, ok := d.str()
		if !ok {
			return false
		}
		f.p, f.s = present, unquote(quoted, escaped)
		return true
	case 'n':
		return d.literal("null")
	}
	f.p = wrongType
	return d.skip()
}

// statusField reads a value that should be an HTTP status code into st. Only the digits are
// looked at, as the three bytes of a code: 201.0 or 2.01e2 is a number but no status code.
func (d *decoder) statusField(st *status) bool {
	*st = status{}
	switch c := d.peek(); {
	case c == '-' || isDigit(c):
		b, ok := d.number()
		st.p = present
		if len(b) == 3 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) {
			st.code = int(b[0]-'0')*100 + int(b[1]-'0')*10 + int(b[2]-'0')
			st.valid = st.code >= 100 && st.code <= 599
		}
		return ok
	case c == 'n':
		return d.literal("null")
	}
	st.p = wrongType
	return d.skip()
}

// objectField reads a value that should be an object, noting its type in p and handing each
// member of an object to member.
func (d *decoder) objectField(p *presence, member func(key) bool) bool {
	switch d.peek() {
	case '{':
		*p = present
		return d.object(member)
	case 'n':
		*p = absent
		return d.literal("null")
	}
	*p = wrongType
	return d.skip()
}

// key is an object key as it is in the data: quoted, and escaped or not.
type key struct {
	quoted  []byte
	escaped bool
}

// match returns the name in names that k stands for, or "". As encoding/json matches keys to
// struct fields: an exact match, or else a match under Unicode case folding (bytes.EqualFold).
func match(k key, names []string) string {
	s := k.quoted[1 : len(k.quoted)-1]
	if k.escaped {
		var buf [64]byte // any key that can match a name fits; a longer one goes to the heap
		s = unescape(buf[:0], s)
	}
	for _, n := range names {
		if string(s) == n {
			return n
		}
	}
	// Most keys of a record match no name. The names are ASCII, so an ASCII key can only
	// fold to a name of its length; a key with other characters (K, ſ) may be longer.
	ascii := isASCII(s)
	for _, n := range names {
		if (len(s) == len(n) || !ascii && len(s) > len(n)) && bytes.EqualFold(s, []byte(n)) {
			return n
		}
	}
	return ""
}

// unquote returns the content of the JSON string quoted. Without escapes that is the bytes
// between the quotes, as they are (encoding/json keeps invalid UTF-8 there too).
func unquote(quoted []byte, escaped bool) []byte {
	s := quoted[1 : len(quoted)-1 : len(quoted)-1]
	if !escaped {
		return s
	}
	return unescape(make([]byte, 0, len(s)), s)
}

// unescape appends to dst the string s (the content of a JSON string that str accepted, so its
// escapes are well formed) with its escapes decoded as encoding/json decodes them: a \u pair
// of UTF-16 surrogates is one character; a lone surrogate, and any byte that is not part of a
// UTF-8 character, is U+FFFD.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && s[i+1] == 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				// Only with the escape right after it does a surrogate make a character.
				pair := utf8.RuneError
				if len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
					pair = utf16.DecodeRune(r, hex4(s[i+2:]))
				}
				if pair != utf8.RuneError {
					i += 6
				}
				r = pair
			}
			dst = utf8.AppendRune(dst, r)
		case c == '\\':
			dst = append(dst, escapes[s[i+1]])
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:]) // RuneError for a byte that is not UTF-8
			dst = utf8.AppendRune(dst, r)
			i += n
		}
	}
	return dst
}

// hex4 is the value of the four hex digits at the start of s.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		r = r<<4 | rune(c)
	}
	return r
}

// escapes maps the letter of a one-letter escape to the byte it stands for.
var escapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// skip reads any value and keeps nothing.
func (d *decoder) skip() bool {
	switch c := d.peek(); {
	case c == '{':
		return d.object(func(key) bool { return d.skip() })
	case c == '[':
		return d.array()
	case c == '"':
		_, _, ok := d.str()
		return ok
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || isDigit(c):
		_, ok := d.number()
		return ok
	}
	return false
}

// object reads an object, handing each member to member with pos at its value; member must
// read the value.
func (d *decoder) object(member func(key) bool) bool {
	if !d.open() {
		return false
	}
	d.space()
	if d.peek() == '}' {
		d.pos++
		return d.end()
	}
	for {
		if d.peek() != '"' {
			return false
		}
		quoted, escaped, ok := d.str()
		if !ok {
			return false
		}
		d.space()
		if d.next() != ':' {
			return false
		}
		d.space()
		if !member(key{quoted, escaped}) {
			return false
		}
		d.space()
		switch d.next() {
		case ',':
			d.space()
		case '}':
			return d.end()
		default:
			return false
		}
	}
}

func (d *decoder) array() bool {
	if !d.open() {
		return false
	}
	d.space()
	if d.peek() == ']' {
		d.pos++
		return d.end()
	}
	for {
		if !d.skip() {
			return false
		}
		d.space()
		switch d.next() {
		case ',':
			d.space()
		case ']':
			return d.end()
		default:
			return false
		}
	}
}

// open consumes the '{' or '[' at pos.
func (d *decoder) open() bool {
	d.pos++
	d.depth++
	return d.depth <= maxDepth
}

// end notes that the '}' or ']' just read closed a container.
func (d *decoder) end() bool {
	d.depth--
	return true
}

// str reads a string and returns it with its quotes, and whether it has escapes.
func (d *decoder) str() (quoted []byte, escaped, ok bool) {
	b := d.data
	for i := d.pos + 1; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		switch {
		case c == '"':
			quoted = b[d.pos : i+1]
			d.pos = i + 1
			return quoted, escaped, true
		case c < 0x20: // a control character must be escaped
			return nil, false, false
		}
		escaped = true
		i++
		if i == len(b) {
			return nil, false, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(b)-i <= 4 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
				return nil, false, false
			}
			i += 4
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

// number reads a number and returns its bytes: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() ([]byte, bool) {
	b, i := d.data, d.pos
	digits := func() bool {
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++ // no digits may follow a leading zero; the caller finds them misplaced
	case !digits():
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	n := b[d.pos:i]
	d.pos = i
	return n, true
}

// literal reads true, false or null (word).
func (d *decoder) literal(word string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

// space skips the blanks JSON allows between tokens.
func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the byte at pos, or 0 at the end (0 is no valid byte there either).
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// next returns the byte at pos and moves past it, or returns 0 at the end.
func (d *decoder) next() byte {
	if d.pos < len(d.data) {
		d.pos++
		return d.data[d.pos-1]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
