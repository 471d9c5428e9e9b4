#!/usr/bin/env bash
# Compare mqttb with Mosquitto (and optionally FlashMQ) using mqttb-bench
# (see docs/benchmarks.md).
#
# Starts the brokers on free ports of 127.0.0.1, runs every scenario against
# each (rotating which goes first), RUNS times, and prints one Markdown table
# of medians; throughput cells also give the broker's CPU time per delivered
# message. Every broker is stopped on exit, error or Ctrl-C.
#
# Usage: tests/bench/compare.sh [options] [MQTTB_BINARY]
#   MQTTB_BINARY        default: build/cli/mqttb (relative to the source root)
#   -r RUNS             runs per scenario and broker (default 3)
#   -d SECONDS          measured seconds per throughput run (default 5)
#   -w SECONDS          warm-up seconds before measuring (default 1)
#   -i N                idle connections for the memory scenario (default 2000)
#   --big               19000 idle connections (needs ulimit -Hn >= 19100)
#   -s LIST             scenarios to run, comma-separated (default: all):
#                       q0,q1,q2,fanin,fanout,lat,idle,
#                       q0-1k,q0-16k,q0-64k,q0-256k,q0-1m,q1-4k,
#                       fanout-64k,fanout-1000,p2p-500
#                       or groups: base (the first seven), sweep (q0 to q0-1m),
#                       acked (q1,q2,q1-4k), many (fanout-64k,fanout-1000,
#                       p2p-500), all
#   --bench PATH        generator (default: build/tests/bench/mqttb-bench)
#   --mosquitto PATH    default: /usr/sbin/mosquitto
#   --flashmq PATH      also measure FlashMQ (default: $FLASHMQ_BIN if set;
#                       not measured otherwise); built by hand, see the docs
#   --raw FILE          also write every RESULT line to FILE
#   --copy-payload      the generator's subscribers read every payload byte
#                       (default: large payloads are discarded in the kernel
#                       past their first 16 bytes; see docs/benchmarks.md)
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
FLASHMQ=${FLASHMQ_BIN:-}
RAW=""
ONLY=""
ATTACKS=0
ATTACK_ARGS=()
GEN_ARGS=()

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
    --flashmq) FLASHMQ=$2; shift 2 ;;
    --raw) RAW=$2; shift 2 ;;
    --copy-payload) GEN_ARGS+=(--copy-payload); shift ;;
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
BROKERS=(mqttb mosquitto)
if [ -n "$FLASHMQ" ]; then
  [ -x "$FLASHMQ" ] || die "flashmq not found: $FLASHMQ"
  BROKERS+=(flashmq)
fi

BASE_KEYS=(q0 q1 q2 fanin fanout lat idle)
SWEEP_KEYS=(q0 q0-1k q0-16k q0-64k q0-256k q0-1m)
ACKED_KEYS=(q1 q2 q1-4k)
MANY_KEYS=(fanout-64k fanout-1000 p2p-500)
ALL_KEYS=("${BASE_KEYS[@]}" q0-1k q0-16k q0-64k q0-256k q0-1m q1-4k "${MANY_KEYS[@]}")
SCEN_KEYS=("${ALL_KEYS[@]}")
if [ -n "$ONLY" ]; then
  IFS=, read -r -a wanted <<<"$ONLY"
  SCEN_KEYS=()
  for key in "${wanted[@]}"; do
    case "$key" in
      base) add=("${BASE_KEYS[@]}") ;;
      sweep) add=("${SWEEP_KEYS[@]}") ;;
      acked) add=("${ACKED_KEYS[@]}") ;;
      many) add=("${MANY_KEYS[@]}") ;;
      all) add=("${ALL_KEYS[@]}") ;;
      *) [[ " ${ALL_KEYS[*]} " == *" $key "* ]] ||
           die "unknown scenario '$key' (${ALL_KEYS[*]}, or base, sweep, acked, many, all)"
         add=("$key") ;;
    esac
    for k in "${add[@]}"; do  # each scenario once, in the order asked for
      [[ " ${SCEN_KEYS[*]} " == *" $k "* ]] || SCEN_KEYS+=("$k")
    done
  done
fi

