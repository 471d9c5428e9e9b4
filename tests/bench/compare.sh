#!/usr/bin/env bash
# Compare mqttb with Mosquitto using mqttb-bench (see docs/benchmarks.md).
#
# Starts both brokers on free ports of 127.0.0.1, runs every scenario against
# both (alternating which goes first), RUNS times, and prints one Markdown
# table of medians. Both brokers are stopped on exit, error or Ctrl-C.
#
# Usage: tests/bench/compare.sh [options] [MQTTB_BINARY]
#   MQTTB_BINARY        default: build/cli/mqttb (relative to the source root)
#   -r RUNS             runs per scenario and broker (default 3)
#   -d SECONDS          measured seconds per throughput run (default 5)
#   -w SECONDS          warm-up seconds before measuring (default 1)
#   -i N                idle connections for the memory scenario (default 2000)
#   --big               19000 idle connections (needs ulimit -Hn >= 19100)
#   -s LIST             scenarios to run, comma-separated (default: all):
#                       q0,q1,q2,fanin,fanout,lat,idle
#   --bench PATH        generator (default: build/tests/bench/mqttb-bench)
#   --mosquitto PATH    default: /usr/sbin/mosquitto
#   --raw FILE          also write every RESULT line to FILE
#   --attacks           instead of the scenarios, run tests/bench/attacks.py
#                       (a bystander's latency under four attacks, both
#                       brokers; it starts and stops them itself), passing
#                       MQTTB_BINARY, --mosquitto, -d, -w, -s LIST (attacks:
#                       none,held-qos2,fanout-offline,sub-bomb,retained-sweep)
#                       and --raw FILE (as --json FILE); its defaults are
#                       -d 10 -w 2
#   -h, --help
#
# SPDX-License-Identifier: MIT
set -euo pipefail

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=3
DURATION=5
WARMUP=1
IDLE_N=2000
MQTTB=""
BENCH=""
MOSQUITTO=/usr/sbin/mosquitto
RAW=""
ONLY=""
ATTACKS=0
ATTACK_ARGS=()

usage() { sed -n '2,/^# SPDX/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//; /^SPDX/d'; }
die() { echo "compare.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    -r) RUNS=$2; shift 2 ;;
    -d) DURATION=$2; ATTACK_ARGS+=(-d "$2"); shift 2 ;;
    -w) WARMUP=$2; ATTACK_ARGS+=(-w "$2"); shift 2 ;;
    -i) IDLE_N=$2; shift 2 ;;
    --big) IDLE_N=19000; shift ;;
    -s) ONLY=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --mosquitto) MOSQUITTO=$2; shift 2 ;;
    --raw) RAW=$2; shift 2 ;;
    --attacks) ATTACKS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [ -z "$MQTTB" ] || die "only one mqttb binary"; MQTTB=$1; shift ;;
  esac
done
if [ "$ATTACKS" = 1 ]; then
  [ -z "$MQTTB" ] || ATTACK_ARGS+=(--mqttb "$MQTTB")
  [ -z "$ONLY" ] || ATTACK_ARGS+=(-a "$ONLY")
  [ -z "$RAW" ] || ATTACK_ARGS+=(--json "$RAW")
  exec python3 "$SRC_ROOT/tests/bench/attacks.py" --mosquitto "$MOSQUITTO" "${ATTACK_ARGS[@]}"
fi
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "bad -r $RUNS"
[[ "$IDLE_N" =~ ^[1-9][0-9]*$ ]] || die "bad -i $IDLE_N"
[ -n "$MQTTB" ] || MQTTB=$SRC_ROOT/build/cli/mqttb
[ -n "$BENCH" ] || BENCH=$SRC_ROOT/build/tests/bench/mqttb-bench
[ -x "$MQTTB" ] || die "mqttb not found: $MQTTB (build it: ninja -C build)"
[ -x "$BENCH" ] || die "mqttb-bench not found: $BENCH (build it: ninja -C build)"
[ -x "$MOSQUITTO" ] || die "mosquitto not found: $MOSQUITTO"

ALL_KEYS=(q0 q1 q2 fanin fanout lat idle)
SCEN_KEYS=("${ALL_KEYS[@]}")
if [ -n "$ONLY" ]; then
  IFS=, read -r -a SCEN_KEYS <<<"$ONLY"
  for key in "${SCEN_KEYS[@]}"; do
    [[ " ${ALL_KEYS[*]} " == *" $key "* ]] || die "unknown scenario '$key' (${ALL_KEYS[*]})"
  done
