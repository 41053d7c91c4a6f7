package simulate

import (
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// How a write was made (ManifestEntry.Via).
const (
	ViaREST        = "rest"        // one REST call (POST, PUT, PATCH or DELETE on the resource)
	ViaBatch       = "batch"       // an entry of a batch Bundle
	ViaTransaction = "transaction" // an entry of a transaction Bundle
	ViaImport      = "import"      // written by an import job
)

// ManifestEntry is one line of the manifest: one FHIR write. The verify package reads it.
//
// Manifests written before Via existed have no via, method, bundle, jobId or hintDropped: a
// line without via is a single REST write.
type ManifestEntry struct {
	DatastoreID  string `json:"datastoreId"`
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	// VersionID is the server's meta.versionId; for a delete, the ETag's version if the server
	// sent one, else empty.
	VersionID string `json:"versionId"`
	// LastUpdated is the version's meta.lastUpdated; for a delete, when the response arrived
	// (a Bundle entry: its response.lastModified).
	LastUpdated time.Time       `json:"lastUpdated"`
	Operation   event.Operation `json:"operation"` // event.Create, event.Update or event.Delete
	// Via says how the write was made: ViaREST, ViaBatch, ViaTransaction or ViaImport.
	Via string `json:"via,omitempty"`
	// Method is the HTTP method of the call or Bundle entry: POST, PUT, PATCH (a JSON Patch)
	// or DELETE; empty for an import.
	Method string `json:"method,omitempty"`
	// Bundle numbers the Bundle the write was an entry of, from 1; 0 for other writes.
	Bundle int `json:"bundle,omitempty"`
	// JobID is the import job that wrote it (Via ViaImport).
	JobID string `json:"jobId,omitempty"`
	// EventID is the id of the CloudTrail record for this write (a Bundle's entries share
	// their Bundle's one record), or, for an import, of the job's "Import Job Completed"
	// event; empty without InjectEvents.
	EventID string `json:"eventId,omitempty"`
	// HintDropped says why the write's CloudTrail record (EventID) was NOT put: DroppedRandom
	// or DroppedGap; empty when it was put.
	HintDropped string `json:"hintDropped,omitempty"`
}
