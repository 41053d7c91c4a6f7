package fhir

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// Resource is one resource from a page: the fields CDC needs, parsed, and the resource JSON
// exactly as the server sent it.
type Resource struct {
	ResourceType string
	ID           string
	VersionID    string
	LastUpdated  time.Time       // in UTC
	Raw          json.RawMessage // the full resource JSON, byte for byte; its own copy, not the page's buffer
}

// Page is one searchset page.
//
// The same (ID, VersionID) may appear twice on one page (a server paging by offset while
// writes arrive can repeat an entry); both stay in Resources, in the server's order, and the
// caller dedups. A resource updated during a walk may also appear again on a later page with
// its new version.
type Page struct {
	Number    int // 1 for the first page
	Resources []Resource
	// Skipped counts entries left out: no resource, a resource of another type (such as an
	// OperationOutcome with search.mode "outcome"), a search.mode other than "match", or a
	// resource without a valid id, meta.versionId or meta.lastUpdated.
	Skipped int
}

// HistoryEntry is one version in a history.
type HistoryEntry struct {
	ID          string
	VersionID   string    // may be empty for a delete when the server gives no version
	LastUpdated time.Time // in UTC
	// Deleted is true for a delete: request.method DELETE, or no resource and a response
	// status of 410.
	Deleted bool
	// Resource is the version's content; nil for a delete without content.
	Resource *Resource
}

// HistoryPage is one history page.
type HistoryPage struct {
	Number  int
	Entries []HistoryEntry
	Skipped int // entries without a usable id, version time or resource of the requested type
	// OutOfRange counts entries HistoryRange dropped because their time lies outside
	// [from, to); always 0 for History and InstanceHistory.
	OutOfRange int
}

// bundle is what the walk needs from a page besides its entries.
type bundle struct {
	nextURL  string
	total    int
	hasTotal bool
}

// next returns the URL of the bundle's "next" link, or "".
func (b *bundle) next() string { return b.nextURL }

// validID reports whether s is a FHIR R4 id, [A-Za-z0-9\-.]{1,64}; ids and version ids from
// the server outside it are not trusted downstream (dedup keys, events). A loop, not a regexp:
// it runs twice per entry.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// A resource type name and a datastore id, checked before they go into a URL.
var (
	resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	datastorePattern    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// decodeBundle reads a Bundle of wantType in one pass, calling entry for each element of
// "entry" (positioned at the element, which it must consume). Entries are decoded before the
// bundle's own resourceType and type are known (JSON keys come in any order); a bundle that
// turns out wrong is an error and its entries are discarded by the caller.
func decodeBundle(body []byte, wantType string, entry func(s *scanner) error) (*bundle, error) {
	s := &scanner{data: body}
	var b bundle
	var rtOK, typeOK bool
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "resourceType":
			v, ok, err := s.stringValue()
			rtOK = ok && v == "Bundle"
			return err
		case "type":
			v, ok, err := s.stringValue()
			typeOK = ok && v == wantType
			return err
		case "total":
			n, ok, err := s.intValue()
			b.total, b.hasTotal = n, ok
			return err
		case "link":
			if s.ws() == 'n' {
				return s.literal("null")
			}
			return s.array(func() error { return readLink(s, &b) })
		case "entry":
			if s.ws() == 'n' {
				return s.literal("null")
			}
			return s.array(func() error {
				if s.ws() != '{' {
					return errSyntax // an entry must be an object
				}
				return entry(s)
			})
		default:
			return s.skip()
		}
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		// Never the position or the bytes: they may point into PHI.
		return nil, permanentf(ErrMalformedBundle, "invalid JSON or unexpected structure")
	}
	if !rtOK {
		return nil, permanentf(ErrMalformedBundle, "resourceType is not Bundle")
	}
	if !typeOK {
		return nil, permanentf(ErrMalformedBundle, "bundle type is not %s", wantType)
	}
	return &b, nil
}

func readLink(s *scanner, b *bundle) error {
	var rel, u string
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "relation":
			rel, _, err = s.stringValue()
		case "url":
			u, _, err = s.stringValue()
		default:
			err = s.skip()
		}
		return err
	})
	if err == nil && rel == "next" && b.nextURL == "" {
		b.nextURL = u
	}
	return err
}

