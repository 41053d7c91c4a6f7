package fhir

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// History reads the type-level history of resourceType in datastoreID since the given time
// (inclusive, as FHIR's _since), following next links to the end, and calls visit once per
// page. It pages through everything written since `since`, however long ago — the open-ended
// read DESIGN.md forbids under load: use HistoryRange, which stops once the range is passed.
// (Not marked Deprecated yet only because pkg/pipeline still calls it and staticcheck runs on
// every package.)
func (c *Client) History(ctx context.Context, datastoreID, resourceType string, since time.Time, visit func(HistoryPage) error) error {
	if err := validateTarget(datastoreID, resourceType); err != nil {
		return err
	}
	if since.IsZero() {
		return permanentf(ErrInvalidRange, "since is unset")
	}
	q := url.Values{}
	q.Set("_since", since.UTC().Format(instantFormat))
	q.Set("_count", strconv.Itoa(c.cfg.PageSize))
	first := c.url(datastoreID, resourceType+"/_history", q)
	return c.walk(ctx, "history", datastoreID, first, func(n int, body []byte) (string, error) {
		p, b, err := decodeHistoryPage(body, resourceType, n)
		if err != nil {
			return "", err
		}
		return b.next(), visit(p)
	})
}

// HistoryRange reads the type-level history of resourceType in datastoreID for the versions
// (deletes included) whose time is in [from, to), at millisecond precision as Search. It asks
// for _since=from and calls visit once per page requested, with the entries outside [from, to)
// dropped (counted in OutOfRange) — also entries before from, which a server whose _since
// boundary is coarser than milliseconds may send.
//
// It stops paging as soon as the order of the entries makes it certain that nothing in range
// remains: listed newest first (FHIR's order), once a page reaches entries older than from;
// oldest first, once a page reaches entries at or after to. The order is learned from the
// entries (or assumed from Config.HistoryOrder until they contradict it); entries out of
// either order turn the early stop off, so a walk is never cut short on a guess. A server
// listing newest first still has to page through everything written since to, before it
// reaches the range: call it soon after the range ends.
//
// A server without type-level history (or that has history turned off for the type, as
// HealthLake allows) fails with ErrHistoryUnsupported.
func (c *Client) HistoryRange(ctx context.Context, datastoreID, resourceType string, from, to time.Time, visit func(HistoryPage) error) error {
	if err := validateTarget(datastoreID, resourceType); err != nil {
		return err
	}
	if err := validRange(from, to); err != nil {
		return err
	}
	lo, hi := from.UTC().Truncate(time.Millisecond), ceilMillisecond(to).UTC()
	q := url.Values{}
	q.Set("_since", lo.Format(instantFormat))
	q.Set("_count", strconv.Itoa(c.cfg.PageSize))
	first := c.url(datastoreID, resourceType+"/_history", q)
	o := orderTracker{assumed: c.cfg.HistoryOrder}
	return c.walk(ctx, "history", datastoreID, first, func(n int, body []byte) (string, error) {
		p, b, err := decodeHistoryPage(body, resourceType, n)
		if err != nil {
			return "", err
		}
		kept := p.Entries[:0]
		for _, e := range p.Entries {
			o.see(e.LastUpdated)
			if e.LastUpdated.Before(lo) || !e.LastUpdated.Before(hi) {
				p.OutOfRange++
				continue
			}
			kept = append(kept, e)
		}
		p.Entries = kept
		if err := visit(p); err != nil {
			return "", err
		}
		switch o.order() {
		case HistoryOrderNewestFirst:
			if o.seen && o.last.Before(lo) {
				return "", nil
			}
		case HistoryOrderOldestFirst:
			if o.seen && !o.last.Before(hi) {
				return "", nil
			}
		}
		return b.next(), nil
	})
}

// orderTracker learns the order of a walk's entry times.
type orderTracker struct {
	assumed     HistoryOrder
	last        time.Time
	seen        bool
	rises, dips int
}

func (o *orderTracker) see(t time.Time) {
	if o.seen {
		switch {
		case t.After(o.last):
			o.rises++
		case t.Before(o.last):
			o.dips++
		}
	}
	o.last, o.seen = t, true
}

// order is the order the entries so far show, or the assumed one while they show none;
// HistoryOrderDetect (unknown) once they show both.
func (o *orderTracker) order() HistoryOrder {
	switch {
	case o.rises > 0 && o.dips > 0:
		return HistoryOrderDetect
	case o.dips > 0:
		if o.assumed == HistoryOrderOldestFirst {
			return HistoryOrderDetect
		}
		return HistoryOrderNewestFirst
	case o.rises > 0:
		if o.assumed == HistoryOrderNewestFirst {
			return HistoryOrderDetect
		}
		return HistoryOrderOldestFirst
	default:
		return o.assumed
	}
}

// InstanceHistory reads the versions of one resource (deletes included) last updated at or
// after since (every version for a zero since), newest first as FHIR orders history,
// following next links, and calls visit once per page; an error from visit ends the walk and
// is returned. Entries naming another resource are skipped. A resource the server does not
// know fails with ErrNotFound. id never appears in an error.
func (c *Client) InstanceHistory(ctx context.Context, datastoreID, resourceType, id string, since time.Time, visit func(HistoryPage) error) error {
	if err := validateTarget(datastoreID, resourceType); err != nil {
		return err
	}
	if !validID(id) {
		return permanent(ErrInvalidResourceID)
	}
	q := url.Values{}
	if !since.IsZero() {
		q.Set("_since", since.UTC().Format(instantFormat))
	}
	q.Set("_count", strconv.Itoa(c.cfg.PageSize))
	first := c.url(datastoreID, resourceType+"/"+id+"/_history", q)
	return c.walk(ctx, "instance-history", datastoreID, first, func(n int, body []byte) (string, error) {
		p, b, err := decodeHistoryPage(body, resourceType, n)
		if err != nil {
			return "", err
		}
		kept := p.Entries[:0]
		for _, e := range p.Entries {
			if e.ID != id {
				p.Skipped++
				continue
			}
			kept = append(kept, e)
		}
		p.Entries = kept
		return b.next(), visit(p)
	})
}

// VRead reads one version of one resource. A version that was a delete fails with ErrGone
// (HTTP 410), an unknown one with ErrNotFound; an answer that is not that resource version
// with ErrMalformedResource. Neither id nor version ever appears in an error.
func (c *Client) VRead(ctx context.Context, datastoreID, resourceType, id, version string) (Resource, error) {
	if err := validateTarget(datastoreID, resourceType); err != nil {
		return Resource{}, err
	}
	if !validID(id) || !validID(version) {
		return Resource{}, permanent(ErrInvalidResourceID)
	}
	body, err := c.get(ctx, "vread", c.url(datastoreID, resourceType+"/"+id+"/_history/"+version, nil))
	if err != nil {
		return Resource{}, err
	}
	s := &scanner{data: body}
	h, err := readResource(s, resourceType)
	if err == nil {
		err = s.end()
	}
	if err != nil || !h.isObject {
		return Resource{}, permanentf(ErrMalformedResource, "invalid JSON or not an object")
	}
	r, ok := h.resource(body, resourceType)
	if !ok || r.ID != id || r.VersionID != version {
		return Resource{}, permanentf(ErrMalformedResource, "not the requested type, id and version")
	}
	return r, nil
}
