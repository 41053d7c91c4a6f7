package kcl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclconfig "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// ShardEnd is the checkpoint value of a shard that was read to its end (the library's
// checkpoint.ShardEnd). Child shards wait for their parents to reach it.
const ShardEnd = chk.ShardEnd

// ErrLeaseLost is returned by a checkpoint write when the lease table says another worker
// (or none) owns the shard now.
var ErrLeaseLost = errors.New("lease lost")

// errShuttingDown fails the library's checkpoint reads once shutdown began; see leaseTable.
var errShuttingDown = errors.New("kcl consumer is shutting down")

// leaseTableAPI is the DynamoDB calls leaseTable makes itself.
type leaseTableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// applicationStartKey is the lease table item (not a shard: see Init) holding the moment
// this application first started, the position LATEST means.
const applicationStartKey = "healthlake-cdc:application-started"

// applicationStartAttr is that item's attribute (RFC 3339, UTC).
const applicationStartAttr = "StartedAt"

// leaseTable is the library's DynamoDB lease table with these changes:
//
//   - Init creates the table idempotently and waits until it is ACTIVE. The library checks
//     for the table and then creates it, so of two workers starting together on a new
//     application the loser gets ResourceInUseException and its worker fails to start; and
//     neither waits for the table to leave CREATING before writing leases to it.
//   - With LATEST, Init records once (conditional write) the moment the application first
//     started and makes the library start every shard without a checkpoint AT_TIMESTAMP of
//     it. The library applies LATEST to each such shard when its reader starts, so children
//     of a split and shards whose owner died before a first checkpoint skipped what was
//     written meanwhile.
//   - CheckpointSequence is an UpdateItem of the checkpoint alone, on the condition that the
//     table names this worker (its configured id) as owner and that the lease has time left.
//     The library's write is an unconditional PutItem of the whole item from memory, whose
//     owner the library's lease sync overwrites with the table's: an old owner could move
//     the new owner's checkpoint back and erase its ClaimRequest.
//   - It watches the leases its readers hold (leaseWatch): a failed renewal — the shard was
//     claimed by another worker, taken over, or DynamoDB failed — or a refused checkpoint
//     tells the shard's processor at once that its lease is ending, and until the reader has
//     ended no GetLease of the shard succeeds, so the library neither renews it nor starts a
//     second reader of it.
//   - FetchCheckpoint reports the owner of a lease that has no checkpoint yet (a shard that
//     never had a record). The library leaves it unknown, and rebalancing gives up on the
//     whole table while any lease looks unowned: one idle shard disabled lease stealing.
//   - Once shutdown began, FetchCheckpoint fails. A child shard's reader polls its parent's
//     checkpoint in a loop that never looks at the stop signal; failing the poll ends that
//     reader so Worker.Shutdown can return.
type leaseTable struct {
	*chk.DynamoCheckpoint
	db     leaseTableAPI
	lib    *kclconfig.KinesisClientLibConfiguration
	table  string
	worker string
	latest bool // InitialPosition LATEST: start checkpoint-less shards at the application's start
	now    func() time.Time
	// margin: a lease with less than this left is treated as lost (no more checkpoints), so a
	// write never lands after another worker could have taken the lease over.
	margin  time.Duration
	timeout time.Duration
	// createTimeout bounds Init's wait for a new table to become ACTIVE.
	createTimeout time.Duration
	stopping      atomic.Bool
	// startedAt is the application's first start (set by Init with LATEST).
	startedAt time.Time

	mu      sync.Mutex
	watches map[string]*leaseWatch
}

func newLeaseTable(lib *kclconfig.KinesisClientLibConfiguration, db *dynamodb.Client, latest bool, now func() time.Time) *leaseTable {
	return &leaseTable{
		DynamoCheckpoint: chk.NewDynamoCheckpoint(lib).WithDynamoDB(db),
		db:               db,
		lib:              lib,
		table:            lib.TableName,
		worker:           lib.WorkerID,
		latest:           latest,
		now:              now,
		margin:           time.Duration(lib.FailoverTimeMillis) * time.Millisecond / 4,
		timeout:          checkpointWriteTimeout,
		createTimeout:    tableCreateTimeout,
		watches:          map[string]*leaseWatch{},
	}
}

