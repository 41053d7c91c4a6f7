package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// VersionReader reads the versions of one resource: what Config.AllVersions needs to emit
// the versions a search skipped (a `_lastUpdated` search shows only the current one).
type VersionReader interface {
	InstanceHistory(ctx context.Context, datastoreID, resourceType, id string, since time.Time, visit func(fhir.HistoryPage) error) error
	VRead(ctx context.Context, datastoreID, resourceType, id, version string) (fhir.Resource, error)
}

// maxSkippedVersions bounds the versions read back for one resource in one search: a
// resource rewritten thousands of times within one settle period is the client's bug, and
// reading all of it would stall the key. Beyond it the older ones are counted, not emitted.
const maxSkippedVersions = 1000

// errEnoughHistory ends an instance-history walk that reached what it needed.
var errEnoughHistory = errors.New("enough history")

// skippedVersions emits, before the page's own changes, the versions of the page's resources
// that were never emitted: HealthLake numbers versions 1, 2, 3…, so where a search shows
// version n, version n−1 not yet emitted means writes between two searches were folded into
// one. Walking down from n−1, each version is claimed (a claim that is already done ends the
// walk: that version, and by the same rule every one before it, went out), read from the
// resource's history (or by vread where history lacks it), and emitted oldest first, one
// resource at a time so that its versions reach the bus in order. Versions last updated
// before now − Config.VersionsLookback are not read: their claims may have expired, so
// emitted and never emitted look alike there.
func (p *Pipeline) skippedVersions(ctx context.Context, claims Claims, k coalesce.Key, found []event.Change, o *outcome) error {
	vr, ok := p.parts.FHIR.(VersionReader)
	if !ok || claims == nil {
		return nil
	}
	since := p.cfg.Clock.Now().Add(-p.cfg.VersionsLookback)
	// The version below each updated resource's is claimed for the whole page at once: one
	// Redis round trip, and for most resources (no gap) the only one.
	var cands []versionCandidate
	var below []dedup.Identity
	for _, c := range found {
		n, err := strconv.ParseUint(c.VersionID, 10, 64)
		if err != nil || n < 2 || c.Action == event.Delete {
			continue // the first version, or an opaque versionId: nothing to tell
		}
		cands = append(cands, versionCandidate{change: c, n: n})
		below = append(below, versionIdentity(k, c.ID, n-1))
	}
	if len(cands) == 0 {
		return nil
	}
	res, err := claims.Claim(ctx, below)
	if err != nil {
		return err
	}
	for i, cand := range cands {
		switch res[i] {
		case dedup.Duplicate:
			continue // no gap: the version before went out
		case dedup.Pending:
			o.pending++ // another worker emits it; this chunk runs again shortly
			continue
		}
		if err := p.emitOlder(ctx, vr, claims, k, cand, since, o); err != nil {
			// The walks not started keep claims of their version below: give them back, or
			// the search's retry (a new owner) would find them pending until they expire.
			var rest []dedup.Identity
			for j := i + 1; j < len(cands); j++ {
				if res[j] == dedup.New {
					rest = append(rest, below[j])
				}
			}
			p.releaseClaims(ctx, claims, rest)
			return err
		}
	}
	return nil
}

// emitOlder reads and emits, oldest first, the versions of cand that a search skipped.
func (p *Pipeline) emitOlder(ctx context.Context, vr VersionReader, claims Claims, k coalesce.Key, cand versionCandidate, since time.Time, o *outcome) error {
	older, err := p.olderVersions(ctx, vr, claims, k, cand.change, cand.n, since, o)
	if err != nil {
		return err
	}
	for start := 0; start < len(older); start += 10 {
		end := min(start+10, len(older))
		if err := p.emit(ctx, claims, older[start:end], o); err != nil {
			// emit settled its own batch; the later ones are still this walk's claims.
			var rest []dedup.Identity
			for _, c := range older[end:] {
				rest = append(rest, dedup.Identity{DatastoreID: c.DatastoreID, ResourceType: c.ResourceType, ID: c.ID, VersionID: c.VersionID})
			}
			p.releaseClaims(ctx, claims, rest)
			return err
		}
	}
	p.stats.SkippedVersions.Add(int64(len(older)))
	return nil
}

// versionCandidate is a resource a search found at version n ≥ 2.
type versionCandidate struct {
	change event.Change
	n      uint64
}

func versionIdentity(k coalesce.Key, id string, v uint64) dedup.Identity {
	return dedup.Identity{DatastoreID: k.DatastoreID, ResourceType: k.ResourceType, ID: id, VersionID: strconv.FormatUint(v, 10)}
}