# Connections per scenario (for the open-file limit).
declare -A CONNS=([fanout-1000]=1001 [p2p-500]=1000 [fanout-64k]=101 [idle]=$IDLE_N)
NEED_FDS=100
for key in "${SCEN_KEYS[@]}"; do
  n=${CONNS[$key]:-32}
  [ $((n + 100)) -le "$NEED_FDS" ] || NEED_FDS=$((n + 100))
done
# Open files: the generator and the brokers all inherit this limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$NEED_FDS" ]; then
  die "ulimit -n is $NOFILE (hard $(ulimit -Hn)); the scenarios need $NEED_FDS"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttb-compare.XXXXXX")
declare -A PID PORT  # per broker
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
  local rc=$? b
  trap - EXIT INT TERM
  [ -z "$BENCH_PID" ] || stop_pid "$BENCH_PID"
  for b in "${BROKERS[@]}"; do
    stop_pid "${PID[$b]:-}"
  done
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

# Each writes TMP/BROKER.conf for a free port and starts the broker with
# setsid (a Ctrl-C in the terminal reaches the script, which stops the
# brokers itself and would otherwise count them as crashed); output goes to
# TMP/BROKER.log.
start_mqttb() {
  local port; port=$(free_port)
  # max_output_bytes: as FlashMQ's client_max_write_buffer_size below (the
  # default 1 MiB drops QoS 0 messages of 1 MiB sent two at a time).
  cat > "$TMP/mqttb.conf" <<EOF
max_inflight_messages 1000
max_queued_messages 100000
max_output_bytes 67108864
max_connections -1
log_type error
log_type warning
EOF
  setsid "$MQTTB" -c "$TMP/mqttb.conf" -b 127.0.0.1 -p "$port" >>"$TMP/mqttb.log" 2>&1 &
  PID[mqttb]=$!; PORT[mqttb]=$port
}

start_mosquitto() {
  local port; port=$(free_port)
  cat > "$TMP/mosquitto.conf" <<EOF
listener $port 127.0.0.1
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
  PID[mosquitto]=$!; PORT[mosquitto]=$port
}

# FlashMQ: no storage_dir (no persistence), default thread_count (one worker
# thread per CPU). Its per-client limits are raised to about what the other
# two get: QoS 1/2 messages and bytes pending per client (defaults 512 and
# 64 KiB), and the write buffer, past which QoS 0 messages for a client are
# dropped (default 1 MiB). max_packet_size keeps its default (256 MiB).
start_flashmq() {
  local port nofile; port=$(free_port)
  nofile=$(ulimit -n); [ "$nofile" != unlimited ] || nofile=1000000
  cat > "$TMP/flashmq.conf" <<EOF
log_file $TMP/flashmq.log
log_level warning
allow_anonymous true
rlimit_nofile $nofile
max_qos_msg_pending_per_client 65535
max_qos_bytes_pending_per_client 1073741824
client_max_write_buffer_size 67108864
listen {
  protocol mqtt
  inet_protocol ip4
  inet4_bind_address 127.0.0.1
  port $port
}
EOF
  setsid "$FLASHMQ" --config-file "$TMP/flashmq.conf" >>"$TMP/flashmq.log" 2>&1 &
  PID[flashmq]=$!; PORT[flashmq]=$port
}

start() {  # broker
  "start_$1"
  wait_listening "$1" "${PID[$1]}" "${PORT[$1]}" "$TMP/$1.log"
}

