package kcl

import (
	"context"
	"errors"
	"fmt"
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
}

// leaseTable is the library's DynamoDB lease table with four changes:
//
//   - Init creates the table idempotently and waits until it is ACTIVE. The library checks
//     for the table and then creates it, so of two workers starting together on a new
//     application the loser gets ResourceInUseException and its worker fails to start; and
//     neither waits for the table to leave CREATING before writing leases to it.
//   - CheckpointSequence writes only while this worker owns the lease. The library's write
//     is an unconditional PutItem: a worker whose lease expired could move the checkpoint of
//     a shard another worker now reads, or take the lease item back.
//   - FetchCheckpoint reports the owner of a lease that has no checkpoint yet (a shard that
//     never had a record). The library leaves it unknown, and rebalancing gives up on the
//     whole table while any lease looks unowned: one idle shard disabled lease stealing.
//   - Once shutdown began, FetchCheckpoint fails. A child shard's reader polls its parent's
//     checkpoint in a loop that never looks at the stop signal; failing the poll ends that
//     reader so Worker.Shutdown can return.
type leaseTable struct {
	*chk.DynamoCheckpoint
	db      leaseTableAPI
	table   string
	timeout time.Duration
	// createTimeout bounds Init's wait for a new table to become ACTIVE.
	createTimeout time.Duration
	stopping      atomic.Bool
}

func newLeaseTable(lib *kclconfig.KinesisClientLibConfiguration, db *dynamodb.Client) *leaseTable {
	return &leaseTable{
		DynamoCheckpoint: chk.NewDynamoCheckpoint(lib).WithDynamoDB(db),
		db:               db,
		table:            lib.TableName,
		timeout:          checkpointWriteTimeout,
		createTimeout:    tableCreateTimeout,
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
	return l.DynamoCheckpoint.Init()
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

// CheckpointSequence writes shard's checkpoint, the same item the library writes, on the
// condition that the lease is still ours.
func (l *leaseTable) CheckpointSequence(shard *par.ShardStatus) error {
	owner := shard.GetLeaseOwner()
	item := map[string]types.AttributeValue{
		chk.LeaseKeyKey:       &types.AttributeValueMemberS{Value: shard.ID},
		chk.SequenceNumberKey: &types.AttributeValueMemberS{Value: shard.GetCheckpoint()},
		chk.LeaseOwnerKey:     &types.AttributeValueMemberS{Value: owner},
		chk.LeaseTimeoutKey:   &types.AttributeValueMemberS{Value: shard.GetLeaseTimeout().UTC().Format(time.RFC3339Nano)},
	}
	if shard.ParentShardId != "" {
		item[chk.ParentShardIdKey] = &types.AttributeValueMemberS{Value: shard.ParentShardId}
	}
	// The library calls without a context; bound the write so a hung call cannot hold a
	// shard's reader (and with it shutdown) forever.
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(l.table),
		Item:                      item,
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": chk.LeaseOwnerKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("checkpoint shard %s: %w (this worker is %q)", shard.ID, ErrLeaseLost, owner)
	}
	return err
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
