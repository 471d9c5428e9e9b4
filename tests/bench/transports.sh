#!/usr/bin/env bash
# mqttb and Mosquitto over plain TCP, TLS and WebSockets (see docs/benchmarks.md,
# "Transports").
#
# Makes test certificates (tests/tls/make_certs.sh) in a temporary directory,
# starts one mqttb with four listeners (tcp, tls, ws, wss) and one Mosquitto
# with tcp and tls listeners (and ws, if this Mosquitto was built with
# websockets: it is probed first), all on free ports of 127.0.0.1, runs every
# scenario over every transport RUNS times (alternating which broker goes
# first) with mqttb-bench --tls/--ws, and prints one Markdown table of
# medians. Every broker is stopped on exit, error or Ctrl-C.
#
# Usage: tests/bench/transports.sh [options] [MQTTB_BINARY]
#   MQTTB_BINARY        default: build/cli/mqttb (relative to the source root)
#   -r RUNS             runs per scenario, transport and broker (default 3)
#   -d SECONDS          measured seconds per run (default 5)
#   -w SECONDS          warm-up seconds before measuring (default 1)
#   -s LIST             scenarios, comma-separated: q0,q1,q2,lat (default q0,q1,lat)
#   -t LIST             transports, comma-separated: tcp,tls,ws,wss (default all;
#                       Mosquitto runs those it has)
#   --bench PATH        generator (default: build/tests/bench/mqttb-bench)
#   --mosquitto PATH    default: /usr/sbin/mosquitto
#   --raw FILE          also write every RESULT line to FILE
#   -h, --help
#
# SPDX-License-Identifier: MIT
set -euo pipefail

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=3
DURATION=5
WARMUP=1
MQTTB=""
BENCH=""
MOSQUITTO=/usr/sbin/mosquitto
RAW=""
ONLY="q0,q1,lat"
TRANSPORTS="tcp,tls,ws,wss"

usage() { sed -n '2,/^# SPDX/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//; /^SPDX/d'; }
die() { echo "transports.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    -r) RUNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -w) WARMUP=$2; shift 2 ;;
    -s) ONLY=$2; shift 2 ;;
    -t) TRANSPORTS=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --mosquitto) MOSQUITTO=$2; shift 2 ;;
    --raw) RAW=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [ -z "$MQTTB" ] || die "only one mqttb binary"; MQTTB=$1; shift ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "bad -r $RUNS"
[ -n "$MQTTB" ] || MQTTB=$SRC_ROOT/build/cli/mqttb
[ -n "$BENCH" ] || BENCH=$SRC_ROOT/build/tests/bench/mqttb-bench
[ -x "$MQTTB" ] || die "mqttb not found: $MQTTB (build it: ninja -C build)"
[ -x "$BENCH" ] || die "mqttb-bench not found: $BENCH (build it: ninja -C build)"
[ -x "$MOSQUITTO" ] || die "mosquitto not found: $MOSQUITTO"
command -v openssl >/dev/null || die "openssl (the command) is needed for the test certificates"
"$BENCH" --help 2>&1 | grep -q -- '--tls' || die "$BENCH has no --tls (built without OpenSSL?)"

ALL_KEYS=(q0 q1 q2 lat)
IFS=, read -r -a SCEN_KEYS <<<"$ONLY"
for key in "${SCEN_KEYS[@]}"; do
  [[ " ${ALL_KEYS[*]} " == *" $key "* ]] || die "unknown scenario '$key' (${ALL_KEYS[*]})"
done
IFS=, read -r -a TR_KEYS <<<"$TRANSPORTS"
for t in "${TR_KEYS[@]}"; do
  [[ " tcp tls ws wss " == *" $t "* ]] || die "unknown transport '$t' (tcp tls ws wss)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttb-transports.XXXXXX")
