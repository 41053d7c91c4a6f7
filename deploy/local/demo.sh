#!/usr/bin/env bash
# The demo: the whole pipeline on the local stack. with-stack.sh has started the stack and
# exported its endpoints (AWS_ENDPOINT_URL_*, CDC_REDIS_URL, CDC_FHIR_ENDPOINT) before this runs.
#
# It creates a 4-shard stream, starts the consumer with short windows, simulates about 2,000
# FHIR writes with bursts, repeated updates, duplicated CloudTrail records and a few hostile
# ones, waits for the pipeline to drain, verifies every write was announced and prints a
# summary. Exit status: 0 when nothing is missing, 1 otherwise.
#
# Knobs: DEMO_WRITES (2000), DEMO_RATE (writes/s, 30), DEMO_SHARDS (4).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${CDC_LOCAL_STATE:-$root/.local}
id=$(date -u +%Y%m%dT%H%M%SZ)
run="$state/demo/$id"
mkdir -p "$run" "$state/bin"

say() { printf '\n== %s\n' "$*"; }

say "building the consumer and the producer"
(cd "$root" && go build -o "$state/bin/" ./consumer ./producer)
producer="$state/bin/producer"

# A fresh stream, lease table and event Source per run: runs never see each other's data.
export CDC_STREAM="hlcdc-demo-$id" CDC_APPLICATION="hlcdc-demo-$id" CDC_SOURCE="healthlake.cdc.demo.$id"
export CDC_BUS=healthlake-cdc-demo
metrics_port=${DEMO_METRICS_PORT:-19090}
export CDC_HTTP_ADDR="127.0.0.1:$metrics_port"

say "creating stream $CDC_STREAM (${DEMO_SHARDS:-4} shards)"
"$producer" create-stream --shards "${DEMO_SHARDS:-4}"

say "starting the consumer (log: $run/consumer.log)"
CDC_WINDOW=1s CDC_SETTLE=1s CDC_LEAD=2s CDC_LAG=2s CDC_VERIFY_AFTER=5s CDC_LEASE_FAILOVER=5s \
  CDC_LOG_LEVEL=warn CDC_DEDUP_PREFIX="demo:$id:" \
  "$state/bin/consumer" >"$run/consumer.log" 2>&1 &
consumer=$!
stop_consumer() {
  if kill -0 "$consumer" 2>/dev/null; then
    kill -TERM "$consumer" 2>/dev/null || true
    wait "$consumer" 2>/dev/null || true
  fi
}
trap stop_consumer EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$metrics_port") 2>/dev/null; then break; fi
  kill -0 "$consumer" 2>/dev/null || { tail -n 20 "$run/consumer.log"; echo "the consumer exited" >&2; exit 1; }
  sleep 0.2
done

say "simulating ${DEMO_WRITES:-2000} writes (manifest: $run/manifest.jsonl)"
"$producer" simulate --manifest "$run/manifest.jsonl" \
  --datastore-count 3 --types Patient,Observation,Encounter,Condition \
  --writes "${DEMO_WRITES:-2000}" --rate "${DEMO_RATE:-30}" --burst-size 150 --burst-every 15s \
  --update-ratio 0.5 --hot-resource-updates 50 --duplicate-fraction 0.05 --hostile-fraction 0.005

say "waiting for the pipeline to drain, then verifying"
status=0
"$producer" verify --manifest "$run/manifest.jsonl" --wait 120s \
  --consumer-metrics "http://$CDC_HTTP_ADDR/metrics" | tee "$run/summary.txt" || status=$?

# This run's events, for a person to read (change events carry synthetic data only).
recorder_out="$state/eventbridge/events.jsonl"
if [ -f "$recorder_out" ]; then
  grep -F "\"$CDC_SOURCE\"" "$recorder_out" >"$run/events.jsonl" || true
fi

stop_consumer
trap - EXIT
say "done"
echo "events emitted by this run: $run/events.jsonl ($(wc -l <"$run/events.jsonl" 2>/dev/null || echo 0) lines)"
echo "summary: $run/summary.txt; consumer log: $run/consumer.log"
if [ "$status" -ne 0 ]; then
  echo "verify found missing writes (exit $status)" >&2
fi
exit "$status"
