package dedup

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Defaults of Options (DESIGN.md: claim TTL 60 s, dedup TTL 24 h).
const (
	DefaultPrefix   = "cdc:dedup:"
	DefaultClaimTTL = 60 * time.Second
	DefaultDoneTTL  = 24 * time.Hour
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Prefix starts every key; default DefaultPrefix. Use a distinct prefix per deployment
	// sharing a Redis (and per test).
	Prefix string
	// ClaimTTL is how long a claim blocks other workers if its owner dies mid-emit; default
	// 60 s. It should exceed the longest emit (PutEvents with all its retries), or a slow emit
	// can be claimed and emitted twice. Millisecond precision.
	ClaimTTL time.Duration
	// DoneTTL is how long an emitted change is remembered; default 24 h. Whole seconds, at
	// least one.
	DoneTTL time.Duration
	// Owner identifies this process's claims and must be unique among the workers sharing the
	// Redis, e.g. the KCL worker id plus a random suffix. Default: hostname, pid and 8 random
	// bytes. A restarted process gets a new owner, so its old claims count as someone else's
	// until they expire.
	Owner string
}

// Validate reports options that cannot work. Zero values are defaults, not errors.
func (o Options) Validate() error {
	var errs []error
	if o.ClaimTTL < 0 || (o.ClaimTTL > 0 && o.ClaimTTL < time.Millisecond) {
		errs = append(errs, fmt.Errorf("ClaimTTL %v: want at least 1ms", o.ClaimTTL))
	}
	if o.DoneTTL < 0 || (o.DoneTTL > 0 && o.DoneTTL < time.Second) {
		errs = append(errs, fmt.Errorf("DoneTTL %v: want at least 1s", o.DoneTTL))
	}
	if o.DoneTTL > 0 && o.ClaimTTL > 0 && o.DoneTTL < o.ClaimTTL {
		errs = append(errs, fmt.Errorf("DoneTTL %v is shorter than ClaimTTL %v", o.DoneTTL, o.ClaimTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dedup: options: %w", err)
	}
	return nil
}

func (o Options) withDefaults() Options {
	o.Prefix = cmp.Or(o.Prefix, DefaultPrefix)
	o.ClaimTTL = cmp.Or(o.ClaimTTL, DefaultClaimTTL)
	o.DoneTTL = cmp.Or(o.DoneTTL, DefaultDoneTTL)
	if o.Owner == "" {
		o.Owner = RandomOwner()
	}
	return o
}

// RandomOwner returns hostname-pid-<16 hex digits>, unique enough to tell the claims of
// concurrent processes (and of a process and its restarted self) apart.
func RandomOwner() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r == ':' || r > '~' {
			return '_'
		}
		return r
	}, host)
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
