package verify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/recorded"
)

// DefaultSource is the Source the consumer emits with unless configured otherwise.
const DefaultSource = event.DefaultSource

// DefaultMaxExamples is how many missing writes a Report lists.
const DefaultMaxExamples = 5

// Options says which events count.
type Options struct {
	// Source of the events to look at; default DefaultSource. Everything else in the events
	// file (other tests, other runs) is ignored.
	Source string
	// ManifestDatastoresOnly ignores change events of datastores the manifest never wrote to,
	// so EventsEmitted and Duplicates describe this run even when the recorder's file holds
	// other runs with the same Source. Rejected-record reports carry no datastore and are
	// always counted.
	ManifestDatastoresOnly bool
	// ExpectDeletes makes an unannounced delete count as missing.
	ExpectDeletes bool
	// MaxExamples bounds Report.MissingExamples; default DefaultMaxExamples.
	MaxExamples int
}

// Report is the outcome of a verification.
type Report struct {
	Writes           int `json:"writes"`           // manifest lines
	ResourcesChanged int `json:"resourcesChanged"` // distinct (datastore, type, id) written
	Deletes          int `json:"deletes"`          // delete writes (part of Writes)
	DeletesAnnounced int `json:"deletesAnnounced"` // delete writes with a delete event
	EventsEmitted    int `json:"eventsEmitted"`    // change events that passed the filters
	// EventsForeign are change events (part of EventsEmitted) for resources the manifest
	// never wrote: another run's, or a bug.
	EventsForeign int `json:"eventsForeign"`
	// Missing writes: no change event for the resource with lastUpdated at or after the
	// write's, and no delete event for it (deletes count only with Options.ExpectDeletes).
	Missing         int       `json:"missing"`
	MissingExamples []Example `json:"missingExamples,omitempty"`
	// Duplicates: change events beyond the first with the same datastore, type, id,
	// versionId and action.
	Duplicates int `json:"duplicates"`
	// Rejected counts the rejected-record reports by reason.
	Rejected map[string]int `json:"rejected"`
	// Latency from each covered write's lastUpdated to the receipt of the first event
	// covering it.
	Latency Latency `json:"latency"`
	// ByVia counts the writes by how they were made (simulate.ViaREST, ViaBatch,
	// ViaTransaction, ViaImport); MissingByVia the missing ones the same way, and
	// MissingPatches the missing JSON Patch writes (method PATCH, of any via).
	ByVia          map[string]int `json:"byVia"`
	MissingByVia   map[string]int `json:"missingByVia"`
	MissingPatches int            `json:"missingPatches"`
	// HintsDropped counts the writes whose CloudTrail record the producer left out on purpose
	// (--drop-hints, --drop-gap): only a sweep can find them. MissingHintDropped are those of
	// them (part of Missing) still missing; MissingWithHint the missing ones whose hint was put.
	HintsDropped       int `json:"hintsDropped"`
	MissingHintDropped int `json:"missingHintDropped"`
	MissingWithHint    int `json:"missingWithHint"`
	// BadEventLines: lines of the events file that could not be decoded (a line being
	// written while we read, say); they are skipped.
	BadEventLines int `json:"badEventLines,omitempty"`
}

// OK reports whether every write that should have been announced was.
func (r Report) OK() bool { return r.Missing == 0 }

// Example identifies a missing write; it carries no resource content.
type Example struct {
	DatastoreID  string          `json:"datastoreId"`
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	VersionID    string          `json:"versionId,omitempty"`
	Operation    event.Operation `json:"operation"`
	LastUpdated  time.Time       `json:"lastUpdated"`
	Why          string          `json:"why"`
}

// seen is one change event for a resource of the manifest.
type seen struct {
	lastUpdated, received time.Time
	delete                bool
}

type identity struct {
	resourceKey
	versionID, action string
}

