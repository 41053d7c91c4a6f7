package stacktest

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// TestDynamoDBConditionalWrites exercises what KCL leases rely on: create-if-absent and
// compare-and-set on a counter.
func TestDynamoDBConditionalWrites(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	db := stack.DynamoDBClient(t)
	table := stackUniqueName("stacktest-dynamodb")

	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		ctx := testContext(t, 10*time.Second)
		if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("DeleteTable: %v", err)
		}
	})
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 20*time.Second); err != nil {
		t.Fatalf("table %s did not become ACTIVE: %v", table, err)
	}

	key := map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: "shardId-000000000000"}}
	put := &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"leaseKey":     key["leaseKey"],
			"leaseOwner":   &types.AttributeValueMemberS{Value: "worker-a"},
			"leaseCounter": &types.AttributeValueMemberN{Value: "1"},
		},
		ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
	}
	if _, err := db.PutItem(ctx, put); err != nil {
		t.Fatalf("first conditional PutItem: %v", err)
	}
	_, err = db.PutItem(ctx, put)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem: got %v, want ConditionalCheckFailedException", err)
	}

	update := func(owner, expect string) error {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(table),
			Key:                 key,
			UpdateExpression:    aws.String("SET leaseOwner = :owner, leaseCounter = leaseCounter + :one"),
			ConditionExpression: aws.String("leaseCounter = :expect"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":owner":  &types.AttributeValueMemberS{Value: owner},
				":one":    &types.AttributeValueMemberN{Value: "1"},
				":expect": &types.AttributeValueMemberN{Value: expect},
			},
		})
		return err
	}
	if err := update("worker-b", "1"); err != nil {
		t.Fatalf("update with the current counter: %v", err)
	}
	// A worker holding the old counter has lost the lease and must not overwrite it.
	if err := update("worker-a", "1"); !errors.As(err, &ccf) {
		t.Fatalf("update with a stale counter: got %v, want ConditionalCheckFailedException", err)
	}

	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	owner, _ := got.Item["leaseOwner"].(*types.AttributeValueMemberS)
	counter, _ := got.Item["leaseCounter"].(*types.AttributeValueMemberN)
	if owner == nil || owner.Value != "worker-b" || counter == nil || counter.Value != "2" {
		t.Errorf("item after updates: %v, want owner worker-b, counter 2", got.Item)
	}
}

// TestServersSurviveAbortedRequests: a client that dies mid-request (a SIGKILLed KCL worker)
// must not take kinesalite or dynalite down; both rethrow the aborted request's error, which
// the wrappers in deploy/local survive.
func TestServersSurviveAbortedRequests(t *testing.T) {
	for _, name := range []string{stack.DynamoDB, stack.Kinesis} {
		addr := stack.Addr(t, name)
		for range 3 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 1000\r\n\r\n{\"partial\":", addr)
			time.Sleep(50 * time.Millisecond)
			c.Close()
		}
		time.Sleep(200 * time.Millisecond)
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("%s is gone after aborted requests: %v", name, err)
		}
		c.Close()
	}
}
