#!/usr/bin/env bash
# Durability benchmarks of mqttb against Mosquitto, side by side, using
# mqttb-bench (see docs/benchmarks.md, "Persistence").
#
# 1. tput: QoS 1 (and 2) point-to-point throughput, 16 publishers -> 16
#    PERSISTENT subscribers (clean session 0, so every message is recorded),
#    window 64, 64-byte payloads, against four brokers started side by side:
#    mqttb with persistence off, persistence on, persistence on with
#    persistence_sync (group commit), and Mosquitto with persistence on (its
#    default autosave_interval, 1800 s). RUNS runs, the order rotated every
#    run; medians, and the ratios on/off, sync/off, mqttb/Mosquitto.
#    A reference row runs QoS 1 with clean-session subscribers (nothing is
#    recorded).
# 2. retained / sessions: each broker is filled with RETAINED retained
#    messages (QoS 0 pipelined, the last one QoS 1), or SESSIONS persistent
#    sessions with one QoS 1 subscription each (connect clean session 0,
#    subscribe, disconnect; 64 at a time). Then:
#      kill -9, restart: time from exec to CONNACK and to the data (the last
#      retained message arrives / the last session is present and its
#      subscription delivers), RSS, and a count of everything (all retained
#      messages, all sessions); Mosquitto loses what it had not autosaved,
#      so it is filled again, saved with SIGUSR1, killed with -9 and
#      restarted once more;
#      SIGTERM (time to stop), then RESTARTS restarts after a clean stop
#      (medians; the first one also counts everything).
#    mqttb runs with persistence on (no sync), Mosquitto with persistence on;
#    both with autosave_interval 1800 (the default).
# 3. disk: the files in each broker's persistence location after the fill
#    (mqttb: snapshot + journal segments; Mosquitto: mosquitto.db, which it
#    writes only at autosave/SIGUSR1/shutdown) and after a clean stop (mqttb
#    compacts into the snapshot alone).
#
# Every broker listens on a free port of 127.0.0.1, keeps its files in its own
# directory under a temporary directory (on the file system of $TMPDIR or /tmp:
# use a real disk, not tmpfs, or persistence_sync measures nothing) and uses
# max_inflight_messages 20, max_queued_messages 1000 (mqttb's and Mosquitto's
# defaults). Every broker started is stopped on exit, error or Ctrl-C. The
# result is printed as Markdown tables on stdout; progress goes to stderr.
# With the defaults a run takes about 9 minutes on 2 cores.
#
# Usage: tests/bench/persistence.sh [options] [MQTTB_BINARY]
#   MQTTB_BINARY        default: build/cli/mqttb (relative to the source root)
#   -r RUNS             throughput runs per configuration (default 5)
#   -d SECONDS          measured seconds per throughput run (default 5)
#   -w SECONDS          warm-up seconds before measuring (default 1)
#   -s LIST             parts, comma-separated (default tput,retained,sessions)
#   --qos LIST          throughput rows (default 1,2,1clean)
#   --retained N        retained messages (default 1000000)
#   --sessions N        persistent sessions (default 100000)
#   --restarts N        restarts after a clean stop, per broker (default 3)
#   --bench PATH        generator (default: build/tests/bench/mqttb-bench)
#   --mosquitto PATH    default: /usr/sbin/mosquitto
#   --raw FILE          also write every RESULT line to FILE
#   --keep              keep the temporary directory (configs, logs, files)
#   -h, --help
#
# SPDX-License-Identifier: MIT
set -euo pipefail

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=5
DURATION=5
WARMUP=1
PARTS=tput,retained,sessions
QOS_LIST=1,2,1clean
N_RET=1000000
N_SESS=100000
RESTARTS=3
MQTTB=""
BENCH=""
MOSQUITTO=/usr/sbin/mosquitto
RAW=""
KEEP=0

