package fhir

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
)

// DatastorePlaceholder marks where the datastore id goes in Config.Endpoint.
const DatastorePlaceholder = "{datastoreId}"

// Defaults for the zero values of Config.
const (
	DefaultPageSize     = 100 // also HealthLake's maximum _count
	DefaultMaxAttempts  = 8
	DefaultBaseBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultMaxPages     = 100_000
	DefaultMaxPageBytes = 32 << 20
	DefaultHTTPTimeout  = 60 * time.Second // per request, for the default HTTP client only
)

// CountMode is how Client.Count asks a server for the number of matches only. HealthLake's
// documentation names none of them (it documents _count up to 100, not _summary or _total);
// the FHIR R4 search page defines _summary=count and says _count=0 means the same.
type CountMode string

const (
	CountSummary       CountMode = "summary"        // _summary=count (the default): FHIR R4's count-only search
	CountZero          CountMode = "count-zero"     // _count=0: a page of no entries, with total
	CountTotalAccurate CountMode = "total-accurate" // _total=accurate&_count=0, for servers that estimate otherwise
)

// HistoryOrder is the order in which a server lists history entries. FHIR R4 says newest
// first; HealthLake does not document its order.
type HistoryOrder string

const (
	// HistoryOrderDetect (the default) learns the order from the entries' times as pages
	// arrive, and stops a HistoryRange walk early only once the times have shown one.
	HistoryOrderDetect      HistoryOrder = ""
	HistoryOrderNewestFirst HistoryOrder = "newest-first"
	HistoryOrderOldestFirst HistoryOrder = "oldest-first"
)

// Config configures a Client. Zero values mean the documented default.
type Config struct {
	// Endpoint is the FHIR base URL with DatastorePlaceholder in its path, e.g.
	// https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/
	// It must be http or https, hold the placeholder once, in the path, and have no user
	// info, query or fragment. A missing trailing slash is added.
	Endpoint string
	// HTTPClient sends the requests (wrap its transport with SigV4Transport for HealthLake).
	// Default: a client with DefaultHTTPTimeout. Redirects are never followed, whatever the
	// client's CheckRedirect says.
	HTTPClient *http.Client
	// PageSize is the _count of each search, 1..100. Default 100.
	PageSize int
	// MaxAttempts is the number of requests made for one page before giving up on a retryable
	// failure. Default 8; 1 means no retries.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the exponential backoff (full jitter) between attempts.
	// Default 200ms and 10s. A Retry-After longer than MaxBackoff is still honoured.
	BaseBackoff, MaxBackoff time.Duration
	// MaxPages ends a walk of next links with ErrTooManyPages. Default 100,000.
	MaxPages int
	// MaxPageBytes is the largest response body accepted (after content decoding). Default 32 MiB.
	MaxPageBytes int64
	// Clock is the time of the waits between attempts, of their deadline checks and of
	// Retry-After dates. Default clock.Real; tests inject a clocktest.Fake.
	Clock clock.Clock
	// Rand returns a number in [0, 1) for the jitter. Default math/rand/v2.Float64.
	Rand func() float64
	// CountMode selects the count request of Count. Default CountSummary.
	CountMode CountMode
	// HistoryOrder is the history order to assume before the entries show one; entries that
	// contradict it turn the early stop of HistoryRange off for the rest of that walk.
	// Default HistoryOrderDetect (assume nothing).
	HistoryOrder HistoryOrder
	// OnRequest, if set, is called after every HTTP attempt with the operation ("search",
	// "count", "history", "instance-history" or "vread"), the status code (0 when no
	// response arrived) and the attempt's duration. It must be cheap and safe for concurrent
	// use.
	OnRequest func(op string, status int, dur time.Duration)
	// MeterProvider gets the client's instruments (hlcdc.fhir.requests and
	// hlcdc.fhir.request.duration, recorded with each request's context). Default: none.
	MeterProvider metric.MeterProvider
}

// endpoint is a parsed Config.Endpoint: the datastore's base path is prefix + id + suffix.
type endpoint struct {
	scheme, host   string
	prefix, suffix string
}

func parseEndpoint(raw string) (endpoint, error) {
	if strings.Count(raw, DatastorePlaceholder) != 1 {
		return endpoint{}, fmt.Errorf("endpoint must contain %s exactly once", DatastorePlaceholder)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, errors.New("endpoint must be an http or https URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return endpoint{}, errors.New("endpoint has no host")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return endpoint{}, errors.New("endpoint must not have user info, a query or a fragment")
	}
	p := u.Path
	if strings.Count(p, DatastorePlaceholder) != 1 {
		return endpoint{}, fmt.Errorf("endpoint must have %s in its path", DatastorePlaceholder)
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	// A base path that is not already clean (//, ., ..) or needs escaping would make the
	// same-base-path check on next links compare two spellings of one path.
	if path.Clean(p)+"/" != p || strings.ContainsAny(p, "%?#;\\ ") {
		return endpoint{}, errors.New("endpoint path must be clean: no empty, . or .. segments, no escapes")
	}
	i := strings.Index(p, DatastorePlaceholder)
	return endpoint{
		scheme: u.Scheme,
		host:   canonicalHost(u.Scheme, u.Host),
		prefix: p[:i],
		suffix: p[i+len(DatastorePlaceholder):],
	}, nil
}

// canonicalHost lower-cases the host and drops the scheme's default port, so that
// "Example.com:443" and "example.com" compare equal for https.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return host
}

// Validate reports the first problem with c, or nil.
func (c Config) Validate() error {
	if _, err := parseEndpoint(c.Endpoint); err != nil {
		return err
	}
	switch {
	case c.PageSize < 0 || c.PageSize > 100:
		return errors.New("page size must be 1..100 (0 for the default)")
	case c.MaxAttempts < 0:
		return errors.New("max attempts must not be negative")
	case c.BaseBackoff < 0 || c.MaxBackoff < 0:
		return errors.New("backoff durations must not be negative")
	case c.BaseBackoff > 0 && c.MaxBackoff > 0 && c.MaxBackoff < c.BaseBackoff:
		return errors.New("max backoff must not be shorter than base backoff")
	case c.MaxPages < 0:
		return errors.New("max pages must not be negative")
	case c.MaxPageBytes < 0:
		return errors.New("max page bytes must not be negative")
	}
	switch c.CountMode {
	case "", CountSummary, CountZero, CountTotalAccurate:
	default:
		return fmt.Errorf("count mode must be %s, %s or %s", CountSummary, CountZero, CountTotalAccurate)
	}
	switch c.HistoryOrder {
	case HistoryOrderDetect, HistoryOrderNewestFirst, HistoryOrderOldestFirst:
	default:
		return fmt.Errorf("history order must be empty, %s or %s", HistoryOrderNewestFirst, HistoryOrderOldestFirst)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.BaseBackoff = cmp.Or(c.BaseBackoff, DefaultBaseBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, max(DefaultMaxBackoff, c.BaseBackoff))
	c.MaxPages = cmp.Or(c.MaxPages, DefaultMaxPages)
	c.MaxPageBytes = cmp.Or(c.MaxPageBytes, DefaultMaxPageBytes)
	c.CountMode = cmp.Or(c.CountMode, CountSummary)
	c.Clock = clock.Or(c.Clock)
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}
