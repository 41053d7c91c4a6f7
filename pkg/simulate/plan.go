package simulate

import (
	"math/rand/v2"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// op is one planned FHIR write.
type op struct {
	seq     int
	at      time.Duration // when to start it, from the start of the run
	res     *resource
	kind    event.Operation
	version int  // the body version: 0 for the create, n for the n-th update
	dup     bool // put its CloudTrail record twice
	hostile int  // index into hostileRecords of an extra record to put after it; -1 for none
	patch   bool // an update sent as JSON Patch
	drop    bool // its CloudTrail record is not put (Config.DropHints)
	// entries, for a Bundle (kind Mixed): its writes, each planned like a single one; the
	// Bundle's own dup, hostile and drop apply, the entries' are not used.
	entries []*op
	// after is closed when the previous write to res has finished (nil for a create): writes
	// to one resource never overlap, so its versions are in manifest order.
	after <-chan struct{}
	done  chan struct{}
}

// resource is one simulated FHIR resource.
type resource struct {
	datastore, resourceType string
	seed                    uint64
	// id is set by the worker that created it, before it closes that op's done channel;
	// later ops read it after their after channel is closed.
	id string

	// Planning state, touched only by the planner.
	updates int
	last    chan struct{}
}

type typeKey struct{ datastore, resourceType string }

// planner draws the run's writes one at a time, in the order they are dispatched. It is
// deterministic for a seed and not safe for concurrent use; only the dispatcher calls it.
type planner struct {
	cfg  Config
	rng  *rand.Rand
	keys []typeKey
	live map[typeKey][]*resource // resources that exist (as planned) and may be updated or deleted
	n    int                     // ops planned
	// limit is the ops to plan: Writes (0 for an import alone), or every entry of the Bundles;
	// a Duration run has none.
	limit int

	// While a Bundle is planned: its datastore's keys, and the resources its entries touch.
	bundleKeys []typeKey
	busy       map[*resource]bool
	bundles    int // Bundles planned

	hot       *resource
	hotLeft   int // updates of the hot resource still to plan; -1 before its create
	steadyN   int // steady ops planned
	burstN    int // burst ops planned
	burstKey  typeKey
	burstSpan time.Duration
}

func newPlanner(cfg Config, seed uint64) *planner {
	p := &planner{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		live:      map[typeKey][]*resource{},
		hotLeft:   -1,
		burstSpan: min(BurstSpan, cfg.BurstEvery),
	}
	for _, ds := range cfg.Datastores {
		for _, t := range cfg.Types {
			p.keys = append(p.keys, typeKey{ds, t})
		}
	}
	if cfg.HotResourceUpdates == 0 {
		p.hotLeft = 0
	}
	p.limit = cfg.Writes
	if cfg.Bundles > 0 {
		p.limit = cfg.Bundles * cfg.BundleSize
	}
	return p
}

// nextBundle returns the next Bundle, or nil when all are planned: up to BundleSize entries
// in one datastore (drawn per Bundle), none touching a resource another entry touches, since
// entries of one Bundle cannot wait for each other.
func (p *planner) nextBundle() *op {
	ds := p.cfg.Datastores[p.rng.IntN(len(p.cfg.Datastores))]
	p.bundleKeys, p.busy = nil, map[*resource]bool{}
	for _, k := range p.keys {
		if k.datastore == ds {
			p.bundleKeys = append(p.bundleKeys, k)
		}
	}
	var entries []*op
	for len(entries) < p.cfg.BundleSize {
		o := p.next()
		if o == nil {
			break
		}
		p.busy[o.res] = true
		entries = append(entries, o)
	}
	p.bundleKeys, p.busy = nil, nil
	if len(entries) == 0 {
		return nil
	}
	first := entries[0]
	b := &op{seq: p.bundles, at: first.at, kind: event.Mixed, entries: entries, dup: first.dup, hostile: first.hostile, drop: first.drop}
	p.bundles++
	return b
}

// next returns the next write, or nil when a run of cfg.Writes writes is fully planned. A run
// bounded by Duration never ends here: the dispatcher stops at the deadline.
func (p *planner) next() *op {
	if p.cfg.Duration == 0 && p.n >= p.limit {
		return nil
	}
	var o *op
	switch {
	case p.hotLeft != 0: // the hot resource first: created, then updated in a row, at once
		if p.hot == nil {
			o = p.create(p.keys[0], 0)
			p.hot, p.hotLeft = o.res, p.cfg.HotResourceUpdates
		} else {
			o = p.update(p.hot, 0)
			p.hotLeft--
		}
	default:
		at, burst := p.nextTime()
		keys := p.keys
		if p.bundleKeys != nil {
			keys = p.bundleKeys
		}
		key := keys[p.rng.IntN(len(keys))]
		if burst {
			if p.burstN%p.cfg.BurstSize == 0 {
				p.burstKey = key
			}
			key = p.burstKey
			p.burstN++
		} else {
			p.steadyN++
		}
		o = p.mutate(key, at)
	}
	// Drawn for every op, used or not, so the plan does not depend on InjectEvents.
	o.dup = p.rng.Float64() < p.cfg.DuplicateFraction
	o.hostile = -1
	if p.rng.Float64() < p.cfg.HostileFraction {
		o.hostile = p.rng.IntN(len(hostileRecords))
	}
	// Drawn only when used, so that plans without them stay as they were.
	if p.cfg.PatchRatio > 0 {
		o.patch = p.rng.Float64() < p.cfg.PatchRatio && o.kind == event.Update
	}
	if p.cfg.DropHints > 0 {
		o.drop = p.rng.Float64() < p.cfg.DropHints
	}
	o.seq = p.n
	p.n++
	return o
}

// nextTime is when the next steady or burst op is due, whichever comes first.
func (p *planner) nextTime() (at time.Duration, burst bool) {
	const never = time.Duration(1<<63 - 1)
	steady := never
	switch {
	case p.cfg.Rate > 0:
		steady = time.Duration(float64(p.steadyN) * float64(time.Second) / p.cfg.Rate)
	case p.cfg.BurstSize == 0:
		steady = 0 // as fast as possible
	}
	if p.cfg.BurstSize == 0 {
		return steady, false
	}
	k, j := p.burstN/p.cfg.BurstSize, p.burstN%p.cfg.BurstSize
	b := time.Duration(k)*p.cfg.BurstEvery + time.Duration(j)*p.burstSpan/time.Duration(p.cfg.BurstSize)
	if b <= steady {
		return b, true
	}
	return steady, false
}

// mutate plans a write to key: an update or delete of a live resource with the configured
// probabilities, else a create.
func (p *planner) mutate(key typeKey, at time.Duration) *op {
	r := p.rng.Float64()
	live := p.live[key]
	switch {
	case len(live) > 0 && r < p.cfg.UpdateRatio:
		if res := live[p.rng.IntN(len(live))]; !p.busy[res] {
			return p.update(res, at)
		}
	case len(live) > 0 && r < p.cfg.UpdateRatio+p.cfg.DeleteRatio:
		i := p.rng.IntN(len(live))
		if res := live[i]; !p.busy[res] {
			live[i] = live[len(live)-1]
			p.live[key] = live[:len(live)-1]
			return p.chain(&op{at: at, res: res, kind: event.Delete})
		}
	}
	return p.create(key, at)
}

func (p *planner) create(key typeKey, at time.Duration) *op {
	res := &resource{datastore: key.datastore, resourceType: key.resourceType, seed: p.rng.Uint64()}
	p.live[key] = append(p.live[key], res)
	return p.chain(&op{at: at, res: res, kind: event.Create})
}

func (p *planner) update(res *resource, at time.Duration) *op {
	res.updates++
	return p.chain(&op{at: at, res: res, kind: event.Update, version: res.updates})
}

// chain orders o after the resource's previous op.
func (p *planner) chain(o *op) *op {
	o.after = o.res.last
	o.done = make(chan struct{})
	o.res.last = o.done
	return o
}

// expectedWrites estimates the writes of a run, for progress: exact for Writes, the
// scheduled count for a Duration with a rate or bursts, 0 (unknown) for a Duration run as
// fast as possible.
func expectedWrites(cfg Config) int {
	if cfg.Bundles > 0 {
		return cfg.Bundles*cfg.BundleSize + cfg.Import
	}
	if cfg.Writes > 0 || cfg.Duration == 0 {
		return cfg.Writes + cfg.Import
	}
	if cfg.Rate == 0 && cfg.BurstSize == 0 {
		return 0
	}
	n := cfg.HotResourceUpdates
	if cfg.HotResourceUpdates > 0 {
		n++
	}
	if cfg.Rate > 0 {
		n += int(cfg.Duration.Seconds()*cfg.Rate + 0.999999)
	}
	if cfg.BurstSize > 0 {
		// Every burst but the last ends before the next starts, so only the last can be cut.
		bursts := int((cfg.Duration + cfg.BurstEvery - 1) / cfg.BurstEvery)
		n += (bursts - 1) * cfg.BurstSize
		span, last := min(BurstSpan, cfg.BurstEvery), time.Duration(bursts-1)*cfg.BurstEvery
		for j := range cfg.BurstSize {
			if last+time.Duration(j)*span/time.Duration(cfg.BurstSize) < cfg.Duration {
				n++
			}
		}
	}
	return n + cfg.Import
}