// Init makes sure the lease table exists and is ACTIVE, creating it (on-demand capacity) if
// it is missing. A table that exists already, or that another worker is creating at the same
// moment, is success. The library's Init then finds the table and creates nothing.
func (l *leaseTable) Init() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.createTimeout)
	defer cancel()
	if err := l.ensureTable(ctx); err != nil {
		return fmt.Errorf("lease table %s: %w", l.table, err)
	}
	if l.latest {
		t, err := l.applicationStart(ctx)
		if err != nil {
			return fmt.Errorf("lease table %s: application start: %w", l.table, err)
		}
		l.startedAt = t
		// The library reads this when each reader starts (getStartingPosition), after Init.
		l.lib.WithTimestampAtInitialPositionInStream(&t)
	}
	return l.DynamoCheckpoint.Init()
}

// applicationStart returns the moment the application first started, recording now if no
// worker did before. The item lives in the lease table, which the library tolerates: its
// lease sync skips items without an owner and a checkpoint and ignores ids that are not
// shards of the stream (clientlibrary/checkpoint/dynamodb-checkpointer.go:472-483), the
// rebalancer and the shard loop only look at shards listed by Kinesis (worker.go:301-369,
// dynamodb-checkpointer.go:361-385), and shard sync deletes only leases of shards it had
// listed itself (worker.go:524-534).
func (l *leaseTable) applicationStart(ctx context.Context) (time.Time, error) {
	now := l.now().UTC()
	_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.table),
		Item: map[string]types.AttributeValue{
			chk.LeaseKeyKey:      &types.AttributeValueMemberS{Value: applicationStartKey},
			applicationStartAttr: &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": chk.LeaseKeyKey},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return now, nil
	case !errors.As(err, &ccf):
		return time.Time{}, err
	}
	out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		ConsistentRead: aws.Bool(true),
		Key:            map[string]types.AttributeValue{chk.LeaseKeyKey: &types.AttributeValueMemberS{Value: applicationStartKey}},
	})
	if err != nil {
		return time.Time{}, err
	}
	v, ok := out.Item[applicationStartAttr].(*types.AttributeValueMemberS)
	if !ok {
		return time.Time{}, fmt.Errorf("item %s has no %s", applicationStartKey, applicationStartAttr)
	}
	return time.Parse(time.RFC3339Nano, v.Value)
}

func (l *leaseTable) ensureTable(ctx context.Context) error {
	_, err := l.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(l.table)})
	var notFound *types.ResourceNotFoundException
	switch {
	case err == nil:
	case errors.As(err, &notFound):
		_, err = l.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(l.table),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(chk.LeaseKeyKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(chk.LeaseKeyKey), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another worker created it first
			return fmt.Errorf("create: %w", err)
		}
	default:
		return fmt.Errorf("describe: %w", err)
	}
	// TableExistsWaiter waits for ACTIVE. Its default first delay (20s) is far longer than a
	// table takes on DynamoDB Local stand-ins or usually on AWS.
	w := dynamodb.NewTableExistsWaiter(l.db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 5*time.Second
	})
	deadline, _ := ctx.Deadline()
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(l.table)}, time.Until(deadline)); err != nil {
		return fmt.Errorf("wait until ACTIVE: %w", err)
	}
	return nil
}

// CheckpointSequence writes shard's checkpoint on the condition that the lease table names
// this worker as the owner, that the shard was not ended, and that the lease has more than
// margin left by this worker's clock. It sets only the checkpoint (and the parent), so the
// owner, lease timeout and claim request stay as the table has them.
func (l *leaseTable) CheckpointSequence(shard *par.ShardStatus) error {
	cp := shard.GetCheckpoint()
	if left := shard.GetLeaseTimeout().Sub(l.now()); left < l.margin {
		err := fmt.Errorf("checkpoint shard %s: %w (lease of %q has %s left)", shard.ID, ErrLeaseLost, l.worker, left.Round(time.Millisecond))
		l.endLease(shard, err)
		return err
	}
	set := "SET #cp = :cp"
	values := map[string]types.AttributeValue{
		":cp":  &types.AttributeValueMemberS{Value: cp},
		":me":  &types.AttributeValueMemberS{Value: l.worker},
		":end": &types.AttributeValueMemberS{Value: ShardEnd},
	}
	names := map[string]string{"#cp": chk.SequenceNumberKey, "#owner": chk.LeaseOwnerKey}
	if shard.ParentShardId != "" {
		set += ", #parent = :parent"
		names["#parent"] = chk.ParentShardIdKey
		values[":parent"] = &types.AttributeValueMemberS{Value: shard.ParentShardId}
	}
	// The library calls without a context; bound the write so a hung call cannot hold a
	// shard's reader (and with it shutdown) forever.
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       map[string]types.AttributeValue{chk.LeaseKeyKey: &types.AttributeValueMemberS{Value: shard.ID}},
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("#owner = :me AND (attribute_not_exists(#cp) OR #cp <> :end)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		err = fmt.Errorf("checkpoint shard %s: %w (this worker is %q)", shard.ID, ErrLeaseLost, l.worker)
		l.endLease(shard, err)
	}
	return err
}