MQTTB_PID=""
MOSQ_PID=""
PROBE_PID=""
declare -A PORT  # broker,transport -> port
declare -A HAS   # broker,transport -> 1

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
  stop_pid "$PROBE_PID"
  stop_pid "$MQTTB_PID"
  stop_pid "$MOSQ_PID"
  if [ $rc -ne 0 ]; then
    echo "transports.sh: exiting with status $rc; logs kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_ports N: N distinct free ports (held open together while choosing).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_listening() {  # name pid log port...
  local name=$1 pid=$2 log=$3 port
  shift 3
  for port in "$@"; do
    for i in $(seq 101); do
      [ "$i" -le 100 ] || die "$name is not listening on port $port"
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name exited at startup"; }
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
      fi
      sleep 0.1
    done
  done
}

echo "making test certificates in $TMP/certs" >&2
mkdir -p "$TMP/certs"
sh "$SRC_ROOT/tests/tls/make_certs.sh" "$TMP/certs" >"$TMP/certs.log" 2>&1 ||
  { cat "$TMP/certs.log" >&2; die "make_certs.sh failed"; }
# Run as root, Mosquitto reads its certificates after switching to the user
# mosquitto: let it (they are throw-away test files).
chmod a+rx "$TMP" "$TMP/certs"
chmod a+r "$TMP/certs/server.pem" "$TMP/certs/server.key" "$TMP/certs/ca.pem"
CERT=$TMP/certs/server.pem
KEY=$TMP/certs/server.key
CA=$TMP/certs/ca.pem

# tls_lines TRANSPORT: certfile/keyfile for tls and wss listeners
tls_lines() {
  case "$1" in tls|wss) printf 'certfile %s\nkeyfile %s\n' "$CERT" "$KEY" ;; esac
}
ws_line() {
  case "$1" in ws|wss) echo "protocol websockets" ;; esac
}

# Does this Mosquitto have websockets? (Debian's 2.0.11 does not: "Unable to
# start any listening sockets".)
MOSQ_WS=0
read -r probe_port < <(free_ports 1)
printf 'listener %s 127.0.0.1\nprotocol websockets\nallow_anonymous true\nlog_dest stderr\n' \
  "$probe_port" >"$TMP/mosquitto-ws-probe.conf"
setsid "$MOSQUITTO" -c "$TMP/mosquitto-ws-probe.conf" >"$TMP/mosquitto-ws-probe.log" 2>&1 &
PROBE_PID=$!
for _ in $(seq 30); do
  kill -0 "$PROBE_PID" 2>/dev/null || break
  if (exec 3<>"/dev/tcp/127.0.0.1/$probe_port") 2>/dev/null; then MOSQ_WS=1; break; fi
  sleep 0.1
done
stop_pid "$PROBE_PID"; PROBE_PID=""
if [ "$MOSQ_WS" = 1 ]; then MOSQ_TR=(tcp tls ws wss); else MOSQ_TR=(tcp tls); fi

read -r -a ports < <(free_ports 8)
i=0
{
  echo "allow_anonymous true"
  echo "max_inflight_messages 1000"
  echo "max_queued_messages 100000"
  echo "max_connections -1"
  echo "log_type error"
  echo "log_type warning"
  for t in "${TR_KEYS[@]}"; do
    PORT[mqttb,$t]=${ports[$i]}; i=$((i + 1)); HAS[mqttb,$t]=1
    echo "listener ${PORT[mqttb,$t]} 127.0.0.1"
    ws_line "$t"
    tls_lines "$t"
  done
} >"$TMP/mqttb.conf"
{
  echo "allow_anonymous true"
  echo "max_inflight_messages 1000"
  echo "max_queued_messages 100000"
  echo "max_connections -1"
  echo "persistence false"
  echo "log_dest stderr"
  echo "log_type error"
  echo "log_type warning"
  for t in "${TR_KEYS[@]}"; do
    [[ " ${MOSQ_TR[*]} " == *" $t "* ]] || continue
    PORT[mosquitto,$t]=${ports[$i]}; i=$((i + 1)); HAS[mosquitto,$t]=1
    echo "listener ${PORT[mosquitto,$t]} 127.0.0.1"
    ws_line "$t"
    tls_lines "$t"
  done
} >"$TMP/mosquitto.conf"

