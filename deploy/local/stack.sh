#!/usr/bin/env bash
# The local stack: stand-ins for Kinesis, DynamoDB, Redis, HealthLake (FHIR R4) and EventBridge,
# every one bound to 127.0.0.1, so `make demo` and the tests run without Docker or AWS.
#
#   stack.sh up [SERVICE...]     install what is missing, start what is not running (idempotent)
#   stack.sh down [SERVICE...]   stop exactly the processes this script started (by recorded PID)
#   stack.sh status              what runs where
#   stack.sh env                 export lines that point the AWS SDK and our programs at the stack
#
# SERVICE is one of: kinesis dynamodb redis fhir eventbridge (default: all).
# Ports come from CDC_LOCAL_<SERVICE>_PORT; state (PIDs, logs, recorder output) lives in
# CDC_LOCAL_STATE (default: .local/ at the repository root).
# With STACK_STARTED_FILE set, `up` appends the names of the services it started to that file,
# so a caller (make test) can stop only what it started.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${CDC_LOCAL_STATE:-$root/.local}
all_services=(kinesis dynamodb redis fhir eventbridge)

port_of() {
  case $1 in
    kinesis) echo "${CDC_LOCAL_KINESIS_PORT:-14567}" ;;
    dynamodb) echo "${CDC_LOCAL_DYNAMODB_PORT:-14568}" ;;
    redis) echo "${CDC_LOCAL_REDIS_PORT:-16379}" ;;
    fhir) echo "${CDC_LOCAL_FHIR_PORT:-18090}" ;;
    eventbridge) echo "${CDC_LOCAL_EVENTBRIDGE_PORT:-14010}" ;;
    *) echo "unknown service: $1" >&2; return 1 ;;
  esac
}

# A word that must appear in the command line of the recorded PID; it guards `down` against
# killing an unrelated process that got the same PID after ours died.
signature_of() {
  case $1 in
    kinesis) echo kinesis.js ;;
    dynamodb) echo dynamodb.js ;;
    redis) echo redis-server ;;
    fhir) echo fhir/server.js ;;
    eventbridge) echo eventbridge-recorder ;;
  esac
}

log() { printf 'stack: %s\n' "$*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  local svc=$1 pidfile="$state/pids/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(signature_of "$svc")"
}

running() { [ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

ensure_redis() {
  command -v redis-server >/dev/null && return 0
  log "installing redis-server (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The Debian package starts a system-wide redis on 6379; we never use it, and stop it so the
  # machine ends up with only what this script started.
  as_root service redis-server stop >/dev/null 2>&1 || true
}

ensure_node_modules() {
  command -v node >/dev/null || { log "node (20+) is required but not installed"; return 1; }
  local stamp="$here/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
    log "installing node packages (npm ci in deploy/local)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

ensure_recorder() {
  log "building the EventBridge recorder"
  (cd "$root" && go build -o "$state/bin/eventbridge-recorder" ./deploy/local/recorder)
}

start() {
  local svc=$1 port
  port=$(port_of "$svc")
  if pid_alive "$svc"; then
    log "$svc already running (pid $(cat "$state/pids/$svc.pid"), 127.0.0.1:$port)"
    return 0
  fi
  if listening "$port"; then
    log "$svc: port $port is taken by a process this script did not start; set CDC_LOCAL_${svc^^}_PORT"
    return 1
  fi
  local logfile="$state/logs/$svc.log" pidfile="$state/pids/$svc.pid"
  case $svc in
    redis)
      ensure_redis
      redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize yes --pidfile "$pidfile" --logfile "$logfile" --dir "$state"
      ;;
    kinesis | dynamodb)
      ensure_node_modules
      env "CDC_LOCAL_${svc^^}_PORT=$port" setsid nohup node "$here/$svc.js" >"$logfile" 2>&1 </dev/null &
      echo $! >"$pidfile"
      ;;
    fhir)
      ensure_node_modules
      CDC_LOCAL_FHIR_PORT=$port setsid nohup node "$here/fhir/server.js" >"$logfile" 2>&1 </dev/null &
      echo $! >"$pidfile"
      ;;
    eventbridge)
      ensure_recorder
      # A new recorder starts a new file: tests scan it whole, and a long-lived one grows
      # without bound (the demo copies each run's events out).
      : >"$state/eventbridge/events.jsonl"
      CDC_LOCAL_EVENTBRIDGE_PORT=$port setsid nohup "$state/bin/eventbridge-recorder" \
        --out "$state/eventbridge/events.jsonl" >"$logfile" 2>&1 </dev/null &
      echo $! >"$pidfile"
      ;;
  esac
  local i
  for i in $(seq 1 150); do
    if listening "$port"; then
      # redis writes its pidfile a moment after it listens
      for i in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
      log "$svc started (pid $(cat "$pidfile"), 127.0.0.1:$port, log $logfile)"
      [ -n "${STACK_STARTED_FILE:-}" ] && echo "$svc" >>"$STACK_STARTED_FILE"
      return 0
    fi
    sleep 0.2
  done
  log "$svc did not start listening on 127.0.0.1:$port within 30s; last lines of $logfile:"
  tail -n 20 "$logfile" >&2 || true
  return 1
}

stop() {
  local svc=$1 pidfile="$state/pids/$1.pid" pid i
  if ! pid_alive "$svc"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  # An exited process may linger as a zombie until init reaps it; a zombie has an empty
  # cmdline, so "still running" means "still has one".
  for i in $(seq 1 50); do
    running "$pid" || break
    sleep 0.1
  done
  running "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  log "$svc stopped (pid $pid)"
}

status() {
  local svc port
  printf '%-12s %-8s %-8s %-22s\n' SERVICE STATE PID ADDRESS
  for svc in "${all_services[@]}"; do
    port=$(port_of "$svc")
    if pid_alive "$svc"; then
      printf '%-12s %-8s %-8s %-22s\n' "$svc" running "$(cat "$state/pids/$svc.pid")" "127.0.0.1:$port"
    elif listening "$port"; then
      printf '%-12s %-8s %-8s %-22s\n' "$svc" foreign - "127.0.0.1:$port (not started by us)"
    else
      printf '%-12s %-8s %-8s %-22s\n' "$svc" stopped - "127.0.0.1:$port"
    fi
  done
  echo "state: $state"
}

env_lines() {
  cat <<EOF
export AWS_REGION=\${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-local}
export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-local}
export AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$(port_of kinesis)
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(port_of dynamodb)
export AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:$(port_of eventbridge)
export AWS_ENDPOINT_URL_HEALTHLAKE=http://127.0.0.1:$(port_of fhir)
export CDC_REDIS_URL=redis://127.0.0.1:$(port_of redis)/0
export CDC_FHIR_ENDPOINT=http://127.0.0.1:$(port_of fhir)/datastore/{datastoreId}/r4/
export CDC_FHIR_AUTH=none
EOF
}

main() {
  local cmd=${1:-status}
  shift || true
  local services=("$@")
  [ ${#services[@]} -gt 0 ] || services=("${all_services[@]}")
  for svc in "${services[@]}"; do port_of "$svc" >/dev/null; done
  mkdir -p "$state/pids" "$state/logs" "$state/bin" "$state/eventbridge"
  case $cmd in
    up) for svc in "${services[@]}"; do start "$svc"; done ;;
    down) for svc in "${services[@]}"; do stop "$svc"; done ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 up|down|status|env [SERVICE...]" >&2; exit 2 ;;
  esac
}

main "$@"
