package pipeline

import "sync/atomic"

// Stats are the pipeline's counters. They are plain atomics so that tests, the demo summary
// and the metrics exporter all read the same numbers.
type Stats struct {
	RecordsAct, RecordsSkipped, RecordsRejected atomic.Int64
	Windows, WindowRetries, Rechecks            atomic.Int64
	ResourcesRead                               atomic.Int64
	// Searches counts window searches (re-checks included); SearchPagesMin is the fewest
	// pages those searches could have taken at 100 resources a page. FHIR requests beyond
	// it are retries and empty trailing pages.
	Searches, SearchPagesMin               atomic.Int64
	DedupNew, DedupDuplicate, DedupPending atomic.Int64
	Emitted, EmitFailed                    atomic.Int64
	RejectsReported                        atomic.Int64
	DeletesUnresolved                      atomic.Int64
}

// Snapshot is a copy of Stats at one moment.
type Snapshot struct {
	RecordsAct, RecordsSkipped, RecordsRejected int64
	Windows, WindowRetries, Rechecks            int64
	ResourcesRead                               int64
	Searches, SearchPagesMin                    int64
	DedupNew, DedupDuplicate, DedupPending      int64
	Emitted, EmitFailed                         int64
	RejectsReported                             int64
	DeletesUnresolved                           int64
}

// Snapshot reads every counter.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		RecordsAct: s.RecordsAct.Load(), RecordsSkipped: s.RecordsSkipped.Load(), RecordsRejected: s.RecordsRejected.Load(),
		Windows: s.Windows.Load(), WindowRetries: s.WindowRetries.Load(), Rechecks: s.Rechecks.Load(),
		ResourcesRead: s.ResourcesRead.Load(),
		Searches:      s.Searches.Load(), SearchPagesMin: s.SearchPagesMin.Load(),
		DedupNew: s.DedupNew.Load(), DedupDuplicate: s.DedupDuplicate.Load(), DedupPending: s.DedupPending.Load(),
		Emitted: s.Emitted.Load(), EmitFailed: s.EmitFailed.Load(),
		RejectsReported:   s.RejectsReported.Load(),
		DeletesUnresolved: s.DeletesUnresolved.Load(),
	}
}