// head is the part of a resource the client reads, with the resource's byte span.
type head struct {
	typeOK             bool
	id, versionID      string
	lastUpdated        []byte // unparsed, pointing into the page
	lastUpdatedEscaped bool
	start, end         int
	present, isObject  bool
}

// readResource reads the value of an entry's "resource" key: null (present false), a
// non-object (present, isObject false) or an object whose head fields it keeps.
func readResource(s *scanner, rt string) (head, error) {
	var h head
	switch s.ws() {
	case 'n':
		return h, s.literal("null")
	case '{':
	default:
		h.present = true
		return h, s.skip()
	}
	h.present, h.isObject = true, true
	h.start = s.pos
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "resourceType":
			h.typeOK, err = stringEquals(s, rt)
		case "id":
			h.id, _, err = s.stringValue()
		case "meta":
			if s.ws() != '{' {
				h.versionID, h.lastUpdated = "", nil
				return s.skip()
			}
			err = s.object(func(key []byte) error {
				var err error
				switch string(key) {
				case "versionId":
					h.versionID, _, err = s.stringValue()
				case "lastUpdated":
					h.lastUpdated, h.lastUpdatedEscaped, err = rawString(s)
				default:
					err = s.skip()
				}
				return err
			})
		default:
			err = s.skip()
		}
		return err
	})
	h.end = s.pos
	return h, err
}

// stringEquals reads a value and reports whether it is the string want, without allocating.
func stringEquals(s *scanner, want string) (bool, error) {
	if s.ws() != '"' {
		return false, s.skip()
	}
	raw, escaped, err := s.str()
	if err != nil || !escaped {
		return err == nil && string(raw) == want, err
	}
	v, err := unescape(s.data[s.pos-len(raw)-2 : s.pos])
	return err == nil && v == want, err
}

// modeIsMatch reads search.mode: "match" or "" is a match; another code, or a value that is
// not a string, is not.
func modeIsMatch(s *scanner) (bool, error) {
	raw, escaped, err := rawString(s)
	if err != nil || raw == nil {
		return false, err
	}
	if escaped {
		v, err := unescape(s.data[s.pos-len(raw)-2 : s.pos])
		return v == "" || v == "match", err
	}
	return len(raw) == 0 || string(raw) == "match", nil
}

// rawString reads a string value's bytes (nil for another type).
func rawString(s *scanner) ([]byte, bool, error) {
	if s.ws() != '"' {
		return nil, false, s.skip()
	}
	return s.str()
}

// resource checks h is a complete resource of the requested type and builds it, copying its
// bytes out of the page.
func (h *head) resource(data []byte, rt string) (Resource, bool) {
	if !h.isObject || !h.typeOK || !validID(h.id) || !validID(h.versionID) {
		return Resource{}, false
	}
	t, ok := parseInstant(h.lastUpdated, h.lastUpdatedEscaped)
	if !ok {
		return Resource{}, false
	}
	raw := make(json.RawMessage, h.end-h.start)
	copy(raw, data[h.start:h.end])
	return Resource{ResourceType: rt, ID: h.id, VersionID: h.versionID, LastUpdated: t, Raw: raw}, true
}