// Verify matches the writes of manifest (the producer's JSON lines) against the events
// (the recorder's JSON lines) and reports what it found. It returns an error only for
// unreadable input or a malformed manifest; missing writes are a Report, not an error.
func Verify(manifest, events io.Reader, opts Options) (Report, error) {
	opts.Source = cmp.Or(opts.Source, DefaultSource)
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = DefaultMaxExamples
	}
	writes, err := readManifest(manifest)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	rep := Report{Writes: len(writes), Rejected: map[string]int{}, ByVia: map[string]int{}, MissingByVia: map[string]int{}}
	written := map[resourceKey]bool{}
	datastores := map[string]bool{}
	for _, w := range writes {
		written[keyOf(w)] = true
		datastores[w.DatastoreID] = true
		if w.Operation == event.Delete {
			rep.Deletes++
		}
		rep.ByVia[via(w)]++
		if w.HintDropped != "" {
			rep.HintsDropped++
		}
	}
	rep.ResourcesChanged = len(written)

	byKey := map[resourceKey][]seen{}
	identities := map[identity]int{}
	err = eachLine(events, func(_ int, line []byte) error {
		var ev recorded.Line
		if json.Unmarshal(line, &ev) != nil || ev.Received.IsZero() {
			rep.BadEventLines++
			return nil
		}
		if ev.Source != opts.Source {
			return nil
		}
		switch ev.DetailType {
		case event.DetailTypeRejected:
			var d event.Rejected
			if json.Unmarshal(ev.Detail, &d) != nil {
				rep.BadEventLines++
				return nil
			}
			rep.Rejected[d.Reason]++
			return nil
		case event.DetailTypeCreated, event.DetailTypeUpdated, event.DetailTypeDeleted:
		default:
			return nil
		}
		// The resource is copied raw, never parsed: verification needs only the identity.
		var d event.ChangeDetail
		if json.Unmarshal(ev.Detail, &d) != nil || d.LastUpdated.IsZero() {
			rep.BadEventLines++
			return nil
		}
		if opts.ManifestDatastoresOnly && !datastores[d.DatastoreID] {
			return nil
		}
		rep.EventsEmitted++
		k := resourceKey{d.DatastoreID, d.ResourceType, d.ID}
		id := identity{k, d.VersionID, string(d.Action)}
		if identities[id]++; identities[id] > 1 {
			rep.Duplicates++
		}
		if !written[k] {
			rep.EventsForeign++
			return nil
		}
		byKey[k] = append(byKey[k], seen{
			lastUpdated: d.LastUpdated.Time, received: ev.Received,
			delete: ev.DetailType == event.DetailTypeDeleted || d.Action == event.Delete,
		})
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("verify: read events: %w", err)
	}

	var latencies []time.Duration
	for _, w := range writes {
		first, ok := firstCovering(byKey[keyOf(w)], w)
		if ok {
			latencies = append(latencies, first.Sub(w.LastUpdated))
			if w.Operation == event.Delete {
				rep.DeletesAnnounced++
			}
			continue
		}
		if w.Operation == event.Delete && !opts.ExpectDeletes {
			continue
		}
		rep.Missing++
		rep.MissingByVia[via(w)]++
		if w.Method == "PATCH" {
			rep.MissingPatches++
		}
		if w.HintDropped != "" {
			rep.MissingHintDropped++
		} else {
			rep.MissingWithHint++
		}
		if len(rep.MissingExamples) < opts.MaxExamples {
			rep.MissingExamples = append(rep.MissingExamples, Example{
				DatastoreID: w.DatastoreID, ResourceType: w.ResourceType, ID: w.ID, VersionID: w.VersionID,
				Operation: w.Operation, LastUpdated: w.LastUpdated, Why: why(byKey[keyOf(w)], w),
			})
		}
	}
	rep.Latency = Summarize(latencies)
	return rep, nil
}

// firstCovering returns when the first event covering w was received. A delete write is
// covered by a delete event; any other write by a delete event or by a change event whose
// lastUpdated is at or after the write's (the consumer may announce only the latest of
// several quick versions).
func firstCovering(events []seen, w Write) (time.Time, bool) {
	var first time.Time
	for _, e := range events {
		covers := e.delete || (w.Operation != event.Delete && !e.lastUpdated.Before(w.LastUpdated))
		if covers && (first.IsZero() || e.received.Before(first)) {
			first = e.received
		}
	}
	return first, !first.IsZero()
}

func why(events []seen, w Write) string {
	switch {
	case len(events) == 0:
		return "no event for this resource"
	case w.Operation == event.Delete:
		return "no delete event for this resource"
	}
	latest := slices.MaxFunc(events, func(a, b seen) int { return a.lastUpdated.Compare(b.lastUpdated) })
	return "latest event is for lastUpdated " + latest.lastUpdated.UTC().Format(time.RFC3339Nano) + ", before this write"
}
