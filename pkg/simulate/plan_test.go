package simulate

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

func planAll(cfg Config, seed uint64, limit int) []*op {
	p := newPlanner(cfg.withDefaults(), seed)
	var ops []*op
	for len(ops) < limit {
		o := p.next()
		if o == nil {
			break
		}
		ops = append(ops, o)
	}
	return ops
}

// describe is an op without its channels and pointers, to compare plans.
func describe(ops []*op) []string {
	index := map[*resource]int{}
	var out []string
	for _, o := range ops {
		if _, ok := index[o.res]; !ok {
			index[o.res] = len(index)
		}
		out = append(out, fmt.Sprintf("%d %v %s/%s r%d v%d seed%x dup=%v hostile=%d",
			o.seq, o.at, o.res.datastore[:4], o.res.resourceType, index[o.res], o.version, o.res.seed, o.dup, o.hostile))
	}
	return out
}

func mixConfig() Config {
	cfg := DefaultConfig()
	cfg.Datastores = []string{ds1, ds2}
	cfg.Writes = 5000
	cfg.UpdateRatio, cfg.DeleteRatio = 0.3, 0.1
	cfg.DuplicateFraction, cfg.HostileFraction = 0.1, 0.05
	return cfg
}

func TestPlanIsDeterministic(t *testing.T) {
	cfg := mixConfig()
	cfg.Writes = 300
	a, b := describe(planAll(cfg, 42, 1e6)), describe(planAll(cfg, 42, 1e6))
	if len(a) != 300 {
		t.Fatalf("planned %d ops, want 300", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("op %d differs between two plans with one seed:\n%s\n%s", i, a[i], b[i])
		}
	}
	c := describe(planAll(cfg, 43, 1e6))
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same > 30 {
		t.Errorf("seeds 42 and 43 share %d of 300 ops", same)
	}
	// Events on or off, the plan is the same.
	cfg.InjectEvents = false
	if d := describe(planAll(cfg, 42, 1e6)); fmt.Sprint(d) != fmt.Sprint(a) {
		t.Error("the plan depends on InjectEvents")
	}
}

func TestPlanMix(t *testing.T) {
	cfg := mixConfig()
	ops := planAll(cfg, 7, 1e6)
	kinds := map[event.Operation]int{}
	dups, hostile := 0, 0
	deleted := map[*resource]bool{}
	versions := map[*resource]int{}
	for _, o := range ops {
		kinds[o.kind]++
		if o.dup {
			dups++
		}
		if o.hostile >= 0 {
			hostile++
		}
		if deleted[o.res] {
			t.Fatalf("op %d writes a resource deleted before", o.seq)
		}
		switch o.kind {
		case event.Create:
			if o.after != nil || versions[o.res] != 0 {
				t.Fatalf("op %d: a create with a predecessor", o.seq)
			}
		case event.Update:
			if o.after == nil {
				t.Fatalf("op %d: an update without a predecessor", o.seq)
			}
			if versions[o.res]++; o.version != versions[o.res] {
				t.Fatalf("op %d: version %d, want %d", o.seq, o.version, versions[o.res])
			}
		case event.Delete:
			if o.after == nil {
				t.Fatalf("op %d: a delete without a predecessor", o.seq)
			}
			deleted[o.res] = true
		}
	}
	near := func(name string, got int, want float64) {
		if math.Abs(float64(got)-want) > 0.15*want {
			t.Errorf("%s: %d, want about %.0f", name, got, want)
		}
	}
	// Early writes find nothing to update, so updates and deletes fall a little short.
	near("updates", kinds[event.Update], 0.3*5000)
	near("deletes", kinds[event.Delete], 0.1*5000)
	near("duplicates", dups, 0.1*5000)
	near("hostile", hostile, 0.05*5000)
	if len(ops) != 5000 {
		t.Errorf("%d ops, want 5000", len(ops))
	}
}

func TestPlanHotResource(t *testing.T) {
	cfg := mixConfig()
	cfg.Writes, cfg.HotResourceUpdates = 50, 20
	ops := planAll(cfg, 1, 1e6)
	hot := ops[0].res
	if ops[0].kind != event.Create || hot.datastore != ds1 || hot.resourceType != "Patient" {
		t.Fatalf("first op %+v, want a create of the first datastore's first type", ops[0])
	}
	for i := 1; i <= 20; i++ {
		if ops[i].res != hot || ops[i].kind != event.Update || ops[i].version != i || ops[i].at != 0 {
			t.Fatalf("op %d is not update %d of the hot resource", i, i)
		}
	}
	if len(ops) != 50 {
		t.Errorf("%d ops, want 50 (the hot resource's count towards Writes)", len(ops))
	}
}

