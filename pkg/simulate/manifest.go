package simulate

import "time"

// ManifestEntry is one line of the manifest: one FHIR write. The verify package reads it.
type ManifestEntry struct {
	DatastoreID  string `json:"datastoreId"`
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	// VersionID is the server's meta.versionId; for a delete, the ETag's version if the server
	// sent one, else empty.
	VersionID string `json:"versionId"`
	// LastUpdated is the version's meta.lastUpdated; for a delete, when the response arrived.
	LastUpdated time.Time `json:"lastUpdated"`
	Operation   string    `json:"operation"` // create, update or delete
	// EventID is the CloudTrail eventID put for this write; empty without InjectEvents.
	EventID string `json:"eventId,omitempty"`
}