usage() { sed -n '2,/^# SPDX/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//; /^SPDX/d'; }
die() { echo "persistence.sh: $*" >&2; exit 1; }
log() { echo "$*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -r) RUNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -w) WARMUP=$2; shift 2 ;;
    -s) PARTS=$2; shift 2 ;;
    --qos) QOS_LIST=$2; shift 2 ;;
    --retained) N_RET=$2; shift 2 ;;
    --sessions) N_SESS=$2; shift 2 ;;
    --restarts) RESTARTS=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --mosquitto) MOSQUITTO=$2; shift 2 ;;
    --raw) RAW=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [ -z "$MQTTB" ] || die "only one mqttb binary"; MQTTB=$1; shift ;;
  esac
done
for v in RUNS N_RET N_SESS RESTARTS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "bad $v: ${!v}"
done
[ -n "$MQTTB" ] || MQTTB=$SRC_ROOT/build/cli/mqttb
[ -n "$BENCH" ] || BENCH=$SRC_ROOT/build/tests/bench/mqttb-bench
[ -x "$MQTTB" ] || die "mqttb not found: $MQTTB (build it: ninja -C build)"
[ -x "$BENCH" ] || die "mqttb-bench not found: $BENCH (build it: ninja -C build)"
[ -x "$MOSQUITTO" ] || die "mosquitto not found: $MOSQUITTO"
IFS=, read -r -a PART_LIST <<<"$PARTS"
for p in "${PART_LIST[@]}"; do
  case "$p" in tput|retained|sessions) ;; *) die "unknown part '$p' (tput,retained,sessions)" ;; esac
done
IFS=, read -r -a QOS_KEYS <<<"$QOS_LIST"
for q in "${QOS_KEYS[@]}"; do
  case "$q" in 1|2|1clean) ;; *) die "unknown --qos '$q' (1,2,1clean)" ;; esac
