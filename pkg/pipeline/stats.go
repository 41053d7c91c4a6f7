package pipeline

import "sync/atomic"

// Stats are the pipeline's counters. They are plain atomics so that tests, the demo summary
// and the metrics exporter all read the same numbers.
type Stats struct {
	RecordsAct, RecordsSkipped, RecordsRejected atomic.Int64
	// Runs counts runs of a key (each syncs with Redis; the lease holder's search);
	// RunRetries the runs that failed or met a pending claim and were tried again.
	Runs, RunRetries atomic.Int64
	ResourcesRead    atomic.Int64
	// Searches counts the chunks searched (first searches, verification re-reads and parked
	// retries included); SearchPagesMin the fewest pages those searches could have taken at
	// 100 resources a page. FHIR requests beyond it are retries and empty trailing pages.
	Searches, SearchPagesMin atomic.Int64
	// Verified counts ranges verified; Rereads those re-read because the count did not match
	// (or the server could not count); FoundByVerify the changes only a re-read found.
	Verified, Rereads, FoundByVerify atomic.Int64
	// Parked counts ranges parked; Unparked those a retry later searched successfully.
	Parked, Unparked                       atomic.Int64
	DedupNew, DedupDuplicate, DedupPending atomic.Int64
	Emitted, EmitFailed                    atomic.Int64
	RejectsReported                        atomic.Int64
	DeletesUnresolved                      atomic.Int64
	// DeletesSettled counts the history re-reads that settled delete hints at the
	// verification horizon; DeletesFoundLate the deletes only such a re-read found.
	DeletesSettled, DeletesFoundLate atomic.Int64
	// BulkDeletes counts the "Deletes Unresolved" reports of `$bulk-delete` jobs, one per type.
	BulkDeletes atomic.Int64
	// WideHints are hints that name no single type (Bundles, unknown writes, imports) and
	// bulk deletes; UntypedHints those of them for a datastore with no known type (acked,
	// nothing to search); Unrecognised the hints with an event name no list knows.
	WideHints, UntypedHints, Unrecognised atomic.Int64
	// SweepRanges are ranges no hint asked for that a sweep brought in; SweepSkipped those
	// of them whose count matched, so they were not read. SweepFound counts the changes
	// emitted at a second no delivered hint's range reached — found by a sweep, or in a
	// timeline's gap before a later hint: a direct measure of the changes whose hints
	// CloudTrail lost (and of hints that arrived after their range was searched).
	SweepRanges, SweepSkipped, SweepFound atomic.Int64
	// With Config.AllVersions: SkippedVersions are the older versions a search skipped that
	// were read back and emitted; VersionReads the instance-history reads that took; and
	// VersionsUnreadable the versions the server could not give (history off for the type).
	SkippedVersions, VersionReads, VersionsUnreadable atomic.Int64
}

// Snapshot is a copy of Stats at one moment.
type Snapshot struct {
	RecordsAct, RecordsSkipped, RecordsRejected       int64
	Runs, RunRetries                                  int64
	ResourcesRead                                     int64
	Searches, SearchPagesMin                          int64
	Verified, Rereads, FoundByVerify                  int64
	Parked, Unparked                                  int64
	DedupNew, DedupDuplicate, DedupPending            int64
	Emitted, EmitFailed                               int64
	RejectsReported                                   int64
	DeletesUnresolved                                 int64
	DeletesSettled, DeletesFoundLate                  int64
	BulkDeletes                                       int64
	WideHints, UntypedHints, Unrecognised             int64
	SweepRanges, SweepSkipped, SweepFound             int64
	SkippedVersions, VersionReads, VersionsUnreadable int64
}

// Snapshot reads every counter.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		RecordsAct: s.RecordsAct.Load(), RecordsSkipped: s.RecordsSkipped.Load(), RecordsRejected: s.RecordsRejected.Load(),
		Runs: s.Runs.Load(), RunRetries: s.RunRetries.Load(),
		ResourcesRead: s.ResourcesRead.Load(),
		Searches:      s.Searches.Load(), SearchPagesMin: s.SearchPagesMin.Load(),
		Verified: s.Verified.Load(), Rereads: s.Rereads.Load(), FoundByVerify: s.FoundByVerify.Load(),
		Parked: s.Parked.Load(), Unparked: s.Unparked.Load(),
		DedupNew: s.DedupNew.Load(), DedupDuplicate: s.DedupDuplicate.Load(), DedupPending: s.DedupPending.Load(),
		Emitted: s.Emitted.Load(), EmitFailed: s.EmitFailed.Load(),
		RejectsReported:   s.RejectsReported.Load(),
		DeletesUnresolved: s.DeletesUnresolved.Load(),
		DeletesSettled:    s.DeletesSettled.Load(), DeletesFoundLate: s.DeletesFoundLate.Load(),
		BulkDeletes: s.BulkDeletes.Load(),
		WideHints:   s.WideHints.Load(), UntypedHints: s.UntypedHints.Load(), Unrecognised: s.Unrecognised.Load(),
		SweepRanges: s.SweepRanges.Load(), SweepSkipped: s.SweepSkipped.Load(), SweepFound: s.SweepFound.Load(),
		SkippedVersions: s.SkippedVersions.Load(), VersionReads: s.VersionReads.Load(), VersionsUnreadable: s.VersionsUnreadable.Load(),
	}
}