func TestPlanSchedule(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	times := func(cfg Config, n int) ([]time.Duration, []bool) {
		p := newPlanner(cfg.withDefaults(), 3)
		var at []time.Duration
		var burst []bool
		for range n {
			bn := p.burstN
			o := p.next()
			at = append(at, o.at)
			burst = append(burst, p.burstN > bn)
		}
		return at, burst
	}

	cfg := DefaultConfig()
	cfg.Datastores = []string{ds1, ds2}
	cfg.Writes = 0
	cfg.Duration = time.Hour

	// Steady: i/Rate.
	cfg.Rate = 4
	at, _ := times(cfg, 5)
	if fmt.Sprint(at) != fmt.Sprint([]time.Duration{0, ms(250), ms(500), ms(750), ms(1000)}) {
		t.Errorf("steady at 4/s: %v", at)
	}

	// As fast as possible.
	cfg.Rate = 0
	if at, _ := times(cfg, 3); fmt.Sprint(at) != "[0s 0s 0s]" {
		t.Errorf("no rate: %v", at)
	}

	// Bursts only (no rate): 4 writes over one second every 10 s, one (datastore, type) each.
	cfg.BurstSize, cfg.BurstEvery = 4, 10*time.Second
	ops := planAll(cfg, 3, 12)
	want := []time.Duration{0, ms(250), ms(500), ms(750), ms(10000), ms(10250), ms(10500), ms(10750), ms(20000), ms(20250), ms(20500), ms(20750)}
	for i, o := range ops {
		if o.at != want[i] {
			t.Errorf("burst op %d at %v, want %v", i, o.at, want[i])
		}
		if first := ops[i/4*4]; o.res.datastore != first.res.datastore || o.res.resourceType != first.res.resourceType {
			t.Errorf("burst op %d goes to another (datastore, type) than its burst's first", i)
		}
	}

	// Steady 1/s plus bursts of 2 every 5 s: merged in time order, bursts first on ties.
	cfg.Rate, cfg.BurstSize, cfg.BurstEvery = 1, 2, 5*time.Second
	at, burst := times(cfg, 10)
	wantAt := []time.Duration{0, 0, ms(500), ms(1000), ms(2000), ms(3000), ms(4000), ms(5000), ms(5000), ms(5500)}
	wantBurst := []bool{true, false, true, false, false, false, false, true, false, true}
	if fmt.Sprint(at) != fmt.Sprint(wantAt) || fmt.Sprint(burst) != fmt.Sprint(wantBurst) {
		t.Errorf("merged: at %v burst %v\nwant   %v burst %v", at, burst, wantAt, wantBurst)
	}

	// A short BurstEvery squeezes the burst into it.
	cfg.Rate, cfg.BurstSize, cfg.BurstEvery = 0, 4, 200*time.Millisecond
	if at, _ := times(cfg, 5); fmt.Sprint(at) != fmt.Sprint([]time.Duration{0, ms(50), ms(100), ms(150), ms(200)}) {
		t.Errorf("short bursts: %v", at)
	}
}

func TestExpectedWrites(t *testing.T) {
	for _, tc := range []struct {
		rate       float64
		size       int
		every, dur time.Duration
		hot        int
	}{
		{4, 0, 0, 10 * time.Second, 0},
		{3.3, 0, 0, 7 * time.Second, 0},
		{0, 5, 2 * time.Second, 9 * time.Second, 0},
		{0, 5, 2 * time.Second, 8*time.Second + 300*time.Millisecond, 0},
		{2, 3, 4 * time.Second, 13 * time.Second, 4},
		{0, 10, 100 * time.Millisecond, time.Second, 0},
	} {
		cfg := DefaultConfig()
		cfg.Datastores = []string{ds1}
		cfg.Writes, cfg.Duration, cfg.Rate, cfg.BurstSize, cfg.BurstEvery, cfg.HotResourceUpdates = 0, tc.dur, tc.rate, tc.size, tc.every, tc.hot
		planned := 0
		for _, o := range planAll(cfg, 1, 100000) {
			if o.at >= tc.dur {
				break
			}
			planned++
		}
		if got := expectedWrites(cfg.withDefaults()); got != planned {
			t.Errorf("%+v: expectedWrites %d, the plan has %d before the deadline", tc, got, planned)
		}
	}
	cfg := DefaultConfig()
	cfg.Writes, cfg.Duration = 0, time.Minute
	if got := expectedWrites(cfg); got != 0 {
		t.Errorf("as fast as possible for a minute: %d, want 0 (unknown)", got)
	}
}

// A Bundle's entries are in one datastore and touch distinct resources (they cannot wait for
// each other); every entry of every Bundle is planned.
func TestPlanBundles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Datastores = []string{ds1, ds2}
	cfg.Writes, cfg.Bundles, cfg.BundleSize, cfg.UpdateRatio, cfg.DeleteRatio, cfg.PatchRatio = 0, 40, 25, 0.5, 0.1, 0.5
	cfg = cfg.withDefaults()
	p := newPlanner(cfg, 3)
	n, patches, updates := 0, 0, 0
	dss := map[string]bool{}
	for b := p.nextBundle(); b != nil; b = p.nextBundle() {
		seen := map[*resource]bool{}
		for _, o := range b.entries {
			if seen[o.res] || o.res.datastore != b.entries[0].res.datastore {
				t.Fatalf("bundle %d: entry %d repeats a resource or leaves the datastore", b.seq, o.seq)
			}
			seen[o.res] = true
			if o.patch {
				patches++
			}
			if o.kind == event.Update {
				updates++
			}
			n++
		}
		dss[b.entries[0].res.datastore] = true
	}
	if n != 1000 || p.bundles != 40 || len(dss) != 2 || updates < 200 || patches == 0 || patches >= updates {
		t.Errorf("%d entries in %d bundles over %d datastores, %d updates, %d patches", n, p.bundles, len(dss), updates, patches)
	}
}

// An import alone (no writes, duration or Bundles) plans no single write: the run is the
// import only, not single writes without end.
func TestPlanImportAloneHasNoWrites(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Datastores = []string{ds1}
	cfg.Writes, cfg.Import = 0, 100
	if ops := planAll(cfg, 1, 10); len(ops) != 0 {
		t.Errorf("%d single writes planned besides the import, want none", len(ops))
	}
	if got := expectedWrites(cfg.withDefaults()); got != 100 {
		t.Errorf("expectedWrites %d, want the 100 imported", got)
	}
}
