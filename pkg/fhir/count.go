package fhir

import (
	"context"
	"errors"
	"time"
)

// Count asks how many resources of resourceType in datastoreID have meta.lastUpdated in
// [from, to) (at millisecond precision, as Search), with one count-only request (see
// CountMode), and returns the Bundle's total.
//
// ok is false, with no error, when the server did not count: the answer has no total, or it
// holds matching entries (a server that ignores an unknown _summary, as HealthLake does by
// default with handling=lenient, answers with a normal page), or the server says the count
// parameter is not supported (ErrUnsupported). The caller then reads the range in full. The
// request is validated, retried and its errors classified exactly as a Search page.
func (c *Client) Count(ctx context.Context, datastoreID, resourceType string, from, to time.Time) (n int, ok bool, err error) {
	q, err := rangeQuery(datastoreID, resourceType, from, to)
	if err != nil {
		return 0, false, err
	}
	switch c.cfg.CountMode {
	case CountZero:
		q.Set("_count", "0")
	case CountTotalAccurate:
		q.Set("_total", "accurate")
		q.Set("_count", "0")
	default:
		q.Set("_summary", "count")
	}
	body, err := c.get(ctx, "count", c.url(datastoreID, resourceType, q))
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			return 0, false, nil
		}
		return 0, false, err
	}
	p, b, err := decodeSearchPage(body, resourceType, 1)
	if err != nil {
		return 0, false, err
	}
	if !b.hasTotal || len(p.Resources) > 0 {
		return 0, false, nil
	}
	return b.total, true, nil
}
