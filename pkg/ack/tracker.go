package ack

import (
	"fmt"
	"sync"
)

// Ticket identifies one added record; pass it to Done when the record is finished.
type Ticket struct{ n uint64 }

type entry struct {
	seq  string
	done bool
}

// Tracker follows the records of one shard from Add to Done and knows how far the shard can
// be checkpointed. Its methods are safe for concurrent use: records are added by the shard's
// consumer while the pipeline calls Done from its own goroutines.
//
// Memory is proportional to the records in flight plus the done records behind the oldest
// one in flight; the done prefix is dropped as soon as it is complete.
type Tracker struct {
	mu       sync.Mutex
	queue    []entry // queue[head:] are records from the oldest not-done one on
	head     int
	base     uint64 // ticket number of queue[head]
	next     uint64 // ticket number of the next Add
	last     string // sequence number of the last added record
	pos      string // end of the done prefix; "" before any record finished
	inFlight int
}

// New returns an empty Tracker.
func New() *Tracker { return &Tracker{} }

// Add records that the next record of the shard, with sequence number seq, is in flight. seq
// must be a valid sequence number greater than every one added before; otherwise Add returns
// an error (wrapping ErrMalformed or ErrOutOfOrder) and tracks nothing.
//
// Records that the KCL de-aggregated from one KPL record share a sequence number; add such a
// group once and call Done when all of its parts are finished.
func (t *Tracker) Add(seq string) (Ticket, error) {
	if err := validate(seq); err != nil {
		return Ticket{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last != "" && Compare(seq, t.last) <= 0 {
		return Ticket{}, fmt.Errorf("%w: %s after %s", ErrOutOfOrder, seq, t.last)
	}
	t.last = seq
	t.queue = append(t.queue, entry{seq: seq})
	t.inFlight++
	tk := Ticket{n: t.next}
	t.next++
	return tk, nil
}

// Done marks the record of tk as finished. Calling it again for the same ticket, or with a
// ticket this Tracker did not issue, has no effect.
func (t *Tracker) Done(tk Ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tk.n < t.base || tk.n >= t.next {
		return // already consumed into the done prefix, or not ours
	}
	e := &t.queue[t.head+int(tk.n-t.base)]
	if e.done {
		return
	}
	e.done = true
	t.inFlight--
	for t.head < len(t.queue) && t.queue[t.head].done {
		t.pos = t.queue[t.head].seq
		t.queue[t.head] = entry{}
		t.head++
		t.base++
	}
	t.compact()
}

// compact drops the consumed front of the queue once it is at least half of it, so each
// entry is copied O(1) times on average.
func (t *Tracker) compact() {
	switch {
	case t.head == len(t.queue):
		t.queue, t.head = t.queue[:0], 0
	case t.head >= 64 && t.head*2 >= len(t.queue):
		n := copy(t.queue, t.queue[t.head:])
		clear(t.queue[n:])
		t.queue, t.head = t.queue[:n], 0
	}
}

// Checkpoint returns the highest sequence number such that it and every record added before
// it are done: the position the shard may be checkpointed at. ok is false while no such
// record exists. It never passes a record that is not done. The answer is the same until
// more records finish, so the caller compares it with what it last wrote to skip a no-op
// write (and can simply retry a write that failed).
func (t *Tracker) Checkpoint() (seq string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos, t.pos != ""
}

// InFlight returns the number of added records that are not done.
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight
}

// Outstanding returns the number of records the checkpoint is behind: those in flight plus
// the done ones queued behind the oldest record in flight. It is what the Tracker holds in
// memory and what a restart would read again.
func (t *Tracker) Outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) - t.head
}

// Pending reports whether any added record is not done, that is whether Checkpoint is
// behind the last added record. A shard may only be ended (SHARD_END) when it is false.
func (t *Tracker) Pending() bool { return t.InFlight() > 0 }

// Last returns the sequence number of the last added record ("" if none).
func (t *Tracker) Last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
