package fhir

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// instantFormat is how the client writes times into a query: a FHIR instant in UTC with
// milliseconds, the precision of meta.lastUpdated on HealthLake.
const instantFormat = "2006-01-02T15:04:05.000Z"

// Client searches one HealthLake (or compatible) endpoint. It is safe for concurrent use.
type Client struct {
	cfg  Config
	ep   endpoint
	http *http.Client
	now  func() time.Time // for Retry-After dates; replaced in tests
	met  *metrics
	// retry is the backoff between the attempts of one page.
	retry retry.Policy
}

// New returns a Client for cfg, or the error of cfg.Validate.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fhir config: %w", err)
	}
	cfg = cfg.withDefaults()
	met, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	ep, _ := parseEndpoint(cfg.Endpoint)
	// A copy of the caller's client that never follows redirects: a 3xx to another host must
	// not receive a signed request, and the caller's client stays untouched.
	hc := *cfg.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{cfg: cfg, ep: ep, http: &hc, now: cfg.Clock.Now, met: met,
		retry: retry.Policy{Base: cfg.BaseBackoff, Max: cfg.MaxBackoff, MaxAttempts: cfg.MaxAttempts, Clock: cfg.Clock, Rand: cfg.Rand}}, nil
}

// Search reads every resource of resourceType in datastoreID whose meta.lastUpdated is in
// [from, to) (at millisecond precision), following next links, and calls visit once per page
// in order. It returns the first error of a request, of a page, or of visit (unchanged, so
// callers can match their own errors). Pages already visited stay visited: a caller that
// fails a window after an error re-reads it whole and dedups. Errors name their class (see
// Reason); a page may hold the same (id, version) twice (see Page).
func (c *Client) Search(ctx context.Context, datastoreID, resourceType string, from, to time.Time, visit func(Page) error) error {
	q, err := rangeQuery(datastoreID, resourceType, from, to)
	if err != nil {
		return err
	}
	q.Set("_count", strconv.Itoa(c.cfg.PageSize))
	q.Set("_sort", "_lastUpdated")
	first := c.url(datastoreID, resourceType, q)
	return c.walk(ctx, "search", datastoreID, first, func(n int, body []byte) (string, error) {
		p, b, err := decodeSearchPage(body, resourceType, n)
		if err != nil {
			return "", err
		}
		return b.next(), visit(p)
	})
}

// rangeQuery validates a search's target and range and returns its _lastUpdated bounds.
// lastUpdated has millisecond precision: rounding from down and to up keeps every resource in
// [from, to) inside the query.
func rangeQuery(datastoreID, resourceType string, from, to time.Time) (url.Values, error) {
	if err := validateTarget(datastoreID, resourceType); err != nil {
		return nil, err
	}
	if err := validRange(from, to); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_lastUpdated", "ge"+from.UTC().Truncate(time.Millisecond).Format(instantFormat))
	q.Add("_lastUpdated", "lt"+ceilMillisecond(to).UTC().Format(instantFormat))
	return q, nil
}

func validRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return permanentf(ErrInvalidRange, "from %s, to %s", from.UTC().Format(instantFormat), to.UTC().Format(instantFormat))
	}
	return nil
}

func ceilMillisecond(t time.Time) time.Time {
	if c := t.Truncate(time.Millisecond); c.Before(t) {
		return c.Add(time.Millisecond)
	}
	return t
}

// validateTarget checks again what the record decoder checked: these values go into a URL.
func validateTarget(datastoreID, resourceType string) error {
	if !datastorePattern.MatchString(datastoreID) {
		return permanent(ErrInvalidDatastoreID)
	}
	if !resourceTypePattern.MatchString(resourceType) {
		return permanent(ErrInvalidResourceType)
	}
	return nil
}

func (c *Client) basePath(datastoreID string) string {
	return c.ep.prefix + datastoreID + c.ep.suffix
}

func (c *Client) url(datastoreID, rel string, q url.Values) *url.URL {
	return &url.URL{Scheme: c.ep.scheme, Host: c.ep.host, Path: c.basePath(datastoreID) + rel, RawQuery: q.Encode()}
}

// walk requests first and then every next link, handing each body to page, which decodes it,
// calls the visitor and returns the next link to follow ("" ends the walk).
func (c *Client) walk(ctx context.Context, op, datastoreID string, first *url.URL, page func(n int, body []byte) (string, error)) error {
	seen := make(map[[sha256.Size]byte]struct{})
	u := first
	for n := 1; ; n++ {
		if n > c.cfg.MaxPages {
			return permanentf(ErrTooManyPages, "more than %d", c.cfg.MaxPages)
		}
		key := sha256.Sum256([]byte(u.String()))
		if _, dup := seen[key]; dup {
			return permanentf(ErrNextLinkLoop, "page %d", n)
		}
		seen[key] = struct{}{}

		body, err := c.get(ctx, op, u)
		if err != nil {
			return err
		}
		next, err := page(n, body)
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		if u, err = c.checkNext(datastoreID, u, next); err != nil {
			return err
		}
	}
}

// checkNext resolves a next link against the page it came from and accepts it only under
// the endpoint's scheme, host and the datastore's base path. The link text never goes into
// the error: it may carry search values.
func (c *Client) checkNext(datastoreID string, current *url.URL, next string) (*url.URL, error) {
	ref, err := url.Parse(next)
	if err != nil {
		return nil, permanentf(ErrForeignNextLink, "unparsable")
	}
	u := current.ResolveReference(ref)
	switch {
	case u.Scheme != c.ep.scheme:
		return nil, permanentf(ErrForeignNextLink, "scheme differs")
	case canonicalHost(u.Scheme, u.Host) != c.ep.host:
		return nil, permanentf(ErrForeignNextLink, "host differs")
	case u.User != nil || u.Opaque != "":
		return nil, permanentf(ErrForeignNextLink, "user info or opaque URL")
	}
	if !underBase(u, c.basePath(datastoreID)) {
		return nil, permanentf(ErrForeignNextLink, "path outside the datastore's base path")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// underBase reports whether u's path lies below base as written: no dot or empty segments and
// no percent-escapes, which a server could decode into a path outside base.
func underBase(u *url.URL, base string) bool {
	p := u.Path
	if !strings.HasPrefix(p, base) || strings.Contains(u.EscapedPath(), "%") {
		return false
	}
	clean := path.Clean(p)
	return clean == p || clean+"/" == p
}
