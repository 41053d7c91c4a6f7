#!/bin/sh
# LocalStack ready hook (docker compose): the stream, the lease table is made by the KCL,
# and the custom bus. Idempotent.
set -e
awslocal kinesis create-stream --stream-name healthlake-cdc --shard-count 4 2>/dev/null || true
awslocal events create-event-bus --name healthlake-cdc 2>/dev/null || true
echo "healthlake-cdc: stream and bus ready"
