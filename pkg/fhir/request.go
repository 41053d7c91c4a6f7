package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

const (
	maxIssueCodes    = 5
	maxErrorBodyRead = 64 << 10 // of an error response, to find issue codes and reuse the connection
	maxRetryAfter    = time.Hour
)

var issueCodePattern = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)

// get fetches one page, retrying what may succeed later, and returns its body.
func (c *Client) get(ctx context.Context, op string, u *url.URL) ([]byte, error) {
	var body []byte
	attempts := 0
	err := c.retry.Do(ctx, func(ctx context.Context, attempt int) error {
		b, retryAfter, err := c.attempt(ctx, op, u)
		attempts = attempt
		if err == nil {
			body = b
			return nil
		}
		var se *StatusError
		if errors.As(err, &se) {
			se.Attempts = attempt
		}
		return retry.After(err, retryAfter)
	})
	var se *StatusError
	switch {
	case err == nil:
		return body, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("fhir: %w", ctx.Err())
	case errors.Is(err, retry.ErrExhausted) && !errors.As(err, &se):
		// A StatusError counts its attempts itself.
		return nil, fmt.Errorf("%w (after %d attempts)", err, attempts)
	}
	// Permanent, or the next attempt was due after the deadline: Do's error says which.
	return nil, err
}

// attempt makes one request. It returns the body of a 2xx JSON response, or an error and the
// Retry-After the response asked for (0 if none).
func (c *Client) attempt(ctx context.Context, op string, u *url.URL) (body []byte, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		// The error would quote the URL; it cannot happen for a URL this package built.
		return nil, 0, permanent(errors.New("fhir: cannot build the request"))
	}
	req.Header.Set("Accept", "application/fhir+json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(ctx, op, 0, start)
		// A *url.Error quotes the URL, which carries search values; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("fhir: %w", &transportError{err})
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		body, err = c.readPage(resp)
		c.observe(ctx, op, code, start)
		if err != nil {
			return nil, 0, fmt.Errorf("fhir: %w", err)
		}
		return body, 0, nil
	default:
		issues := issueCodes(resp)
		c.observe(ctx, op, code, start)
		se := &StatusError{Op: op, StatusCode: code, Retryable: retryableStatus(code), Attempts: 1, IssueCodes: issues}
		if se.Retryable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		}
		return nil, retryAfter, se
	}
}

func (c *Client) observe(ctx context.Context, op string, status int, start time.Time) {
	d := time.Since(start)
	c.met.request(ctx, op, status, d)
	if c.cfg.OnRequest != nil {
		c.cfg.OnRequest(op, status, d)
	}
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// readPage checks the content type and reads at most MaxPageBytes. A read that fails midway
// is a network error and retried; a body over the limit is permanent.
func (c *Client) readPage(resp *http.Response) ([]byte, error) {
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, permanent(ErrNotJSON)
	}
	limit := c.cfg.MaxPageBytes
	if resp.ContentLength > limit {
		return nil, permanentf(ErrPageTooLarge, "%d bytes, limit %d", resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &transportError{fmt.Errorf("read body: %w", err)}
	}
	if int64(len(body)) > limit {
		return nil, permanentf(ErrPageTooLarge, "limit %d bytes", limit)
	}
	return body, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "application/fhir+json" ||
		(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// issueCodes reads the issue codes of an OperationOutcome error body, if it is one. Only the
// codes, which are FHIR code values, leave this function: diagnostics may quote PHI.
func issueCodes(resp *http.Response) []string {
	if !isJSON(resp.Header.Get("Content-Type")) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyRead))
		return nil
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Code string `json:"code"`
		} `json:"issue"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyRead))
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return nil
	}
	var codes []string
	for _, is := range oo.Issue {
		if len(codes) == maxIssueCodes {
			break
		}
		if issueCodePattern.MatchString(is.Code) {
			codes = append(codes, is.Code)
		}
	}
	return codes
}

// parseRetryAfter reads delay-seconds or an HTTP date; anything else, or a time in the past,
// is 0. Absurd values are capped so a broken header cannot park a shard.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
