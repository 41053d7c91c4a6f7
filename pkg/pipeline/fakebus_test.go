package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// fakeDedup is package dedup's claims in memory, with its protocol: a claim is SET NX with
// the owner's token and the claim TTL (on the fake clock); our own token again is New,
// "done" is Duplicate, another owner's token is Pending; MarkDone sets done for the dedup
// TTL; Release deletes only a claim that is still ours.
type fakeDedup struct {
	clock    *clocktest.Fake
	claimTTL time.Duration
	doneTTL  time.Duration

	mu     sync.Mutex
	claims map[dedup.Identity]claim
	owners int
	fail   func(op string) error
}

type claim struct {
	owner   string // "" once done
	expires time.Time
}

func newFakeDedup(c *clocktest.Fake) *fakeDedup {
	return &fakeDedup{clock: c, claimTTL: 5 * time.Second, doneTTL: 24 * time.Hour, claims: make(map[dedup.Identity]claim)}
}

// newClaims is Parts.NewClaims: a fresh owner per search.
func (d *fakeDedup) newClaims() pipeline.Claims {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.owners++
	return &claimsView{d: d, owner: fmt.Sprintf("owner-%d", d.owners)}
}

type claimsView struct {
	d     *fakeDedup
	owner string
}

func (v *claimsView) enter(op string) (func(), error) {
	v.d.mu.Lock()
	if v.d.fail != nil {
		if err := v.d.fail(op); err != nil {
			v.d.mu.Unlock()
			return nil, err
		}
	}
	return v.d.mu.Unlock, nil
}

func (v *claimsView) Claim(_ context.Context, ids []dedup.Identity) ([]dedup.Result, error) {
	unlock, err := v.enter("claim")
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := v.d.clock.Now()
	out := make([]dedup.Result, len(ids))
	for i, id := range ids {
		c, ok := v.d.claims[id]
		switch {
		case !ok || !c.expires.After(now):
			v.d.claims[id] = claim{owner: v.owner, expires: now.Add(v.d.claimTTL)}
			out[i] = dedup.New
		case c.owner == "":
			out[i] = dedup.Duplicate
		case c.owner == v.owner:
			out[i] = dedup.New
		default:
			out[i] = dedup.Pending
		}
	}
	return out, nil
}

func (v *claimsView) MarkDone(_ context.Context, ids []dedup.Identity) error {
	unlock, err := v.enter("mark-done")
	if err != nil {
		return err
	}
	defer unlock()
	for _, id := range ids {
		v.d.claims[id] = claim{expires: v.d.clock.Now().Add(v.d.doneTTL)}
	}
	return nil
}

func (v *claimsView) Release(_ context.Context, ids []dedup.Identity) error {
	unlock, err := v.enter("release")
	if err != nil {
		return err
	}
	defer unlock()
	for _, id := range ids {
		if c, ok := v.d.claims[id]; ok && c.owner == v.owner {
			delete(v.d.claims, id)
		}
	}
	return nil
}

// fakeBus is an Emitter that keeps what it accepted. fail, if set, decides each entry's
// fate per call: nil accepts it, an error (one of pkg/bus's, as the real Emitter returns
// them) refuses it.
type fakeBus struct {
	mu       sync.Mutex
	accepted []busEvent
	calls    int
	refused  int
	fail     func(call, i int, e busEvent) error
}

// busEvent is an accepted entry: its DetailType and its detail as the builder wrote it. Read
// the detail with detail, as the output contract's type of the DetailType.
type busEvent struct {
	DetailType string
	Detail     json.RawMessage
}

// String shows the detail as JSON in test failures.
func (e busEvent) String() string { return e.DetailType + " " + string(e.Detail) }

// isChange tells whether e is a change event (FHIR Resource Created, Updated or Deleted).
func (e busEvent) isChange() bool {
	switch e.DetailType {
	case event.DetailTypeCreated, event.DetailTypeUpdated, event.DetailTypeDeleted:
		return true
	}
	return false
}

// detail decodes e's detail as T: event.ChangeDetail for the change events, event.Rejected,
// event.RangeFailed, event.Watermark or event.DeletesUnresolved for the reports. It panics
// rather than taking a testing.TB because bus.fail calls it on the pipeline's goroutines;
// the builder made the JSON, so only a T that does not fit the DetailType fails.
func detail[T any](e busEvent) T {
	var d T
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		panic(fmt.Sprintf("%s detail: %v", e.DetailType, err))
	}
	return d
}

func (b *fakeBus) Emit(_ context.Context, entries []ebtypes.PutEventsRequestEntry) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	errs := make([]error, len(entries))
	for i, e := range entries {
		ev := busEvent{DetailType: *e.DetailType, Detail: json.RawMessage(*e.Detail)}
		if !json.Valid(ev.Detail) {
			panic("detail is not JSON: " + ev.DetailType) // the builder made it
		}
		if b.fail != nil {
			if errs[i] = b.fail(b.calls, i, ev); errs[i] != nil {
				b.refused++
				continue
			}
		}
		b.accepted = append(b.accepted, ev)
	}
	return errs
}

func (b *fakeBus) events(detailType string) []busEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []busEvent
	for _, e := range b.accepted {
		if detailType == "" || e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out
}

// busUnavailable is an entry's error when PutEvents failed as a whole with AccessDenied, as
// bus.Emitter reports it: retryable, matching bus.ErrUnavailable.
func busUnavailable() error {
	ce := &bus.CallError{Kind: bus.KindAccessDenied, Code: "AccessDeniedException", Message: "not authorized", Status: 400,
		Err: errors.New("api error AccessDeniedException: not authorized")}
	return &bus.EntryError{Code: ce.Code, Message: ce.Message, Attempts: 3, Unavailable: true, Err: ce}
}

// busMalformed is an entry EventBridge refused as malformed: permanent.
func busMalformed() error {
	return &bus.EntryError{Code: "MalformedDetail", Message: "detail is malformed", Attempts: 1, Permanent: true}
}
