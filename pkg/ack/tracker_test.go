package ack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// seq returns a realistic 56-digit Kinesis sequence number that grows with i.
func seq(i int) string { return fmt.Sprintf("4959%052d", i) }

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "0", 0},
		{"0", "1", -1},
		{"9", "10", -1},
		{"10", "9", 1},
		{"123", "124", -1},
		{seq(1), seq(2), -1},
		{seq(10), seq(9), 1},
		{strings.Repeat("9", 39), "1" + strings.Repeat("0", 39), -1}, // past 128 bits
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestValid(t *testing.T) {
	for _, s := range []string{"0", "1", seq(0), strings.Repeat("9", 129)} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{"", "01", "-1", "1.5", "12a", " 1", strings.Repeat("9", 130)} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

func TestAddRejects(t *testing.T) {
	tr := New()
	if _, err := tr.Add("x1"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Add(x1) = %v, want ErrMalformed", err)
	}
	if _, err := tr.Add(seq(5)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{seq(5), seq(4)} {
		if _, err := tr.Add(s); !errors.Is(err, ErrOutOfOrder) {
			t.Errorf("Add(%s) after %s = %v, want ErrOutOfOrder", s, seq(5), err)
		}
	}
	if n := tr.InFlight(); n != 1 {
		t.Errorf("InFlight = %d after rejected adds, want 1", n)
	}
}

func TestEmpty(t *testing.T) {
	tr := New()
	if s, ok := tr.Checkpoint(); ok || s != "" {
		t.Errorf("Checkpoint() = %q, %v on empty tracker", s, ok)
	}
	if tr.InFlight() != 0 || tr.Pending() || tr.Outstanding() != 0 || tr.Last() != "" {
		t.Error("empty tracker reports work")
	}
	tr.Done(Ticket{n: 0}) // never issued: ignored
	if tr.InFlight() != 0 {
		t.Error("Done with a foreign ticket changed the tracker")
	}
}

// step is one action of a table test: add record i, or mark record i done; after it the
// checkpoint must be want ("" = none) with inFlight records in flight.
type step struct {
	add, done int // record index+1; 0 = not this action
	want      int // record index+1 of the expected checkpoint; 0 = none
	inFlight  int
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{add: 1, inFlight: 1}, {add: 2, inFlight: 2}, {add: 3, inFlight: 3},
			{done: 1, want: 1, inFlight: 2}, {done: 2, want: 2, inFlight: 1}, {done: 3, want: 3, inFlight: 0},
		}},
		{"out of order", []step{
			{add: 1, inFlight: 1}, {add: 2, inFlight: 2}, {add: 3, inFlight: 3},
			{done: 3, inFlight: 2}, {done: 2, inFlight: 1}, {done: 1, want: 3, inFlight: 0},
		}},
		{"gap in the middle", []step{
			{add: 1, inFlight: 1}, {add: 2, inFlight: 2}, {add: 3, inFlight: 3},
			{done: 1, want: 1, inFlight: 2}, {done: 3, want: 1, inFlight: 1}, {add: 4, want: 1, inFlight: 2},
			{done: 2, want: 3, inFlight: 1}, {done: 4, want: 4, inFlight: 0},
		}},
		{"duplicate dones", []step{
			{add: 1, inFlight: 1}, {add: 2, inFlight: 2},
			{done: 2, inFlight: 1}, {done: 2, inFlight: 1},
			{done: 1, want: 2, inFlight: 0}, {done: 1, want: 2, inFlight: 0}, {done: 2, want: 2, inFlight: 0},
		}},
		{"adds after drained", []step{
			{add: 1, inFlight: 1}, {done: 1, want: 1, inFlight: 0},
			{add: 2, want: 1, inFlight: 1}, {done: 2, want: 2, inFlight: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New()
			tickets := map[int]Ticket{}
			for i, s := range tt.steps {
				switch {
				case s.add > 0:
					tk, err := tr.Add(seq(s.add))
					if err != nil {
						t.Fatalf("step %d: Add: %v", i, err)
					}
					tickets[s.add] = tk
				case s.done > 0:
					tr.Done(tickets[s.done])
				}
				got, ok := tr.Checkpoint()
				want := ""
				if s.want > 0 {
					want = seq(s.want)
				}
				if got != want || ok != (want != "") {
					t.Errorf("step %d: Checkpoint() = %q, %v; want %q", i, got, ok, want)
				}
				if n := tr.InFlight(); n != s.inFlight {
					t.Errorf("step %d: InFlight() = %d, want %d", i, n, s.inFlight)
				}
				if tr.Pending() != (s.inFlight > 0) {
					t.Errorf("step %d: Pending() = %v", i, tr.Pending())
				}
			}
		})
	}
}

