package verify

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Table renders the report as a small aligned text table for people.
func (r Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	row("writes", fmt.Sprint(r.Writes))
	row("resources changed", fmt.Sprint(r.ResourcesChanged))
	row("deletes", fmt.Sprintf("%d (%d announced)", r.Deletes, r.DeletesAnnounced))
	row("events emitted", fmt.Sprint(r.EventsEmitted))
	if r.EventsForeign > 0 {
		row("events for other resources", fmt.Sprint(r.EventsForeign))
	}
	// Breakdowns only for runs that wrote more than single REST writes or dropped hints.
	mixed := len(r.ByVia) > 1 || r.ByVia["rest"] != r.Writes
	if mixed {
		row("written via", counts(r.ByVia))
	}
	if r.HintsDropped > 0 {
		row("hints dropped", fmt.Sprintf("%d (%d of their writes missing)", r.HintsDropped, r.MissingHintDropped))
	}
	missing := fmt.Sprint(r.Missing)
	if r.Missing > 0 && (mixed || r.HintsDropped > 0 || r.MissingPatches > 0) {
		missing += " (" + counts(r.MissingByVia)
		if r.MissingPatches > 0 {
			missing += fmt.Sprintf("; %d patches", r.MissingPatches)
		}
		if r.HintsDropped > 0 {
			missing += fmt.Sprintf("; %d with their hint, %d with it dropped", r.MissingWithHint, r.MissingHintDropped)
		}
		missing += ")"
	}
	row("missing", missing)
	row("duplicates", fmt.Sprint(r.Duplicates))
	row("rejected", rejected(r.Rejected))
	if r.Latency.Count > 0 {
		l := r.Latency
		row("latency p50/p95/p99/max", strings.Join([]string{short(l.P50), short(l.P95), short(l.P99), short(l.Max)}, " / "))
	} else {
		row("latency p50/p95/p99/max", "-")
	}
	if r.BadEventLines > 0 {
		row("undecodable event lines", fmt.Sprint(r.BadEventLines))
	}
	tw.Flush()
	for _, e := range r.MissingExamples {
		fmt.Fprintf(&b, "missing: %s %s/%s (%s, lastUpdated %s): %s\n", e.DatastoreID, e.ResourceType, e.ID,
			e.Operation, e.LastUpdated.UTC().Format(time.RFC3339Nano), e.Why)
	}
	return b.String()
}

func rejected(m map[string]int) string {
	total := 0
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(m)) {
		total += m[reason]
		parts = append(parts, fmt.Sprintf("%s %d", reason, m[reason]))
	}
	if total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// short rounds a latency for reading: milliseconds under 10 s, tenths of a second above.
func short(d time.Duration) string {
	if d < 10*time.Second && d > -10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// counts lists non-zero counts in a fixed order: "rest 10, batch 200, import 2000".
func counts(m map[string]int) string {
	var parts []string
	for _, k := range []string{"rest", "batch", "transaction", "import"} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}
