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
	LastUpdated  time.Time
	Raw          json.RawMessage // the full resource JSON, unchanged; owned by the Resource
}

// Page is one searchset page.
type Page struct {
	Number    int // 1 for the first page
	Resources []Resource
	// Skipped counts entries left out: no resource, a resource of another type (such as an
	// OperationOutcome with search.mode "outcome"), a search.mode other than "match", or a
	// resource without a valid id, meta.versionId or meta.lastUpdated.
	Skipped int
}

// HistoryEntry is one version in a type-level history.
type HistoryEntry struct {
	ID          string
	VersionID   string // may be empty for a delete when the server gives no version
	LastUpdated time.Time
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
}

// bundle is the part of a Bundle the client reads.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Link         []bundleLink  `json:"link"`
	Entry        []bundleEntry `json:"entry"`
}

type bundleEntry struct {
	Resource json.RawMessage `json:"resource"`
	Search   *struct {
		Mode string `json:"mode"`
	} `json:"search"`
	Request  *entryRequest  `json:"request"`
	Response *entryResponse `json:"response"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string `json:"status"`
	Etag         string `json:"etag"`
	LastModified string `json:"lastModified"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

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

// resourceHead is the part of a resource the client reads.
type resourceHead struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
}

// A resource type name and a datastore id, checked before they go into a URL.
var (
	resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	datastorePattern    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func decodeBundle(body []byte, wantType string) (*bundle, error) {
	var b bundle
	if err := json.Unmarshal(body, &b); err != nil {
		// The json error may quote part of the body; keep only its kind.
		return nil, permanentf(ErrMalformedBundle, "invalid JSON")
	}
	if b.ResourceType != "Bundle" {
		return nil, permanentf(ErrMalformedBundle, "resourceType is not Bundle")
	}
	if b.Type != wantType {
		return nil, permanentf(ErrMalformedBundle, "bundle type is not %s", wantType)
	}
	return &b, nil
}

// next returns the URL of the bundle's "next" link, or "".
func (b *bundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

// parseResource reads the head of raw and checks it is a complete resource of type rt.
func parseResource(raw json.RawMessage, rt string) (Resource, bool) {
	var h resourceHead
	if len(raw) == 0 || json.Unmarshal(raw, &h) != nil {
		return Resource{}, false
	}
	if h.ResourceType != rt || !validID(h.ID) || !validID(h.Meta.VersionID) {
		return Resource{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, h.Meta.LastUpdated)
	if err != nil {
		return Resource{}, false
	}
	return Resource{ResourceType: h.ResourceType, ID: h.ID, VersionID: h.Meta.VersionID, LastUpdated: t, Raw: raw}, true
}

func decodeSearchPage(body []byte, rt string, number int) (Page, *bundle, error) {
	b, err := decodeBundle(body, "searchset")
	if err != nil {
		return Page{}, nil, err
	}
	p := Page{Number: number, Resources: make([]Resource, 0, len(b.Entry))}
	for i := range b.Entry {
		e := &b.Entry[i]
		if e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match" {
			p.Skipped++
			continue
		}
		r, ok := parseResource(e.Resource, rt)
		if !ok {
			p.Skipped++
			continue
		}
		p.Resources = append(p.Resources, r)
	}
	return p, b, nil
}

func decodeHistoryPage(body []byte, rt string, number int) (HistoryPage, *bundle, error) {
	b, err := decodeBundle(body, "history")
	if err != nil {
		return HistoryPage{}, nil, err
	}
	p := HistoryPage{Number: number, Entries: make([]HistoryEntry, 0, len(b.Entry))}
	for i := range b.Entry {
		e := &b.Entry[i]
		method := ""
		if e.Request != nil {
			method = strings.ToUpper(e.Request.Method)
		}
		status := ""
		if e.Response != nil {
			status = e.Response.Status
		}
		if len(e.Resource) > 0 && string(e.Resource) != "null" {
			r, ok := parseResource(e.Resource, rt)
			if !ok {
				p.Skipped++
				continue
			}
			p.Entries = append(p.Entries, HistoryEntry{
				ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
				Deleted: method == "DELETE", Resource: &r,
			})
			continue
		}
		// No content: only a delete is meaningful. Its identity comes from request.url
		// ("Type/id"), its version from response.etag (W/"v") and its time from
		// response.lastModified.
		if method != "DELETE" && !strings.HasPrefix(status, "410") {
			p.Skipped++
			continue
		}
		he, ok := deleteEntry(e.Request, e.Response, rt)
		if !ok {
			p.Skipped++
			continue
		}
		p.Entries = append(p.Entries, he)
	}
	return p, b, nil
}

func deleteEntry(req *entryRequest, resp *entryResponse, rt string) (HistoryEntry, bool) {
	if req == nil || resp == nil {
		return HistoryEntry{}, false
	}
	// request.url is relative ("Observation/123", maybe with "/_history/2"); be lenient about
	// a leading slash or an absolute URL by reading the segments after the type.
	u := req.URL
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
	t, err := time.Parse(time.RFC3339Nano, resp.LastModified)
	if err != nil {
		return HistoryEntry{}, false
	}
	v := strings.TrimPrefix(resp.Etag, "W/")
	v = strings.Trim(v, `"`)
	if v != "" && !validID(v) {
		v = ""
	}
	return HistoryEntry{ID: id, VersionID: v, LastUpdated: t, Deleted: true}, true
}