restart() {  # broker
  stop_pid "${PID[$1]:-}"; PID[$1]=""; start "$1"
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
LABEL[q0-1k]="QoS 0 p2p 16→16, 1 KiB, window 64, msgs/s"
LABEL[q0-16k]="QoS 0 p2p 16→16, 16 KiB, window 16, msgs/s"
LABEL[q0-64k]="QoS 0 p2p 16→16, 64 KiB, window 8, msgs/s"
LABEL[q0-256k]="QoS 0 p2p 16→16, 256 KiB, window 4, msgs/s"
LABEL[q0-1m]="QoS 0 p2p 16→16, 1 MiB, window 2, msgs/s"
LABEL[q1-4k]="QoS 1 p2p 16→16, 4 KiB, window 64, msgs/s"
LABEL[fanout-64k]="QoS 0 fan-out 1→100, 64 KiB, window 4, msgs/s"
LABEL[fanout-1000]="QoS 0 fan-out 1→1000, msgs/s"
LABEL[p2p-500]="QoS 0 p2p 500→500, window 4, msgs/s"
COMMON=(-d "$DURATION" --warmup "$WARMUP" --quiet)
# Payload 64 bytes and window 64 unless given.
ARGS[q0]="-s p2p -q 0 -n 16"
ARGS[q1]="-s p2p -q 1 -n 16"
ARGS[q2]="-s p2p -q 2 -n 16"
ARGS[fanin]="-s fanin -q 0 -n 16"
ARGS[fanout]="-s fanout -q 0 -n 16"
ARGS[lat]="-s p2p -q 0 -n 1 -w 1"
ARGS[idle]="-s idle -q 0 -n $IDLE_N"
ARGS[q0-1k]="-s p2p -q 0 -n 16 -l 1024"
ARGS[q0-16k]="-s p2p -q 0 -n 16 -l 16384 -w 16"
ARGS[q0-64k]="-s p2p -q 0 -n 16 -l 65536 -w 8"
ARGS[q0-256k]="-s p2p -q 0 -n 16 -l 262144 -w 4"
ARGS[q0-1m]="-s p2p -q 0 -n 16 -l 1048576 -w 2"
ARGS[q1-4k]="-s p2p -q 1 -n 16 -l 4096"
ARGS[fanout-64k]="-s fanout -q 0 -n 100 -l 65536 -w 4"
ARGS[fanout-1000]="-s fanout -q 0 -n 1000"
ARGS[p2p-500]="-s p2p -q 0 -n 500 -w 4"
for key in "${ALL_KEYS[@]}"; do
  [ -n "${FIELD[$key]:-}" ] || FIELD[$key]=msgs_per_s
done

declare -A VALUES CPUS FAILS RUNVAL RUNSTEAL RUNGEN
PROBLEMS=()
NOTES=()

field() {  # name line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# run_one key broker run
run_one() {
  local key=$1 broker=$2 run=$3 port pid out rc line val cpu pct steal gen lost args
  if [ "$key" = idle ]; then
    restart "$broker"  # a fresh process, so the RSS baseline is not inflated
  fi
  port=${PORT[$broker]}; pid=${PID[$broker]}
  # The defaults first, so the scenario's own -w and -l win.
  # shellcheck disable=SC2206
  args=(-w 64 -l 64 ${ARGS[$key]} "${COMMON[@]}" ${GEN_ARGS[@]+"${GEN_ARGS[@]}"} --pid "$pid")
  out="$TMP/out.$key.$broker.$run"
  rc=0
  timeout --foreground $((${DURATION%.*} + ${WARMUP%.*} + 120)) \
    "$BENCH" -h 127.0.0.1 -p "$port" "${args[@]}" >"$out" 2>&1 || rc=$?
  if [ $rc -eq 130 ] || [ $rc -eq 143 ]; then
    exit $rc  # the generator was interrupted: so are we
  fi
  line=$(grep '^RESULT ' "$out" | tail -n 1 || true)
  [ -z "$RAW" ] || echo "broker=$broker run=$run ${line:-RESULT none rc=$rc}" >>"$RAW"
  val=$(field "${FIELD[$key]}" "$line")
  cpu=$(field broker_cpu_us_per_msg "$line")
  lost=$(field lost "$line")
  pct=$(field broker_cpu_pct "$line")
  steal=$(field steal_pct "$line")
  gen=$(field gen_cpu_us_per_msg "$line")
  [ "$cpu" != na ] || cpu=""
  [ "$steal" != na ] || steal=""
  [ "$gen" != na ] || gen=""
  printf '  run %d %-9s %-48s %s\n' "$run" "$broker" "${LABEL[$key]}" \
    "${val:-FAIL} (rc=$rc)${cpu:+, broker CPU $cpu µs/msg, $pct %}${steal:+, stolen $steal %}" >&2
  RUNSTEAL[$key,$broker,$run]=$steal
  RUNGEN[$key,$broker,$run]=$gen
  if [ $rc -ne 0 ] || [ -z "$val" ] || [ "$val" = na ]; then
    FAILS[$key,$broker]=$(( ${FAILS[$key,$broker]:-0} + 1 ))
    PROBLEMS+=("run $run, $broker, ${LABEL[$key]}: rc=$rc; $(grep -E 'ERROR|FAILED|warning' "$out" | head -n 3 | tr "\n" " " || true)")
  else
    VALUES[$key,$broker]="${VALUES[$key,$broker]:-} $val"
    RUNVAL[$key,$broker,$run]=$val
    if [ -n "$lost" ] && [ "$lost" != 0 ]; then  # QoS 0: allowed, but worth knowing
      NOTES+=("run $run, $broker, ${LABEL[$key]}: $lost QoS 0 messages lost")
    fi
    if [ "${FIELD[$key]}" = msgs_per_s ] && [ -n "$cpu" ]; then
      CPUS[$key,$broker]="${CPUS[$key,$broker]:-} $cpu"
    fi
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    PROBLEMS+=("run $run, $broker died during '${LABEL[$key]}'; log tail: $(tail -n 3 "$TMP/$broker.log" | tr '\n' ' ')")
    restart "$broker"
  fi
}

median() {  # values...
  [ $# -gt 0 ] || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# A table cell: msgs/s as 1.23M / 456k / 789 with the CPU µs per message,
# latency and memory as before.
fmt() {  # key value [cpu]
  if [ -z "$2" ]; then echo "FAIL"; return; fi
  case "${FIELD[$1]}" in
    p50_us) printf '%.1f' "$2" ;;
    msgs_per_s)
      awk -v v="$2" -v c="${3:-}" 'BEGIN {
        if (v >= 1e6) s = sprintf("%.2fM", v / 1e6)
        else if (v >= 1e5) s = sprintf("%.0fk", v / 1e3)
        else if (v >= 1e3) s = sprintf("%.1fk", v / 1e3)
        else s = sprintf("%.0f", v)
        if (c != "") s = s sprintf(c < 10 ? " (%.2f µs)" : c < 100 ? " (%.1f µs)" : " (%.0f µs)", c)
        print s }' ;;
    *) printf '%.0f' "$2" ;;
  esac
}