mqttb_ports() { for t in "${TR_KEYS[@]}"; do echo "${PORT[mqttb,$t]}"; done; }
mosq_ports() { for t in "${TR_KEYS[@]}"; do [ -z "${HAS[mosquitto,$t]:-}" ] || echo "${PORT[mosquitto,$t]}"; done; }

start_mqttb() {
  # setsid: a Ctrl-C in the terminal reaches the script, which stops the
  # brokers itself.
  setsid "$MQTTB" -c "$TMP/mqttb.conf" >>"$TMP/mqttb.log" 2>&1 &
  MQTTB_PID=$!
  # shellcheck disable=SC2046
  wait_listening mqttb "$MQTTB_PID" "$TMP/mqttb.log" $(mqttb_ports)
}
start_mosquitto() {
  setsid "$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/mosquitto.log" 2>&1 &
  MOSQ_PID=$!
  # shellcheck disable=SC2046
  wait_listening mosquitto "$MOSQ_PID" "$TMP/mosquitto.log" $(mosq_ports)
}

declare -A LABEL FIELD ARGS
LABEL[q0]="QoS 0 p2p 16→16, msgs/s";        FIELD[q0]=msgs_per_s; ARGS[q0]="-s p2p -q 0 -n 16"
LABEL[q1]="QoS 1 p2p 16→16, msgs/s";        FIELD[q1]=msgs_per_s; ARGS[q1]="-s p2p -q 1 -n 16"
LABEL[q2]="QoS 2 p2p 16→16, msgs/s";        FIELD[q2]=msgs_per_s; ARGS[q2]="-s p2p -q 2 -n 16"
LABEL[lat]="p50 latency 1→1, window 1, µs"; FIELD[lat]=p50_us;    ARGS[lat]="-s p2p -q 0 -n 1 -w 1"
COMMON=(-l 64 -d "$DURATION" --warmup "$WARMUP" --quiet)

tr_args() {  # transport
  case "$1" in
    tcp) ;;
    tls) echo "--tls --cafile $CA" ;;
    ws) echo "--ws" ;;
    wss) echo "--tls --cafile $CA --ws" ;;
  esac
}

declare -A VALUES FAILS
PROBLEMS=()

run_one() {  # key transport broker run
  local key=$1 t=$2 broker=$3 run=$4 pid out rc line val args
  if [ "$broker" = mqttb ]; then pid=$MQTTB_PID; else pid=$MOSQ_PID; fi
  # shellcheck disable=SC2206,SC2207
  args=(-w 64 ${ARGS[$key]} "${COMMON[@]}" $(tr_args "$t"))
  out="$TMP/out.$key.$t.$broker.$run"
  rc=0
  timeout --foreground $((${DURATION%.*} + ${WARMUP%.*} + 120)) \
    "$BENCH" -h 127.0.0.1 -p "${PORT[$broker,$t]}" "${args[@]}" >"$out" 2>&1 || rc=$?
  if [ $rc -eq 130 ] || [ $rc -eq 143 ]; then
    exit $rc
  fi
  line=$(grep '^RESULT ' "$out" | tail -n 1 || true)
  [ -z "$RAW" ] || echo "broker=$broker transport=$t run=$run ${line:-RESULT none rc=$rc}" >>"$RAW"
  val=$(sed -n "s/.* ${FIELD[$key]}=\([^ ]*\).*/\1/p" <<<"$line")
  printf '  run %d %-9s %-4s %-34s %s\n' "$run" "$broker" "$t" "${LABEL[$key]}" "${val:-FAIL} (rc=$rc)" >&2
  if [ $rc -ne 0 ] || [ -z "$val" ]; then
    FAILS[$key,$t,$broker]=$(( ${FAILS[$key,$t,$broker]:-0} + 1 ))
    PROBLEMS+=("run $run, $broker over $t, ${LABEL[$key]}: rc=$rc; $(grep -E 'ERROR|FAILED|warning' "$out" | head -n 3 | tr "\n" " " || true)")
  else
    VALUES[$key,$t,$broker]="${VALUES[$key,$t,$broker]:-} $val"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    PROBLEMS+=("run $run, $broker died during '${LABEL[$key]}' over $t; log tail: $(tail -n 3 "$TMP/$broker.log" | tr '\n' ' ')")
    if [ "$broker" = mqttb ]; then start_mqttb; else start_mosquitto; fi
  fi
}

