package dedup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Identity is one change: a resource at a version. DatastoreID, ResourceType and ID are
// required. VersionID may be empty (a history delete entry without a version), but then every
// versionless change of the resource shares one key for the dedup TTL, so a delete, re-create
// and delete within it would be emitted once: callers that can should put a stand-in that
// differs per change there (e.g. "deleted@" + the entry's lastUpdated).
type Identity struct {
	DatastoreID, ResourceType, ID, VersionID string
}

// Result is what Claim found for one Identity.
type Result int

const (
	// New: a new change and we hold its claim (just taken, or still ours from an earlier
	// attempt). Emit it, then MarkDone it — or Release it if the emit failed.
	New Result = iota + 1
	// Duplicate: the change was already emitted within the dedup TTL. Skip it.
	Duplicate
	// Pending: another worker holds the claim and is mid-emit. Do not skip and do not ack: claim
	// again later; the claim expires after the claim TTL if that worker died.
	Pending
)

func (r Result) String() string {
	switch r {
	case New:
		return "new"
	case Duplicate:
		return "duplicate"
	case Pending:
		return "pending"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

const (
	doneValue     = "done"
	pendingPrefix = "pending:"
)

// releaseScript deletes KEYS[1] only while it holds our pending token ARGV[1].
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Store claims and marks changes in Redis. It is safe for concurrent use.
type Store struct {
	rdb      redis.UniversalClient
	opts     Options
	token    string // "pending:<owner>", the value of our claims
	claimMS  int64
	doneSecs int64
	// The same values boxed once, so a pipeline of n commands does not box them n times.
	tokenArg, claimMSArg, doneArg, doneSecsArg any
}

// NewStore returns a Store using rdb (a *redis.Client, *redis.ClusterClient or any other
// UniversalClient). Options are defaulted and validated.
func NewStore(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("dedup: nil redis client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		rdb:      rdb,
		opts:     opts,
		token:    pendingPrefix + opts.Owner,
		claimMS:  opts.ClaimTTL.Milliseconds(),
		doneSecs: int64((opts.DoneTTL + time.Second - 1) / time.Second), // EX takes whole seconds
		doneArg:  doneValue,
	}
	s.tokenArg, s.claimMSArg, s.doneSecsArg = s.token, s.claimMS, s.doneSecs
	return s, nil
}

// WithOwner returns a Store sharing s's client and settings whose claims carry owner. The
// pipeline takes one per window attempt: two overlapping windows of one process must not both
// win a change because they share a process-wide token.
func (s *Store) WithOwner(owner string) *Store {
	c := *s
	c.opts.Owner = owner
	c.token = pendingPrefix + owner
	c.tokenArg = c.token
	return &c
}

// Owner is the token that marks this Store's claims.
func (s *Store) Owner() string { return s.opts.Owner }

// Key is the Redis key of id (see the package doc for the format).
func (s *Store) Key(id Identity) string {
	ds, rt, rid, v := url.PathEscape(id.DatastoreID), url.PathEscape(id.ResourceType),
		url.PathEscape(id.ID), url.PathEscape(id.VersionID)
	var b strings.Builder
	b.Grow(len(s.opts.Prefix) + len(ds) + len(rt) + len(rid) + len(v) + 5)
	b.WriteString(s.opts.Prefix)
	b.WriteByte('{')
	b.WriteString(ds)
	b.WriteByte('/')
	b.WriteString(rt)
	b.WriteByte('/')
	b.WriteString(rid)
	b.WriteString("}/")
	b.WriteString(v)
	return b.String()
}

// Claim tries to claim every identity in one pipelined round trip and returns a Result per
// index of ids. An error means Redis could not answer (unreachable, timeout, cluster down): no
// Result is returned and the caller must not ack.
func (s *Store) Claim(ctx context.Context, ids []Identity) ([]Result, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if err := validate(ids); err != nil {
		return nil, err
	}
	sets := make([]*redis.BoolCmd, len(ids))
	gets := make([]*redis.StringCmd, len(ids))
	pipe := s.rdb.Pipeline()
	for i, id := range ids {
		key := s.Key(id)
		// A literal SET ... NX PX rather than SetNX, which switches to EX for whole seconds.
		sets[i] = redis.NewBoolCmd(ctx, "set", key, s.tokenArg, "nx", "px", s.claimMSArg)
		gets[i] = redis.NewStringCmd(ctx, "get", key)
		_ = pipe.Process(ctx, sets[i])
		_ = pipe.Process(ctx, gets[i])
	}
	// Exec reports the first failed command; a GET of a key that expired in between reads as
	// redis.Nil, which is an answer, not a failure, so look at each command instead.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dedup: claim %d changes: %w", len(ids), err)
	}
	out := make([]Result, len(ids))
	for i := range ids {
		won, err := sets[i].Result()
		if err != nil {
			return nil, fmt.Errorf("dedup: claim %d changes: %w", len(ids), err)
		}
		if won {
			out[i] = New
			continue
		}
		v, err := gets[i].Result()
		switch {
		case errors.Is(err, redis.Nil):
			// The key expired between SET and GET: nobody holds it now, but we did not take it
			// either. Pending makes the caller claim again shortly.
			out[i] = Pending
		case err != nil:
			return nil, fmt.Errorf("dedup: claim %d changes: %w", len(ids), err)
		case v == doneValue:
			out[i] = Duplicate
		case v == s.token:
			// Ours from an earlier attempt (a retried window, or a pipeline the client re-sent
			// after a lost reply).
			out[i] = New
		default:
			out[i] = Pending
		}
	}
	return out, nil
}

// MarkDone records that EventBridge accepted these changes, for the dedup TTL, in one pipelined
// round trip. It overwrites any claim: the change is emitted, whoever claimed it.
func (s *Store) MarkDone(ctx context.Context, ids []Identity) error {
	if len(ids) == 0 {
		return nil
	}
	if err := validate(ids); err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	for _, id := range ids {
		_ = pipe.Process(ctx, redis.NewStatusCmd(ctx, "set", s.Key(id), s.doneArg, "ex", s.doneSecsArg))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dedup: mark %d changes done: %w", len(ids), err)
	}
	return nil
}

// Release gives up our claims on these changes (their emit failed) so that any worker can claim
// them at once instead of after the claim TTL. A key that no longer holds our token — done,
// expired, or claimed by another worker since — is left as it is.
func (s *Store) Release(ctx context.Context, ids []Identity) error {
	if len(ids) == 0 {
		return nil
	}
	if err := validate(ids); err != nil {
		return err
	}
	keys := make([][]string, len(ids))
	for i, id := range ids {
		keys[i] = []string{s.Key(id)}
	}
	cmds, err := s.release(ctx, keys, releaseScript.EvalSha)
	if err != nil {
		return err
	}
	// Redis does not know the script yet (a new or restarted server, a new cluster node, SCRIPT
	// FLUSH): send those again with EVAL, which also caches it for next time. Script.Run does
	// this for single commands, but inside a pipeline the error arrives only after Exec.
	var again [][]string
	for i, c := range cmds {
		switch err := c.Err(); {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			again = append(again, keys[i])
		default:
			return fmt.Errorf("dedup: release %d claims: %w", len(ids), err)
		}
	}
	if len(again) == 0 {
		return nil
	}
	cmds, err = s.release(ctx, again, releaseScript.Eval)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return fmt.Errorf("dedup: release %d claims: %w", len(ids), err)
		}
	}
	return nil
}

type evalFunc func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd

// release runs the compare-and-delete script for each key in one pipeline; a NOSCRIPT reply is
// left in the returned commands for the caller to handle.
func (s *Store) release(ctx context.Context, keys [][]string, eval evalFunc) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = eval(ctx, pipe, k, s.tokenArg)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, fmt.Errorf("dedup: release %d claims: %w", len(keys), err)
	}
	return cmds, nil
}

func validate(ids []Identity) error {
	for i, id := range ids {
		if id.DatastoreID == "" || id.ResourceType == "" || id.ID == "" {
			return fmt.Errorf("dedup: identity %d (%s/%s/%s) lacks its datastore, type or id",
				i, id.DatastoreID, id.ResourceType, id.ID)
		}
	}
	return nil
}