done
has_part() { [[ ",$PARTS," == *",$1,"* ]]; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttb-persist.XXXXXX")
declare -A PID PORT KIND CONF DIR
BENCH_PID=""

stop_pid() {  # pid [timeout_s]
  local pid=$1 t=${2:-60}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for _ in $(seq $((t * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$BENCH_PID" ] || kill "$BENCH_PID" 2>/dev/null || true
  for name in "${!PID[@]}"; do
    stop_pid "${PID[$name]}" 10
  done
  if [ $rc -ne 0 ] || [ "$KEEP" = 1 ]; then
    echo "persistence.sh: exiting with status $rc; files kept in $TMP" >&2
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

# Seconds between two $EPOCHREALTIME values.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { gsub(",", ".", a); gsub(",", ".", b); printf "%.3f", b - a }'; }

# define_broker NAME KIND(mqttb|mosquitto) EXTRA_CONFIG_LINES
define_broker() {
  local name=$1 kind=$2 extra=$3
  KIND[$name]=$kind
  PORT[$name]=$(free_port)
  DIR[$name]=$TMP/$name.data
  CONF[$name]=$TMP/$name.conf
  mkdir -p "${DIR[$name]}"
  if [ "$kind" = mqttb ]; then
    {
      echo "max_inflight_messages 20"
      echo "max_queued_messages 1000"
      echo "max_connections -1"
      echo "log_type error"
      echo "log_type warning"
      [ -z "$extra" ] || printf '%s\n' "$extra"
    } >"${CONF[$name]}"
  else
    {
      echo "listener ${PORT[$name]} 127.0.0.1"
      echo "allow_anonymous true"
      echo "max_inflight_messages 20"
      echo "max_queued_messages 1000"
      echo "max_connections -1"
      echo "persistence true"
      echo "persistence_location ${DIR[$name]}/"
      echo "log_dest stderr"
      echo "log_type error"
      echo "log_type warning"
      # As root Mosquitto would switch to user mosquitto, which cannot write
      # into our temporary directory.
      [ "$(id -u)" != 0 ] || echo "user root"
      [ -z "$extra" ] || printf '%s\n' "$extra"
    } >"${CONF[$name]}"
  fi
}

# launch NAME: starts the broker in the background; sets T0 (just before exec).
launch() {
  local name=$1
  # setsid: a Ctrl-C in the terminal reaches the script, which stops the
  # brokers itself.
  T0=$EPOCHREALTIME
  if [ "${KIND[$name]}" = mqttb ]; then
    setsid "$MQTTB" -c "${CONF[$name]}" -b 127.0.0.1 -p "${PORT[$name]}" >>"$TMP/$name.log" 2>&1 &
  else
    setsid "$MOSQUITTO" -c "${CONF[$name]}" >>"$TMP/$name.log" 2>&1 &
  fi
  PID[$name]=$!
}

wait_listening() {  # name
  local name=$1
  for _ in $(seq 600); do
    kill -0 "${PID[$name]}" 2>/dev/null || { tail -n 20 "$TMP/$name.log" >&2; die "$name exited at startup"; }
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$name]}") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$name is not listening on port ${PORT[$name]}"
}

start() { launch "$1"; wait_listening "$1"; }

# stop NAME: SIGTERM, wait; sets STOP_S.
stop() {
  local name=$1 t
  t=$EPOCHREALTIME
  stop_pid "${PID[$name]}" 300
  STOP_S=$(elapsed "$t" "$EPOCHREALTIME")
  unset "PID[$name]"
}

kill9() {
  local name=$1
  kill -KILL "${PID[$name]}" 2>/dev/null || true
  wait "${PID[$name]}" 2>/dev/null || true
  unset "PID[$name]"
}

check_alive() {  # name what
  kill -0 "${PID[$1]}" 2>/dev/null || die "$1 died during $2; log tail: $(tail -n 5 "$TMP/$1.log" | tr '\n' ' ')"
}

# bench OUTFILE ARGS...: runs the generator, returns its RESULT line in $RESULT.
bench() {
  local out=$1 rc=0
  shift
  timeout --foreground 900 "$BENCH" -h 127.0.0.1 "$@" >"$out" 2>&1 || rc=$?
  if [ $rc -eq 130 ] || [ $rc -eq 143 ]; then exit $rc; fi
  RESULT=$(grep '^RESULT ' "$out" | tail -n 1 || true)
  [ -z "$RAW" ] || echo "${RAW_TAG:-} ${RESULT:-RESULT none rc=$rc}" >>"$RAW"
  if [ $rc -ne 0 ] || [ -z "$RESULT" ]; then
    PROBLEMS+=("${RAW_TAG:-}: mqttb-bench $* failed (rc=$rc): $(grep -E 'ERROR|FAILED' "$out" | head -n 3 | tr '\n' ' ' || true)")
    return 1
  fi
}

field() {  # name [line]
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"${2:-$RESULT}"
}

median() {  # values...
  [ $# -gt 0 ] || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# CPU time of a broker so far, in clock ticks: its own and that of the
# children it has waited for (mqttb's compaction processes).
cpu_ticks() {  # pid
  awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
CLK_TCK=$(getconf CLK_TCK)

ratio() {  # a b
  if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = na ] || [ "$2" = na ]; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'
}

bytes_of() {  # files... (missing ones count 0)
  local total=0 f s
  for f in "$@"; do
    [ -f "$f" ] || continue
    s=$(stat -c %s "$f")
    total=$((total + s))
  done
  echo "$total"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Waits until mqttb's background compaction (NAME.tmp) is over, at most 120 s.
wait_compaction() {
  local d=$1
  for _ in $(seq 1200); do
    [ -e "$d/mqttb.db.tmp" ] || return 0
    sleep 0.1
  done
}

PROBLEMS=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FS=$(df -T "$TMP" | awk 'NR == 2 { print $1 " (" $2 ")" }')
log "mqttb: $MQTTB; $("$MOSQUITTO" -h 2>&1 | head -n 1 | sed 's/mosquitto version /mosquitto /')"
log "files in $TMP on $FS; $(nproc) CPUs, load $LOAD_BEFORE"
[[ "$FS" != *tmpfs* ]] || log "WARNING: $TMP is on tmpfs: fdatasync costs nothing there"

OUT=$TMP/tables.md
: >"$OUT"

# ---------------------------------------------------------------- tput ---
if has_part tput; then
  define_broker off mqttb ""
  define_broker on mqttb "persistence true
persistence_location $TMP/on.data"
  define_broker sync mqttb "persistence true
persistence_location $TMP/sync.data
persistence_sync true"
  define_broker mosq mosquitto ""
  CONFIGS=(off on sync mosq)
  for c in "${CONFIGS[@]}"; do start "$c"; done
  log "throughput: $RUNS runs of ${DURATION}s after ${WARMUP}s warm-up, rows ${QOS_KEYS[*]}"
  declare -A TP CPU
  for run in $(seq "$RUNS"); do
    for q in "${QOS_KEYS[@]}"; do
      # Rotate the order of the four brokers every run.
      order=()
      for i in 0 1 2 3; do order+=("${CONFIGS[$(((i + run - 1) % 4))]}"); done
      for c in "${order[@]}"; do
        # QoS 2 with window 16: Mosquitto acknowledges but drops inbound QoS 2
        # messages beyond max_inflight_messages (20) awaiting PUBREL.
        win=64; [ "$q" != 2 ] || win=16
        args=(-p "${PORT[$c]}" -s p2p -n 16 -w "$win" -l 64 -d "$DURATION" --warmup "$WARMUP" --quiet)
        if [ "$q" = 1clean ]; then args+=(-q 1); else args+=(-q "$q" --persistent); fi
        RAW_TAG="part=tput broker=$c qos=$q run=$run"
        # Write back what the previous run left dirty (journals), so its
        # writeback does not slow this run's fdatasync.
        sync
        t0=$(cpu_ticks "${PID[$c]}")
        if bench "$TMP/tput.$c.$q.$run" "${args[@]}"; then
          v=$(field msgs_per_s)
          TP[$q,$c]="${TP[$q,$c]:-} $v"
          # Broker CPU per message: the run's CPU over the messages of warm-up
          # and measured time, taken at the measured rate (the drain at the end
          # is short and counted in the CPU too: a slight overestimate).
          t1=$(cpu_ticks "${PID[$c]}")
          us=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v r="$v" -v d="$((DURATION + WARMUP))" \
                 'BEGIN { if (r > 0) printf "%.3f", t / hz * 1e6 / (r * d); else print "na" }')
          CPU[$q,$c]="${CPU[$q,$c]:-} $us"
        else
          v=FAIL
          us=na
        fi
        log "  run $run qos $q $c: $v msgs/s, broker CPU $us us/msg"
        check_alive "$c" "throughput run $run"
      done
    done
  done
  {
    echo "| QoS 1/2 p2p 16→16, msgs/s | mqttb off | mqttb on | mqttb sync | mosquitto | on / off | sync / off | on / mosquitto | sync / mosquitto |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for q in "${QOS_KEYS[@]}"; do
      declare -A M=()
      for c in "${CONFIGS[@]}"; do
        # shellcheck disable=SC2086
        M[$c]=$(median ${TP[$q,$c]:-})
      done
      case "$q" in
        1) label="QoS 1, persistent subscribers, window 64" ;;
        2) label="QoS 2, persistent subscribers, window 16" ;;
        1clean) label="QoS 1, clean-session subscribers (nothing recorded), window 64" ;;
      esac
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(printf '%.0f' "${M[off]:-0}")" "$(printf '%.0f' "${M[on]:-0}")" \
        "$(printf '%.0f' "${M[sync]:-0}")" "$(printf '%.0f' "${M[mosq]:-0}")" \
        "$(ratio "${M[on]}" "${M[off]}")" "$(ratio "${M[sync]}" "${M[off]}")" \
        "$(ratio "${M[on]}" "${M[mosq]}")" "$(ratio "${M[sync]}" "${M[mosq]}")"
    done
    echo
    echo "Median of $RUNS runs of ${DURATION} s (after ${WARMUP} s of warm-up), 64-byte payloads, max_inflight_messages 20, max_queued_messages 1000; Mosquitto with persistence true (autosave_interval 1800)."
    echo
    echo "| broker CPU per message, µs | mqttb off | mqttb on | mqttb sync | mosquitto | on / off | sync / off |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for q in "${QOS_KEYS[@]}"; do
      declare -A C=()
      for c in "${CONFIGS[@]}"; do
        # shellcheck disable=SC2086
        C[$c]=$(median $(tr ' ' '\n' <<<"${CPU[$q,$c]:-}" | grep -v '^na$'))
      done
      printf '| QoS %s | %s | %s | %s | %s | %s | %s |\n' "$q" "${C[off]:-na}" "${C[on]:-na}" \
        "${C[sync]:-na}" "${C[mosq]:-na}" "$(ratio "${C[on]}" "${C[off]}")" \
        "$(ratio "${C[sync]}" "${C[off]}")"
    done
    echo
    echo "CPU: utime + stime of the broker and of the children it waited for (mqttb's compactions), from /proc/PID/stat, over the messages of the run. Less noisy than throughput on a shared VM: it does not depend on how much CPU the generator got."
    echo
  } >>"$OUT"
  for c in "${CONFIGS[@]}"; do stop "$c"; done
fi

# ------------------------------------------------------- restart parts ---
# probe NAME DATASET [--count]: restarts NAME (stopped) and measures; sets
# P_CONNACK P_DATA (seconds or na) P_RSS (MiB) P_FOUND P_CHECKED
probe() {
  local name=$1 set=$2 count=${3:-} args
  if [ "$set" = retained ]; then
    args=(--check-retained "$N_RET" --topic-prefix mqttb-bench/retained --id-prefix pr-)
  else
    args=(--check-sessions "$N_SESS" --topic-prefix mqttb-bench/sessions --id-prefix ps-)
  fi
  [ -z "$count" ] || args+=(--count --batch 256)
  launch "$name"
  bench "$TMP/probe.$name.$set.$((++PROBE_SEQ))" -p "${PORT[$name]}" --probe --t0 "$T0" \
    --pid "${PID[$name]}" --quiet "${args[@]}" || true
  check_alive "$name" "restart"
  P_CONNACK=$(awk -v v="$(field connack_ms)" 'BEGIN { if (v == "") print "na"; else printf "%.3f", v / 1000 }')
  P_DATA=$(awk -v v="$(field data_ms)" 'BEGIN { if (v == "" || v == "na") print "na"; else printf "%.3f", v / 1000 }')
  P_RSS=$(awk -v v="$(field rss_kb)" 'BEGIN { if (v == "" || v < 0) print "na"; else printf "%.1f", v / 1024 }')
  P_FOUND=$(field found); P_CHECKED=$(field checked); P_SUB=$(field sub)
  log "    $name restart: CONNACK ${P_CONNACK} s, data ${P_DATA} s$([ -z "$P_SUB" ] || echo " (subscription $P_SUB)"), RSS ${P_RSS} MiB$([ -z "$count" ] || echo ", found $P_FOUND/$P_CHECKED")"
}

fill() {  # name set
  local name=$1 set=$2
  if [ "$set" = retained ]; then
    args=(--fill-retained "$N_RET" --topic-prefix mqttb-bench/retained --id-prefix pr-)
  else
    args=(--fill-sessions "$N_SESS" -q 1 --topic-prefix mqttb-bench/sessions --id-prefix ps-)
  fi
  RAW_TAG="part=$set broker=$name step=fill"
  bench "$TMP/fill.$name.$set.$((++PROBE_SEQ))" -p "${PORT[$name]}" --pid "${PID[$name]}" --quiet "${args[@]}" \
    || die "filling $name failed"
  F_SECS=$(field secs); F_RATE=$(field per_s)
  F_RSS=$(awk -v v="$(field rss_kb)" 'BEGIN { printf "%.1f", v / 1024 }')
  log "    $name fill: ${F_SECS}s (${F_RATE}/s), RSS ${F_RSS} MiB"
}

files_mqttb() {  # dir -> SNAP JNL (bytes)
  SNAP=$(bytes_of "$1/mqttb.db")
  local f segs=()
  for f in "$1"/mqttb.db.journal.*; do
    [[ "$f" == *corrupt* ]] || segs+=("$f")
  done
  JNL=$(bytes_of "${segs[@]}")
}

PROBE_SEQ=0
restart_part() {  # set
  local set=$1 n label unit
  if [ "$set" = retained ]; then n=$N_RET; unit="retained messages"; else n=$N_SESS; unit="persistent sessions"; fi
  label="$(printf "%'d" "$n" 2>/dev/null || echo "$n") $unit"
  log "$set: $label"
  define_broker "m-$set" mqttb "persistence true
persistence_location $TMP/m-$set.data"
  define_broker "q-$set" mosquitto ""
  local m="m-$set" q="q-$set"
  declare -gA R=()

  for b in "$m" "$q"; do
    rm -rf "${DIR[$b]:?}"/*
    RAW_TAG="part=$set broker=$b step=start"
    start "$b"
    fill "$b" "$set"
    R[$b,fill]=$F_SECS; R[$b,fillrate]=$F_RATE; R[$b,fillrss]=$F_RSS
    if [ "${KIND[$b]}" = mqttb ]; then
      wait_compaction "${DIR[$b]}"
      files_mqttb "${DIR[$b]}"
      R[$b,disk_fill]="snapshot $(mib "$SNAP") + journal $(mib "$JNL") = $(mib $((SNAP + JNL))) MiB"
    else
      R[$b,disk_fill]="mosquitto.db $(mib "$(bytes_of "${DIR[$b]}/mosquitto.db")") MiB (not saved yet)"
    fi
    # (b) kill -9 right after the fill.
    kill9 "$b"
    RAW_TAG="part=$set broker=$b step=kill9"
    probe "$b" "$set" count
    R[$b,k_connack]=$P_CONNACK; R[$b,k_data]=$P_DATA; R[$b,k_found]="$P_FOUND / $P_CHECKED"; R[$b,k_rss]=$P_RSS
    if [ "${KIND[$b]}" = mosquitto ]; then
      # It lost what it had not autosaved: fill again, save (SIGUSR1), kill -9.
      fill "$b" "$set"
      R[$b,fill2]=$F_SECS
      kill -USR1 "${PID[$b]}"
      for _ in $(seq 1200); do
        if [ -s "${DIR[$b]}/mosquitto.db" ] && ! [ -e "${DIR[$b]}/mosquitto.db.new" ]; then break; fi
        sleep 0.1
      done
      sleep 0.2
      kill9 "$b"
      RAW_TAG="part=$set broker=$b step=usr1-kill9"
      probe "$b" "$set" count
      R[$b,u_connack]=$P_CONNACK; R[$b,u_data]=$P_DATA; R[$b,u_found]="$P_FOUND / $P_CHECKED"
    fi
    # (a) clean stops and restarts.
    local c_connack=() c_data=() c_rss=() c_stop=()
    [ "${KIND[$b]}" != mqttb ] || wait_compaction "${DIR[$b]}"
    stop "$b"; c_stop+=("$STOP_S")
    if [ "${KIND[$b]}" = mqttb ]; then
      files_mqttb "${DIR[$b]}"
      R[$b,disk_stop]="snapshot $(mib "$SNAP") + journal $(mib "$JNL") = $(mib $((SNAP + JNL))) MiB"
      R[$b,disk_stop_b]=$((SNAP + JNL))
    else
      R[$b,disk_stop]="mosquitto.db $(mib "$(bytes_of "${DIR[$b]}/mosquitto.db")") MiB"
      R[$b,disk_stop_b]=$(bytes_of "${DIR[$b]}/mosquitto.db")
    fi
    for i in $(seq "$RESTARTS"); do
      RAW_TAG="part=$set broker=$b step=restart$i"
      if [ "$i" = 1 ]; then probe "$b" "$set" count; R[$b,c_found]="$P_FOUND / $P_CHECKED"; else probe "$b" "$set"; fi
      c_connack+=("$P_CONNACK"); c_data+=("$P_DATA"); c_rss+=("$P_RSS")
      stop "$b"; c_stop+=("$STOP_S")
    done
    R[$b,c_connack]=$(median "${c_connack[@]}"); R[$b,c_data]=$(median "${c_data[@]}")
    R[$b,c_rss]=$(printf '%.1f' "$(median "${c_rss[@]}")"); R[$b,c_stop]=$(median "${c_stop[@]}")
    log "    $b: stop ${R[$b,c_stop]}s, restart CONNACK ${R[$b,c_connack]}s, data ${R[$b,c_data]}s, RSS ${R[$b,c_rss]} MiB"
  done

  {
    local what
    if [ "$set" = retained ]; then what="last retained message received"; else what="last session present, its subscription delivers"; fi
    echo "| $label | mqttb | mosquitto | ratio |"
    echo "|---|---:|---:|---:|"
    echo "| fill, s | ${R[$m,fill]} | ${R[$q,fill]} | $(ratio "${R[$m,fill]}" "${R[$q,fill]}") |"
    echo "| fill rate, /s | ${R[$m,fillrate]} | ${R[$q,fillrate]} | $(ratio "${R[$m,fillrate]}" "${R[$q,fillrate]}") |"
    echo "| RSS after fill, MiB | ${R[$m,fillrss]} | ${R[$q,fillrss]} | $(ratio "${R[$m,fillrss]}" "${R[$q,fillrss]}") |"
    echo "| clean stop (SIGTERM to exit), s | ${R[$m,c_stop]} | ${R[$q,c_stop]} | $(ratio "${R[$m,c_stop]}" "${R[$q,c_stop]}") |"
    echo "| restart after SIGTERM: exec to CONNACK, s | ${R[$m,c_connack]} | ${R[$q,c_connack]} | $(ratio "${R[$m,c_connack]}" "${R[$q,c_connack]}") |"
    echo "| restart after SIGTERM: exec to $what, s | ${R[$m,c_data]} | ${R[$q,c_data]} | $(ratio "${R[$m,c_data]}" "${R[$q,c_data]}") |"
    echo "| restart after SIGTERM: found | ${R[$m,c_found]} | ${R[$q,c_found]} | |"
    echo "| RSS after restore, MiB | ${R[$m,c_rss]} | ${R[$q,c_rss]} | $(ratio "${R[$m,c_rss]}" "${R[$q,c_rss]}") |"
    echo "| kill -9 right after the fill, restart: exec to CONNACK, s | ${R[$m,k_connack]} | ${R[$q,k_connack]} | |"
    echo "| kill -9 right after the fill, restart: exec to $what, s | ${R[$m,k_data]} | ${R[$q,k_data]} | |"
    echo "| kill -9 right after the fill, restart: found | ${R[$m,k_found]} | ${R[$q,k_found]} | |"
    echo "| mosquitto refilled, saved (SIGUSR1), kill -9: exec to CONNACK, s | – | ${R[$q,u_connack]} | |"
    echo "| mosquitto refilled, saved (SIGUSR1), kill -9: exec to $what, s | – | ${R[$q,u_data]} | |"
    echo "| mosquitto refilled, saved (SIGUSR1), kill -9: found | – | ${R[$q,u_found]} | |"
    echo
    echo "Restarts after SIGTERM: median of $RESTARTS (the first one also counts everything)."
    echo
    echo "| $label: files | mqttb | mosquitto |"
    echo "|---|---:|---:|"
    echo "| after the fill | ${R[$m,disk_fill]} | ${R[$q,disk_fill]} |"
    echo "| after a clean stop (compacted) | ${R[$m,disk_stop]} | ${R[$q,disk_stop]} |"
    local bm=${R[$m,disk_stop_b]} bq=${R[$q,disk_stop_b]} per=session
    [ "$set" != retained ] || per=message
    echo "| after a clean stop, bytes per $per | $((bm / n)) | $((bq / n)) |"
    echo
  } >>"$OUT"
}

has_part retained && restart_part retained
has_part sessions && restart_part sessions

echo
cat "$OUT"
echo "$(nproc) CPUs shared by generator and brokers; files on $FS; load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)."
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  echo
  echo "Problems:"
  for p in "${PROBLEMS[@]}"; do echo "- $p"; done
  exit 1
fi