median() {
  [ $# -gt 0 ] || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}
fmt() {  # key value
  if [ -z "$2" ]; then echo "–"; return; fi
  case "${FIELD[$1]}" in
    p50_us) printf '%.1f' "$2" ;;
    *) printf '%.0f' "$2" ;;
  esac
}
ratio() {  # a b
  if [ -z "$1" ] || [ -z "$2" ]; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'
}

start_mqttb
start_mosquitto
MOSQ_VERSION=$( ("$MOSQUITTO" -h 2>&1 || true) | head -n 1 | sed 's/mosquitto version /mosquitto /')
echo "mqttb: $MQTTB; $MOSQ_VERSION (websockets: $([ "$MOSQ_WS" = 1 ] && echo yes || echo no))" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
echo "runs=$RUNS duration=${DURATION}s warmup=${WARMUP}s, $(nproc) CPUs, load $LOAD_BEFORE" >&2

for run in $(seq "$RUNS"); do
  for key in "${SCEN_KEYS[@]}"; do
    for t in "${TR_KEYS[@]}"; do
      if [ $((run % 2)) -eq 1 ]; then order=(mqttb mosquitto); else order=(mosquitto mqttb); fi
      for broker in "${order[@]}"; do
        [ -n "${HAS[$broker,$t]:-}" ] || continue
        run_one "$key" "$t" "$broker" "$run"
      done
    done
  done
done

cell() {  # key transport broker
  local v
  # shellcheck disable=SC2086
  v=$(median ${VALUES[$1,$2,$3]:-})
  echo "$v"
}

echo
echo "| scenario | transport | mqttb | mqttb vs tcp | mosquitto | mosquitto vs tcp | mqttb / mosquitto |"
echo "|---|---|---:|---:|---:|---:|---:|"
for key in "${SCEN_KEYS[@]}"; do
  a_tcp=$(cell "$key" tcp mqttb)
  b_tcp=$(cell "$key" tcp mosquitto)
  for t in "${TR_KEYS[@]}"; do
    a=$(cell "$key" "$t" mqttb)
    fa=$(fmt "$key" "$a")
    [ -z "${FAILS[$key,$t,mqttb]:-}" ] || fa="$fa (${FAILS[$key,$t,mqttb]} failed)"
    if [ -n "${HAS[mosquitto,$t]:-}" ]; then
      b=$(cell "$key" "$t" mosquitto)
      fb=$(fmt "$key" "$b")
      [ -z "${FAILS[$key,$t,mosquitto]:-}" ] || fb="$fb (${FAILS[$key,$t,mosquitto]} failed)"
      rb=$(ratio "$b" "$b_tcp")
    else
      b=""; fb="n/a"; rb="–"
    fi
    echo "| ${LABEL[$key]} | $t | $fa | $(ratio "$a" "$a_tcp") | $fb | $rb | $(ratio "$a" "$b") |"
  done
done
echo
echo "Median of $RUNS runs of ${DURATION} s (+${WARMUP} s warm-up); 'vs tcp' = this transport / the same broker over plain TCP;"
echo "mqttb / mosquitto per transport (higher is better for msgs/s, lower for latency)."
echo "$MOSQ_VERSION$([ "$MOSQ_WS" = 1 ] || echo " (built without websockets: n/a)"); TLS: $(grep -h -o 'tls=[^ ]*' "$TMP"/out.* 2>/dev/null | sed 's/^tls=//' | sort -u | tr '\n' ' ')"
echo "$(nproc) CPUs shared by generator and broker; load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - T_START )) s."
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  echo
  echo "Problems:"
  for p in "${PROBLEMS[@]}"; do echo "- $p"; done
  exit 1
fi