// TestRandomOrder is the property the checkpoint must keep: whatever the ack order, the
// checkpoint is exactly the end of the done prefix — never past a record that is not done,
// and never behind a complete prefix.
func TestRandomOrder(t *testing.T) {
	for round := range 20 {
		r := rand.New(rand.NewPCG(uint64(round), 42))
		tr := New()
		const n = 5000
		tickets := make([]Ticket, 0, n)
		done := make([]bool, n)
		var open []int // added, not done
		prefix := 0    // records [0, prefix) are done
		for len(tickets) < n || len(open) > 0 {
			if len(tickets) < n && (len(open) == 0 || r.IntN(3) > 0) {
				tk, err := tr.Add(seq(len(tickets) + 1))
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, len(tickets))
				tickets = append(tickets, tk)
			} else {
				k := r.IntN(len(open))
				i := open[k]
				open[k] = open[len(open)-1]
				open = open[:len(open)-1]
				done[i] = true
				tr.Done(tickets[i])
				if r.IntN(10) == 0 {
					tr.Done(tickets[i]) // duplicate ack
				}
				for prefix < len(tickets) && done[prefix] {
					prefix++
				}
			}
			got, ok := tr.Checkpoint()
			if prefix == 0 {
				if ok {
					t.Fatalf("round %d: checkpoint %s before record 0 is done", round, got)
				}
				continue
			}
			if want := seq(prefix); got != want {
				t.Fatalf("round %d: checkpoint %s, want %s (end of done prefix)", round, got, want)
			}
			if tr.InFlight() != len(open) {
				t.Fatalf("round %d: InFlight %d, want %d", round, tr.InFlight(), len(open))
			}
			if tr.Outstanding() != len(tickets)-prefix {
				t.Fatalf("round %d: Outstanding %d, want %d", round, tr.Outstanding(), len(tickets)-prefix)
			}
		}
		if s, _ := tr.Checkpoint(); s != seq(n) {
			t.Fatalf("round %d: final checkpoint %s, want %s", round, s, seq(n))
		}
	}
}

// TestMemoryFlat checks the done prefix is dropped: a long in-order run keeps the queue short.
func TestMemoryFlat(t *testing.T) {
	tr := New()
	var prev Ticket
	for i := range 100000 {
		tk, err := tr.Add(seq(i + 1))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			tr.Done(prev)
		}
		prev = tk
	}
	if c := cap(tr.queue); c > 256 {
		t.Errorf("queue capacity %d after an in-order run with one record in flight", c)
	}
}

func TestConcurrentDone(t *testing.T) {
	tr := New()
	const n = 2000
	tickets := make([]Ticket, n)
	for i := range tickets {
		tickets[i], _ = tr.Add(seq(i + 1))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				tr.Done(tickets[i])
			}
		})
	}
	wg.Wait()
	if s, _ := tr.Checkpoint(); s != seq(n) || tr.Pending() {
		t.Errorf("after concurrent dones: checkpoint %s pending %v", s, tr.Pending())
	}
}

func BenchmarkAddDone(b *testing.B) {
	tr := New()
	window := make([]Ticket, 0, 1000)
	for i := 0; b.Loop(); i++ {
		tk, _ := tr.Add(seq(i + 1))
		window = append(window, tk)
		if len(window) == cap(window) {
			for j := len(window) - 1; j >= 0; j-- {
				tr.Done(window[j])
			}
			window = window[:0]
		}
	}
}