// parseInstant reads a FHIR instant. The usual shape, UTC with up to nine fraction digits, is
// parsed here without allocating; anything else goes to time.Parse.
func parseInstant(b []byte, escaped bool) (time.Time, bool) {
	if b == nil {
		return time.Time{}, false
	}
	if !escaped {
		if t, ok := fastInstant(b); ok {
			return t, true
		}
	}
	v := string(b)
	if escaped {
		var err error
		if v, err = unescape([]byte(`"` + v + `"`)); err != nil {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// fastInstant parses exactly YYYY-MM-DDThh:mm:ss[.f{1,9}]Z; ok is false for any other text,
// which the caller hands to time.Parse (so this never decides a value is invalid).
func fastInstant(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if rest := b[19 : len(b)-1]; len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		f, ok := num(20, len(rest)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(rest) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func decodeSearchPage(body []byte, rt string, number int) (Page, *bundle, error) {
	p := Page{Number: number, Resources: make([]Resource, 0, 16)}
	b, err := decodeBundle(body, "searchset", func(s *scanner) error {
		var h head
		match := true // search.mode is optional; absent means a match
		err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "resource":
				h, err = readResource(s, rt)
			case "search":
				err = readObjectOrNull(s, func(key []byte) error {
					var err error
					if string(key) == "mode" {
						match, err = modeIsMatch(s)
					} else {
						err = s.skip()
					}
					return err
				})
			default:
				err = s.skip()
			}
			return err
		})
		if err != nil {
			return err
		}
		if !match {
			p.Skipped++
			return nil
		}
		r, ok := h.resource(s.data, rt)
		if !ok {
			p.Skipped++
			return nil
		}
		p.Resources = append(p.Resources, r)
		return nil
	})
	if err != nil {
		return Page{}, nil, err
	}
	return p, b, nil
}

// readObjectOrNull reads an object with each, or a null.
func readObjectOrNull(s *scanner, each func(key []byte) error) error {
	if s.ws() == 'n' {
		return s.literal("null")
	}
	return s.object(each)
}

type entryRequest struct {
	method, url string
}

type entryResponse struct {
	status, etag, lastModified string
}

func decodeHistoryPage(body []byte, rt string, number int) (HistoryPage, *bundle, error) {
	p := HistoryPage{Number: number, Entries: make([]HistoryEntry, 0, 16)}
	var contents []Resource // one backing array for the entries' Resource pointers
	var withContent []int   // withContent[k] is the entry whose content is contents[k]
	b, err := decodeBundle(body, "history", func(s *scanner) error {
		var h head
		var req *entryRequest
		var resp *entryResponse
		err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "resource":
				h, err = readResource(s, rt)
			case "request":
				req = &entryRequest{}
				err = readObjectOrNull(s, func(key []byte) error {
					var err error
					switch string(key) {
					case "method":
						req.method, _, err = s.stringValue()
					case "url":
						req.url, _, err = s.stringValue()
					default:
						err = s.skip()
					}
					return err
				})
			case "response":
				resp = &entryResponse{}
				err = readObjectOrNull(s, func(key []byte) error {
					var err error
					switch string(key) {
					case "status":
						resp.status, _, err = s.stringValue()
					case "etag":
						resp.etag, _, err = s.stringValue()
					case "lastModified":
						resp.lastModified, _, err = s.stringValue()
					default:
						err = s.skip()
					}
					return err
				})
			default:
				err = s.skip()
			}
			return err
		})
		if err != nil {
			return err
		}
		method, status := "", ""
		if req != nil {
			method = strings.ToUpper(req.method)
		}
		if resp != nil {
			status = resp.status
		}
		if h.present {
			r, ok := h.resource(s.data, rt)
			if !ok {
				p.Skipped++
				return nil
			}
			contents = append(contents, r)
			withContent = append(withContent, len(p.Entries))
			p.Entries = append(p.Entries, HistoryEntry{
				ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
				Deleted: method == "DELETE",
			})
			return nil
		}
		// No content: only a delete is meaningful. Its identity comes from request.url
		// ("Type/id"), its version from response.etag (W/"v") and its time from
		// response.lastModified.
		if method != "DELETE" && !strings.HasPrefix(status, "410") {
			p.Skipped++
			return nil
		}
		he, ok := deleteEntry(req, resp, rt)
		if !ok {
			p.Skipped++
			return nil
		}
		p.Entries = append(p.Entries, he)
		return nil
	})
	if err != nil {
		return HistoryPage{}, nil, err
	}
	// Point the entries with content at their resources only now: contents may have moved
	// while it grew.
	for k, i := range withContent {
		p.Entries[i].Resource = &contents[k]
	}
	return p, b, nil
}
func deleteEntry(req *entryRequest, resp *entryResponse, rt string) (HistoryEntry, bool) {
	if req == nil || resp == nil {
		return HistoryEntry{}, false
	}
	// request.url is relative ("Observation/123", maybe with "/_history/2"); be lenient about
	// a leading slash or an absolute URL by reading the segments after the type.
	u := req.url
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	segs := strings.Split(strings.Trim(u, "/"), "/")
	id := ""
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == rt {
			id = segs[i+1]
			break
		}
	}
	if !validID(id) {
		return HistoryEntry{}, false
	}
	t, ok := parseInstant([]byte(resp.lastModified), false)
	if !ok {
		return HistoryEntry{}, false
	}
	v := strings.TrimPrefix(resp.etag, "W/")
	v = strings.Trim(v, `"`)
	if v != "" && !validID(v) {
		v = ""
	}
	return HistoryEntry{ID: id, VersionID: v, LastUpdated: t, Deleted: true}, true
}
