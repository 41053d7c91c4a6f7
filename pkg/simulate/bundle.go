package simulate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/uuid"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// bundleJSON builds the batch or transaction Bundle of b's entries.
func (r *runner) bundleJSON(b *op) ([]byte, error) {
	type request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Request  request         `json:"request"`
	}
	entries := make([]entry, len(b.entries))
	for i, o := range b.entries {
		res := o.res
		e := entry{Request: request{Method: method(o), URL: res.resourceType}}
		if o.kind != event.Create {
			e.Request.URL += "/" + res.id
		}
		if o.kind != event.Delete {
			body, err := Body(res.resourceType, res.seed, o.version, res.id, r.patientRef(res))
			if err != nil {
				return nil, err
			}
			e.Resource = body
			if o.patch {
				// A PATCH entry carries the patch as a Binary (FHIR R4 3.1.0.11.2).
				patch, err := Patch(body)
				if err != nil {
					return nil, err
				}
				e.Resource, _ = json.Marshal(map[string]string{
					"resourceType": "Binary", "contentType": "application/json-patch+json",
					"data": base64.StdEncoding.EncodeToString(patch),
				})
			}
		}
		if o.kind == event.Create {
			e.FullURL = "urn:uuid:" + uuid.NewString()
		}
		entries[i] = e
	}
	return json.Marshal(map[string]any{"resourceType": "Bundle", "type": r.cfg.BundleType, "entry": entries})
}

// writeBundle posts one Bundle, lists each entry in the manifest like a single write, lets
// each resource's next write go and hands the Bundle's one CloudTrail record to the batcher.
func (r *runner) writeBundle(ctx context.Context, b *op, records chan<- types.PutRecordsRequestEntry) error {
	ds := b.entries[0].res.datastore
	body, err := r.bundleJSON(b)
	if err != nil {
		return err
	}
	started := r.cfg.Clock.Now()
	results, err := r.writer.(BundleWriter).Bundle(ctx, ds, body)
	if err != nil {
		return fmt.Errorf("simulate: bundle %d (%s of %d): %w", b.seq+1, r.cfg.BundleType, len(b.entries), err)
	}
	if len(results) != len(b.entries) {
		return fmt.Errorf("simulate: bundle %d: %d response entries for %d entries", b.seq+1, len(results), len(b.entries))
	}
	eventTime := started
	for i, res := range results {
		o := b.entries[i]
		switch {
		case res.Status/100 != 2:
			return fmt.Errorf("simulate: bundle %d entry %d (%s %s): status %d %s", b.seq+1, i, method(o), o.res.resourceType, res.Status, res.Detail)
		case res.LastUpdated.IsZero() || res.VersionID == "" || (o.kind == event.Create && res.ID == ""):
			return fmt.Errorf("simulate: bundle %d entry %d: response lacks location, etag or lastModified", b.seq+1, i)
		}
		if res.LastUpdated.Before(eventTime) {
			eventTime = res.LastUpdated
		}
	}

	via := ViaBatch
	if r.cfg.BundleType == BundleTransaction {
		via = ViaTransaction
	}
	var recs []types.PutRecordsRequestEntry
	var eventID, drop string
	if r.cfg.InjectEvents {
		c := cloudtrail.Change{DatastoreID: ds, Operation: event.Mixed, EventTime: eventTime}
		if r.cfg.BundleHint == HintBundleType {
			c.EventName, c.ResourceType = "CreateResource", "Bundle"
		}
		drop = r.dropped(b, started)
		if recs, eventID, err = r.hint(b, c, drop); err != nil {
			return err
		}
	}

	r.mu.Lock()
	for i, o := range b.entries {
		if o.kind == event.Create {
			o.res.id = results[i].ID
		}
		v := results[i].Version
		entry := ManifestEntry{
			DatastoreID: ds, ResourceType: o.res.resourceType, ID: o.res.id, VersionID: v.VersionID,
			LastUpdated: v.LastUpdated.UTC(), Operation: o.kind, Via: via, Method: method(o),
			Bundle: b.seq + 1, EventID: eventID, HintDropped: drop,
		}
		if err = r.manifest.Encode(entry); err != nil {
			break
		}
		if o.res.resourceType == "Patient" {
			r.trackPatient(o.res, o.kind)
		}
	}
	if err == nil {
		r.count(b, recs, drop)
		if r.progress != nil {
			r.progress(r.sum.Writes, r.total)
		}
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("simulate: write manifest: %w", err)
	}
	for _, o := range b.entries {
		close(o.done)
	}
	return send(ctx, records, recs)
}
