package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// runImport writes cfg.Import new resources through the Importer, one job per datastore, lists
// each in the manifest and hands each job's "Import Job Completed" event to the batcher. It
// runs after the other writes; p is no longer used by the dispatcher then.
func (r *runner) runImport(ctx context.Context, p *planner, records chan<- types.PutRecordsRequestEntry) error {
	imp := r.writer.(Importer)
	byDS := map[string][]*resource{}
	for range r.cfg.Import {
		k := p.keys[p.rng.IntN(len(p.keys))]
		// Import keeps the source's ids, so we choose them: a UUID is a valid FHIR id.
		res := &resource{datastore: k.datastore, resourceType: k.resourceType, seed: p.rng.Uint64(), id: uuid.NewString()}
		byDS[k.datastore] = append(byDS[k.datastore], res)
	}
	for _, ds := range r.cfg.Datastores { // in order: the plan's order
		list := byDS[ds]
		if len(list) == 0 {
			continue
		}
		bodies := make([]json.RawMessage, len(list))
		for i, res := range list {
			b, err := Body(res.resourceType, res.seed, 0, res.id, r.patientRef(res))
			if err != nil {
				return err
			}
			bodies[i] = b
		}
		job, err := imp.Import(ctx, ds, bodies)
		if err != nil {
			return fmt.Errorf("simulate: import of %d resources: %w", len(list), err)
		}
		if job.ErrorCount > 0 || job.Imported != len(list) {
			return fmt.Errorf("simulate: import job %s: %d of %d imported, %d errors", job.JobID, job.Imported, len(list), job.ErrorCount)
		}
		// An import answers nothing per resource: read each back for the manifest.
		versions := make([]Version, len(list))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.cfg.Concurrency)
		for i, res := range list {
			g.Go(func() (err error) {
				versions[i], err = imp.Read(gctx, ds, res.resourceType, res.id)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("simulate: read back import job %s: %w", job.JobID, err)
		}

		var recs []types.PutRecordsRequestEntry
		var eventID string
		if r.cfg.InjectEvents {
			// EventBridge's time is when HealthLake sent the event: after the job ended, so
			// rounded up to the second.
			at := job.EndTime.UTC()
			if t := at.Truncate(time.Second); !t.Equal(at) {
				at = t.Add(time.Second)
			}
			c := cloudtrail.Change{
				EventID: uuid.NewString(), DatastoreID: ds, Operation: event.Import, EventTime: at,
				Region: r.cfg.Region, Account: r.cfg.Account,
				JobID: job.JobID, JobStatus: job.Status, JobSubmitTime: job.SubmitTime,
			}
			data, err := cloudtrail.EncodeImportEvent(c)
			if err != nil {
				return fmt.Errorf("simulate: import job %s: %w", job.JobID, err)
			}
			key := c.EventID
			if r.cfg.PartitionKey == PartitionByDatastore {
				key = ds
			}
			recs, eventID = []types.PutRecordsRequestEntry{{Data: data, PartitionKey: aws.String(key)}}, c.EventID
		}

		r.mu.Lock()
		for i, res := range list {
			v := versions[i]
			if err = r.manifest.Encode(ManifestEntry{
				DatastoreID: ds, ResourceType: res.resourceType, ID: res.id, VersionID: v.VersionID,
				LastUpdated: v.LastUpdated.UTC(), Operation: event.Create, Via: ViaImport,
				JobID: job.JobID, EventID: eventID,
			}); err != nil {
				break
			}
			r.sum.Writes++
			r.sum.Creates++
			r.sum.Imported++
		}
		if err == nil {
			r.sum.ImportJobs++
			if r.progress != nil {
				r.progress(r.sum.Writes, r.total)
			}
		}
		r.mu.Unlock()
		if err != nil {
			return fmt.Errorf("simulate: write manifest: %w", err)
		}
		if err := send(ctx, records, recs); err != nil {
			return err
		}
	}
	return nil
}