fi

# Open files: the generator, mqttb and mosquitto all inherit this limit.
NEED_FDS=$((IDLE_N + 100))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$NEED_FDS" ]; then
  die "ulimit -n is $NOFILE (hard $(ulimit -Hn)); $IDLE_N idle connections need $NEED_FDS"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttb-compare.XXXXXX")
MQTTB_PID=""
MOSQ_PID=""
MQTTB_PORT=""
MOSQ_PORT=""
BENCH_PID=""

stop_pid() {  # pid
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$BENCH_PID" ] || stop_pid "$BENCH_PID"
  stop_pid "$MQTTB_PID"
  stop_pid "$MOSQ_PID"
  if [ $rc -ne 0 ]; then
    echo "compare.sh: exiting with status $rc; logs kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

wait_listening() {  # name pid port log
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; die "$1 exited at startup"; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$1 is not listening on port $3"
}

start_mqttb() {
  MQTTB_PORT=$(free_port)
  cat > "$TMP/mqttb.conf" <<EOF
max_inflight_messages 1000
max_queued_messages 100000
max_connections -1
log_type error
log_type warning
EOF
  # setsid: a Ctrl-C in the terminal reaches the script, which stops the
  # brokers itself (and would otherwise count them as crashed).
  setsid "$MQTTB" -c "$TMP/mqttb.conf" -b 127.0.0.1 -p "$MQTTB_PORT" >>"$TMP/mqttb.log" 2>&1 &
  MQTTB_PID=$!
  wait_listening mqttb "$MQTTB_PID" "$MQTTB_PORT" "$TMP/mqttb.log"
}

start_mosquitto() {
  MOSQ_PORT=$(free_port)
  cat > "$TMP/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
max_connections -1
persistence false
log_dest stderr
log_type error
log_type warning
EOF
  setsid "$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/mosquitto.log" 2>&1 &
  MOSQ_PID=$!
  wait_listening mosquitto "$MOSQ_PID" "$MOSQ_PORT" "$TMP/mosquitto.log"
}

restart() {  # broker
  if [ "$1" = mqttb ]; then
    stop_pid "$MQTTB_PID"; MQTTB_PID=""; start_mqttb
  else
    stop_pid "$MOSQ_PID"; MOSQ_PID=""; start_mosquitto
  fi
}

# Scenarios: key | label | value field | generator arguments
declare -A LABEL FIELD ARGS
LABEL[q0]="QoS 0 p2p 16→16, msgs/s";           FIELD[q0]=msgs_per_s
LABEL[q1]="QoS 1 p2p 16→16, msgs/s";           FIELD[q1]=msgs_per_s
LABEL[q2]="QoS 2 p2p 16→16, msgs/s";           FIELD[q2]=msgs_per_s
LABEL[fanin]="QoS 0 fan-in 16→1, msgs/s";      FIELD[fanin]=msgs_per_s
LABEL[fanout]="QoS 0 fan-out 1→16, msgs/s";    FIELD[fanout]=msgs_per_s
LABEL[lat]="p50 latency 1→1, window 1, µs";    FIELD[lat]=p50_us
LABEL[idle]="idle memory, bytes/connection ($IDLE_N conns)"; FIELD[idle]=mem_per_conn
COMMON=(-w 64 -l 64 -d "$DURATION" --warmup "$WARMUP" --quiet)
ARGS[q0]="-s p2p -q 0 -n 16"
ARGS[q1]="-s p2p -q 1 -n 16"
ARGS[q2]="-s p2p -q 2 -n 16"
ARGS[fanin]="-s fanin -q 0 -n 16"
ARGS[fanout]="-s fanout -q 0 -n 16"
ARGS[lat]="-s p2p -q 0 -n 1"
ARGS[idle]="-s idle -q 0 -n $IDLE_N"

declare -A VALUES FAILS
PROBLEMS=()

# run_one key broker run
run_one() {
  local key=$1 broker=$2 run=$3 port pid out rc line val args
  if [ "$key" = idle ]; then
    restart "$broker"  # a fresh process, so the RSS baseline is not inflated
  fi
  if [ "$broker" = mqttb ]; then port=$MQTTB_PORT; pid=$MQTTB_PID; else port=$MOSQ_PORT; pid=$MOSQ_PID; fi
  # shellcheck disable=SC2206
  args=(${ARGS[$key]} "${COMMON[@]}")
  if [ "$key" = lat ]; then args+=(-w 1); fi
  if [ "$key" = idle ]; then args+=(--pid "$pid"); fi
  out="$TMP/out.$key.$broker.$run"
  rc=0
  timeout --foreground $((${DURATION%.*} + ${WARMUP%.*} + 120)) \
    "$BENCH" -h 127.0.0.1 -p "$port" "${args[@]}" >"$out" 2>&1 || rc=$?
  if [ $rc -eq 130 ] || [ $rc -eq 143 ]; then
    exit $rc  # the generator was interrupted: so are we
  fi
  line=$(grep '^RESULT ' "$out" | tail -n 1 || true)
  [ -z "$RAW" ] || echo "broker=$broker run=$run ${line:-RESULT none rc=$rc}" >>"$RAW"
  val=$(sed -n "s/.* ${FIELD[$key]}=\([^ ]*\).*/\1/p" <<<"$line")
  printf '  run %d %-9s %-48s %s\n' "$run" "$broker" "${LABEL[$key]}" "${val:-FAIL} (rc=$rc)" >&2
  if [ $rc -ne 0 ] || [ -z "$val" ] || [ "$val" = na ]; then
    FAILS[$key,$broker]=$(( ${FAILS[$key,$broker]:-0} + 1 ))
    PROBLEMS+=("run $run, $broker, ${LABEL[$key]}: rc=$rc; $(grep -E 'ERROR|FAILED|warning' "$out" | head -n 3 | tr "\n" " " || true)")
  else
    VALUES[$key,$broker]="${VALUES[$key,$broker]:-} $val"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    PROBLEMS+=("run $run, $broker died during '${LABEL[$key]}'; log tail: $(tail -n 3 "$TMP/$broker.log" | tr '\n' ' ')")
    restart "$broker"
  fi
}

median() {  # values...
  [ $# -gt 0 ] || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}

fmt() {  # key value
  if [ -z "$2" ]; then echo "FAIL"; return; fi
  case "${FIELD[$1]}" in
    p50_us) printf '%.1f' "$2" ;;
    *) printf '%.0f' "$2" ;;
  esac
}

start_mqttb
start_mosquitto
echo "mqttb: $MQTTB (port $MQTTB_PORT), mosquitto: $($MOSQUITTO -h 2>&1 | head -n 1 | sed 's/mosquitto version /mosquitto /') (port $MOSQ_PORT)" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "runs=$RUNS duration=${DURATION}s warmup=${WARMUP}s idle=$IDLE_N, $(nproc) CPUs, load $LOAD_BEFORE" >&2

for run in $(seq "$RUNS"); do
  for key in "${SCEN_KEYS[@]}"; do
    if [ $((run % 2)) -eq 1 ]; then order=(mqttb mosquitto); else order=(mosquitto mqttb); fi
    for broker in "${order[@]}"; do
      run_one "$key" "$broker" "$run"
    done
  done
done

echo
echo "| scenario | mqttb | mosquitto | ratio |"
echo "|---|---:|---:|---:|"
for key in "${SCEN_KEYS[@]}"; do
  # shellcheck disable=SC2086
  a=$(median ${VALUES[$key,mqttb]:-})
  # shellcheck disable=SC2086
  b=$(median ${VALUES[$key,mosquitto]:-})
  ratio="–"
  if [ -n "$a" ] && [ -n "$b" ]; then
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }')
  fi
  fa=$(fmt "$key" "$a"); fb=$(fmt "$key" "$b")
  [ -z "${FAILS[$key,mqttb]:-}" ] || fa="$fa (${FAILS[$key,mqttb]} failed)"
  [ -z "${FAILS[$key,mosquitto]:-}" ] || fb="$fb (${FAILS[$key,mosquitto]} failed)"
  echo "| ${LABEL[$key]} | $fa | $fb | $ratio |"
done
echo
echo "Median of $RUNS runs; ratio = mqttb / mosquitto (higher is better for msgs/s, lower for latency and memory)."
echo "$(nproc) CPUs shared by generator and broker; load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)."
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  echo
  echo "Problems:"
  for p in "${PROBLEMS[@]}"; do echo "- $p"; done
  exit 1
fi