// olderVersions returns, oldest first and claimed, the versions of c below n not emitted yet.
// The caller claimed version n−1 (won): the walk starts there.
func (p *Pipeline) olderVersions(ctx context.Context, vr VersionReader, claims Claims, k coalesce.Key, c event.Change, n uint64, since time.Time, o *outcome) ([]event.Change, error) {
	id := func(v uint64) dedup.Identity { return versionIdentity(k, c.ID, v) }
	var held []dedup.Identity // claimed by this walk and not (yet) to be emitted
	release := func() { p.releaseClaims(ctx, claims, held) }
	held = append(held, id(n-1))

	hist, err := p.readVersions(ctx, vr, k, c.ID, n, since)
	if err != nil {
		release()
		return nil, err
	}
	var older []event.Change
	for v := n - 1; v >= 1 && n-v <= maxSkippedVersions; v-- {
		if v < n-1 {
			res, err := claims.Claim(ctx, []dedup.Identity{id(v)})
			if err != nil {
				release()
				return nil, err
			}
			if res[0] == dedup.Pending {
				o.pending++
			}
			if res[0] != dedup.New {
				break
			}
			held = append(held, id(v))
		}
		e, ok := hist[v]
		if !ok {
			r, err := vr.VRead(ctx, k.DatastoreID, k.ResourceType, c.ID, strconv.FormatUint(v, 10))
			switch {
			case errors.Is(err, fhir.ErrGone):
				// The version was a delete that history did not show; emit it as one.
				e = fhir.HistoryEntry{ID: c.ID, VersionID: strconv.FormatUint(v, 10), Deleted: true}
			case errors.Is(err, fhir.ErrNotFound) || (err != nil && retry.IsPermanent(err)):
				// The server keeps no such version (history off for the type): what
				// cannot be read cannot be emitted. Counted; the search's version stands.
				p.stats.VersionsUnreadable.Add(1)
				e = fhir.HistoryEntry{}
			case err != nil:
				release()
				return nil, fmt.Errorf("vread: %w", err)
			default:
				e = fhir.HistoryEntry{ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Resource: &r}
			}
		}
		if e.ID == "" || (!e.LastUpdated.IsZero() && e.LastUpdated.Before(since)) {
			break // unreadable, or older than the lookback: not ours to tell
		}
		held = held[:len(held)-1] // emitted below: emit settles its claim
		older = append(older, p.versionChange(k, c, e))
	}
	if n > maxSkippedVersions+1 && len(older) == maxSkippedVersions {
		p.stats.VersionsUnreadable.Add(1)
	}
	release()
	slices.Reverse(older)
	return older, nil
}

// readVersions reads the resource's history back to since (or to its first version), as a
// map by version number. A server without instance history gives an empty map: the versions
// are then read one by one.
func (p *Pipeline) readVersions(ctx context.Context, vr VersionReader, k coalesce.Key, id string, n uint64, since time.Time) (map[uint64]fhir.HistoryEntry, error) {
	hist := map[uint64]fhir.HistoryEntry{}
	p.stats.VersionReads.Add(1)
	err := vr.InstanceHistory(ctx, k.DatastoreID, k.ResourceType, id, since, func(hp fhir.HistoryPage) error {
		for _, e := range hp.Entries {
			v, err := strconv.ParseUint(e.VersionID, 10, 64)
			if err != nil || v >= n {
				continue
			}
			hist[v] = e
			if v == 1 || e.LastUpdated.Before(since) || len(hist) >= maxSkippedVersions {
				return errEnoughHistory
			}
		}
		return nil
	})
	switch {
	case err == nil || errors.Is(err, errEnoughHistory):
		return hist, nil
	case retry.IsPermanent(err):
		return hist, nil // no history here: vread each version instead
	default:
		return nil, fmt.Errorf("instance history: %w", err)
	}
}

// versionChange is the change event of one older version e of the resource c names.
func (p *Pipeline) versionChange(k coalesce.Key, c event.Change, e fhir.HistoryEntry) event.Change {
	v := c
	v.VersionID, v.LastUpdated, v.Resource = e.VersionID, e.LastUpdated, nil
	v.Action = event.ActionFor(e.VersionID, false, true)
	if e.Deleted {
		v.Action = event.Delete
	} else if e.Resource != nil {
		v.Resource = e.Resource.Raw
	}
	if v.LastUpdated.IsZero() {
		v.LastUpdated = c.LastUpdated // a delete version without a time: the search's
	}
	return v
}