// GetLease takes or renews shard's lease for this worker (the library's GetLease), except
// while a reader of the shard here is handing it over: then it fails, which ends that
// reader's renewal and keeps the library from starting another reader of the shard before
// the first one ended. A failed renewal tells the shard's processor its lease is ending.
func (l *leaseTable) GetLease(shard *par.ShardStatus, worker string) error {
	l.mu.Lock()
	w := l.watches[shard.ID]
	l.mu.Unlock()
	if w != nil && w.isEnding() {
		return fmt.Errorf("shard %s: %w: its reader here is handing it over", shard.ID, ErrLeaseLost)
	}
	if w == nil { // a take, not a renewal
		if err := l.freshCheckpoint(shard, worker); err != nil {
			return err
		}
	}
	if err := l.DynamoCheckpoint.GetLease(shard, worker); err != nil {
		if w != nil {
			w.end(fmt.Errorf("lease renewal: %w", err))
		}
		return err
	}
	if w == nil {
		l.mu.Lock()
		if l.watches[shard.ID] == nil {
			l.watches[shard.ID] = newLeaseWatch(shard)
		}
		l.mu.Unlock()
	}
	return nil
}

// freshCheckpoint prepares a take of shard's lease. Upstream, the take is a PutItem of the
// checkpoint in memory — the one FetchCheckpoint read a moment before — conditioned on the
// owner and lease timeout only (clientlibrary/checkpoint/dynamodb-checkpointer.go:133-238):
// the old owner's last checkpoint, landing between that read and its release, was put back
// (a soak saw a checkpoint move backwards). So the checkpoint is read again here, and only
// once nobody else can write one: the lease released (no owner: a checkpoint needs the
// owner's name) or run out (a checkpoint needs margin left). A lease another worker still
// holds is not taken, as upstream would not either.
func (l *leaseTable) freshCheckpoint(shard *par.ShardStatus, worker string) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		ConsistentRead: aws.Bool(true),
		Key:            map[string]types.AttributeValue{chk.LeaseKeyKey: &types.AttributeValueMemberS{Value: shard.ID}},
	})
	if err != nil {
		return fmt.Errorf("shard %s: read before take: %w", shard.ID, err)
	}
	if owner, ok := out.Item[chk.LeaseOwnerKey].(*types.AttributeValueMemberS); ok && owner.Value != "" && owner.Value != worker {
		if v, ok := out.Item[chk.LeaseTimeoutKey].(*types.AttributeValueMemberS); ok {
			if until, err := time.Parse(time.RFC3339Nano, v.Value); err == nil && l.now().Before(until) {
				return chk.ErrLeaseNotAcquired{} // held by another worker: not an error, as upstream
			}
		}
	}
	if v, ok := out.Item[chk.SequenceNumberKey].(*types.AttributeValueMemberS); ok {
		shard.SetCheckpoint(v.Value)
	}
	return nil
}

// RemoveLeaseOwner runs when a shard's reader ends (the library's releaseLease): it
// releases the lease if the table still names this worker, and ends the shard's watch,
// telling its processor (which may never have been shut down) to let go of its tracker.
func (l *leaseTable) RemoveLeaseOwner(shardID string) error {
	l.mu.Lock()
	w := l.watches[shardID]
	delete(l.watches, shardID)
	l.mu.Unlock()
	if w != nil {
		w.end(errReaderEnded)
		w.readerEnded()
	}
	return l.release(shardID)
}

