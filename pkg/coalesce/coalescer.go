package coalesce

import "time"

// Coalescer holds the open windows, one per key. It is not safe for concurrent use: one
// goroutine (the pipeline's scheduler) owns it and passes the time in.
type Coalescer struct {
	cfg  Config
	open map[Key]*Window
}

// New returns an empty Coalescer; cfg must be valid.
func New(cfg Config) *Coalescer {
	if cfg.MaxSpan == 0 {
		cfg.MaxSpan = DefaultMaxSpan
	}
	return &Coalescer{cfg: cfg, open: make(map[Key]*Window)}
}

// Add puts a hint into the open window of its key, opening one if needed. It returns the
// window when this hint filled it to MaxEvents: that window is closed and the caller owns it.
//
// A hint that would stretch the open window's span of event times beyond MaxSpan closes
// that window instead (returned like a full one) and opens a new window for the hint.
func (c *Coalescer) Add(now time.Time, key Key, h Hint, ack func()) (closed *Window) {
	w, ok := c.open[key]
	if ok && !w.fits(h.Time, c.cfg.MaxSpan) {
		delete(c.open, key)
		w.Closes = now
		closed, ok = w, false
	}
	if !ok {
		w = newWindow(key, now, c.cfg.Window)
		c.open[key] = w
	}
	w.add(h, ack)
	if w.Events() >= c.cfg.MaxEvents {
		if closed != nil {
			// Both at once only when MaxEvents is 1; hand out the older, close the new one on
			// the next tick.
			w.Closes = now
			return closed
		}
		delete(c.open, key)
		w.Closes = now
		return w
	}
	return closed
}

// Closed removes and returns the windows whose time is up at now.
func (c *Coalescer) Closed(now time.Time) []*Window {
	var out []*Window
	for k, w := range c.open {
		if !now.Before(w.Closes) {
			out = append(out, w)
			delete(c.open, k)
		}
	}
	return out
}

// NextClose is the earliest time a window closes, if any is open.
func (c *Coalescer) NextClose() (time.Time, bool) {
	var next time.Time
	for _, w := range c.open {
		if next.IsZero() || w.Closes.Before(next) {
			next = w.Closes
		}
	}
	return next, !next.IsZero()
}

// Drain closes and returns every open window (shutdown: their hints still need searching).
func (c *Coalescer) Drain(now time.Time) []*Window {
	out := make([]*Window, 0, len(c.open))
	for k, w := range c.open {
		w.Closes = now
		out = append(out, w)
		delete(c.open, k)
	}
	return out
}

// Open is the number of open windows.
func (c *Coalescer) Open() int { return len(c.open) }