ratio() {  # a b
  if [ -z "$1" ] || [ -z "$2" ]; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'
}

for b in "${BROKERS[@]}"; do
  start "$b"
done
# (mosquitto -h exits with status 3)
desc="mqttb: $MQTTB (port ${PORT[mqttb]}), mosquitto: $({ $MOSQUITTO -h 2>&1 || true; } | head -n 1 | sed 's/mosquitto version /mosquitto /') (port ${PORT[mosquitto]})"
if [ -n "$FLASHMQ" ]; then
  desc="$desc, flashmq: $FLASHMQ $({ "$FLASHMQ" --version 2>&1 || true; } | sed -n 's/^FlashMQ [Vv]ersion \([^ ]*\).*/\1/p' | head -n 1) (port ${PORT[flashmq]})"
fi
echo "$desc" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "runs=$RUNS duration=${DURATION}s warmup=${WARMUP}s idle=$IDLE_N, $(nproc) CPUs, load $LOAD_BEFORE" >&2

NB=${#BROKERS[@]}
for run in $(seq "$RUNS"); do
  # Rotate the order by one broker per run (with two: swap them).
  order=()
  for i in $(seq 0 $((NB - 1))); do
    order+=("${BROKERS[$(( (i + run - 1) % NB ))]}")
  done
  for key in "${SCEN_KEYS[@]}"; do
    for broker in "${order[@]}"; do
      run_one "$key" "$broker" "$run"
    done
  done
done

echo
if [ -n "$FLASHMQ" ]; then
  echo "| scenario | mqttb | mosquitto | ratio | flashmq | mqttb / flashmq |"
  echo "|---|---:|---:|---:|---:|---:|"
else
  echo "| scenario | mqttb | mosquitto | ratio |"
  echo "|---|---:|---:|---:|"
fi
for key in "${SCEN_KEYS[@]}"; do
  row="| ${LABEL[$key]} |"
  declare -A med=()
  for b in "${BROKERS[@]}"; do
    # shellcheck disable=SC2086
    med[$b]=$(median ${VALUES[$key,$b]:-})
    # shellcheck disable=SC2086
    c=$(median ${CPUS[$key,$b]:-})
    cell=$(fmt "$key" "${med[$b]}" "$c")
    [ -z "${FAILS[$key,$b]:-}" ] || cell="$cell (${FAILS[$key,$b]} failed)"
    row="$row $cell |"
    if [ "$b" = mosquitto ]; then
      row="$row $(ratio "${med[mqttb]}" "${med[mosquitto]}") |"
    elif [ "$b" = flashmq ]; then
      row="$row $(ratio "${med[mqttb]}" "${med[flashmq]}") |"
    fi
  done
  unset med
  echo "$row"
done
echo
if [ -n "$FLASHMQ" ]; then
  echo "Median of $RUNS runs; ratio = mqttb / mosquitto, mqttb / flashmq = mqttb / FlashMQ (higher is better for msgs/s, lower for latency and memory)."
else
  echo "Median of $RUNS runs; ratio = mqttb / mosquitto (higher is better for msgs/s, lower for latency and memory)."
fi
echo "In parentheses: the broker's CPU time (user + system, all threads) per delivered message over the measured window, median of the runs."
echo "$(nproc) CPUs shared by generator and brokers; load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)."
if [ ${#GEN_ARGS[@]} -gt 0 ]; then
  echo "Generator: subscribers read every payload byte (--copy-payload)."
else
  echo "Generator: large payloads discarded in the kernel past their first 16 bytes (without --copy-payload)."
fi

# Per run: the brokers of one run number are measured one after the other,
# so their ratio is the fairest single comparison; a virtual machine's
# stolen time says which runs had a slower machine.
echo
echo "Per run: mqttb / mosquitto${FLASHMQ:+ and mqttb / flashmq}, then the CPU time the hypervisor gave to other guests during each broker's run (% of the machine; highest of the brokers):"
echo
hdr="| scenario |"; sep="|---|"
for run in $(seq "$RUNS"); do hdr="$hdr run $run |"; sep="$sep---|"; done
echo "$hdr"; echo "$sep"
for key in "${SCEN_KEYS[@]}"; do
  row="| ${LABEL[$key]} |"
  for run in $(seq "$RUNS"); do
    m=${RUNVAL[$key,mqttb,$run]:-}
    cell=$(ratio "$m" "${RUNVAL[$key,mosquitto,$run]:-}")
    [ -z "$FLASHMQ" ] || cell="$cell, $(ratio "$m" "${RUNVAL[$key,flashmq,$run]:-}")"
    st=""
    for b in "${BROKERS[@]}"; do
      v=${RUNSTEAL[$key,$b,$run]:-}
      [ -n "$v" ] || continue
      if [ -z "$st" ] || awk -v a="$v" -v b="$st" 'BEGIN { exit !(a > b) }'; then st=$v; fi
    done
    row="$row $cell${st:+ ($st %)} |"
  done
  echo "$row"
done

# The generator's own CPU per delivery: it shares the CPUs with the broker,
# so it bounds the throughput too (at most CPUs / (broker + generator CPU
# per delivery)), and when it rises with the broker's over the runs, that
# points at the machine rather than the broker.
gen_rows=()
for key in "${SCEN_KEYS[@]}"; do
  row="| ${LABEL[$key]} |"; any=""
  for run in $(seq "$RUNS"); do
    cell=""
    for b in "${BROKERS[@]}"; do
      v=${RUNGEN[$key,$b,$run]:-}
      [ -z "$v" ] || any=1
      cell="${cell:+$cell / }${v:-–}"
    done
    row="$row $cell |"
  done
  [ -z "$any" ] || gen_rows+=("$row")
done
if [ ${#gen_rows[@]} -gt 0 ]; then
  names=$(printf '%s / ' "${BROKERS[@]}")
  echo
  echo "Per run: the generator's CPU time per delivery during each broker's run, µs (${names% / }); it shares the CPUs with the broker:"
  echo
  echo "$hdr"; echo "$sep"
  for row in "${gen_rows[@]}"; do echo "$row"; done
fi
if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "Notes:"
  for p in "${NOTES[@]}"; do echo "- $p"; done
fi
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  echo
  echo "Problems:"
  for p in "${PROBLEMS[@]}"; do echo "- $p"; done
  exit 1
fi