// release removes this worker as the owner of shardID's lease (if it still is), so another
// worker can take the lease at once instead of after it expires.
func (l *leaseTable) release(shardID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       map[string]types.AttributeValue{chk.LeaseKeyKey: &types.AttributeValueMemberS{Value: shardID}},
		UpdateExpression:          aws.String("REMOVE #owner"),
		ConditionExpression:       aws.String("#owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#owner": chk.LeaseOwnerKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: l.worker}},
	})
	return err
}

// watch returns the watch of the lease this worker took on shardID, nil if none.
func (l *leaseTable) watch(shardID string) *leaseWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watches[shardID]
}

func (l *leaseTable) endLease(shard *par.ShardStatus, err error) {
	if w := l.watch(shard.ID); w != nil && w.shard == shard {
		w.end(err)
	}
}

// errReaderEnded is why a watch ends when its reader ended by itself.
var errReaderEnded = errors.New("the shard's reader ended")

// leaseWatch follows one lease this worker holds, from the GetLease that took it to the end
// of its reader.
type leaseWatch struct {
	shard *par.ShardStatus

	once   sync.Once
	ending chan struct{} // closed when the lease is ending
	mu     sync.Mutex
	reason error
	onEnd  func() // the processor's cleanup once the reader ended
	ended  bool
}

func newLeaseWatch(shard *par.ShardStatus) *leaseWatch {
	return &leaseWatch{shard: shard, ending: make(chan struct{})}
}

func (w *leaseWatch) end(reason error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.reason = reason
		w.mu.Unlock()
		close(w.ending)
	})
}

func (w *leaseWatch) isEnding() bool {
	select {
	case <-w.ending:
		return true
	default:
		return false
	}
}

func (w *leaseWatch) why() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// leaseLeft is the time until the lease expires, by this worker's clock.
func (w *leaseWatch) leaseLeft(now time.Time) time.Duration {
	return w.shard.GetLeaseTimeout().Sub(now)
}

// onReaderEnd sets f to run once the reader ended (at once if it did already).
func (w *leaseWatch) onReaderEnd(f func()) {
	w.mu.Lock()
	if !w.ended {
		w.onEnd = f
		f = nil
	}
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

func (w *leaseWatch) readerEnded() {
	w.mu.Lock()
	f := w.onEnd
	w.ended, w.onEnd = true, nil
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

// FetchCheckpoint reads shard's checkpoint and owner, or fails once shutdown began.
func (l *leaseTable) FetchCheckpoint(shard *par.ShardStatus) error {
	if l.stopping.Load() {
		return errShuttingDown
	}
	err := l.DynamoCheckpoint.FetchCheckpoint(shard)
	if errors.Is(err, chk.ErrSequenceIDNotFound) {
		if oerr := l.fetchOwner(shard); oerr != nil {
			return oerr
		}
	}
	return err
}

// fetchOwner sets shard's lease owner and timeout from the lease table, as the library's
// FetchCheckpoint does only for leases that have a checkpoint.
func (l *leaseTable) fetchOwner(shard *par.ShardStatus) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(l.table),
		ConsistentRead: aws.Bool(true),
		Key:            map[string]types.AttributeValue{chk.LeaseKeyKey: &types.AttributeValueMemberS{Value: shard.ID}},
	})
	if err != nil {
		return err
	}
	if v, ok := out.Item[chk.LeaseOwnerKey].(*types.AttributeValueMemberS); ok {
		shard.SetLeaseOwner(v.Value)
	}
	if v, ok := out.Item[chk.LeaseTimeoutKey].(*types.AttributeValueMemberS); ok && v.Value != "" {
		t, err := time.Parse(time.RFC3339Nano, v.Value)
		if err != nil {
			return err
		}
		shard.SetLeaseTimeout(t)
	}
	return nil
}

// ClaimShard marks shard as wanted by claimID (lease stealing). The library's claim is
// conditional on the lease timeout it last saw; refresh it first, since for a lease without
// a checkpoint the library's own refresh stops short.
func (l *leaseTable) ClaimShard(shard *par.ShardStatus, claimID string) error {
	if err := l.FetchCheckpoint(shard); err != nil && !errors.Is(err, chk.ErrSequenceIDNotFound) {
		return err
	}
	return l.DynamoCheckpoint.ClaimShard(shard, claimID)
}
