#!/usr/bin/env bash
# Every storage backend against sled, in one run (issue 16): starts a throwaway
# PostgreSQL server (fsync on) and redis-server (AOF, appendfsync always) on free
# loopback ports, then for each backend and durability runs persistent QoS 1 fan-in and
# fan-out through starling-bench (broker pinned to CPU 1, generator to CPU 0; the
# backends alternate within each run), and times `starling migrate` from a filled sled
# store to each server plus the broker's start (replay) on each backend.
# Prints Markdown tables of medians and ratios to sled. See benches/README.md.
#
# Environment:
#   RUNS=3                    runs per cell (median of msg_per_sec; also rounds of the
#                             migrate and start-up timings, median reported)
#   BACKENDS="sled postgres redis"   (sled is the reference column; keep it first)
#   DURABILITIES="sync periodic"
#   SCENARIOS="fanin fanout"  throughput scenarios; SCENARIOS="" skips them
#   REPLAY=1                  0 skips the migrate/start-up part
#   SESSIONS=100000 MESSAGES=1000000   size of the store for migrate/start-up
#   DURATION_SECS=300         hard cap of one generator run
#   STARTUP_TIMEOUT=900       seconds a broker may take to accept connections on replay
#   PG_BIN=DIR                PostgreSQL binaries (default: newest /usr/lib/postgresql/*/bin)
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-sled postgres redis}
DURABILITIES=${DURABILITIES:-sync periodic}
SCENARIOS=${SCENARIOS-fanin fanout}
REPLAY=${REPLAY:-1}
SESSIONS=${SESSIONS:-100000}
MESSAGES=${MESSAGES:-1000000}
DURATION_SECS=${DURATION_SECS:-300}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-900}

log() { echo "stores.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# --- tools --------------------------------------------------------------------------
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[[ -x $PG_BIN/initdb ]] || die "PostgreSQL not found (apt-get install -y postgresql, or set PG_BIN)"
command -v redis-server >/dev/null || die "redis-server not found (apt-get install -y redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install -y redis-tools)"
PIN_BROKER=() PIN_GEN=()
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    PIN_BROKER=(taskset -c 1) PIN_GEN=(taskset -c 0)
fi
AS_PG=()
[[ $(id -u) == 0 ]] && AS_PG=(runuser -u postgres --)

log "building"
cargo build --release --bin starling --bin starling-bench --example fill_store >&2
TARGET=${CARGO_TARGET_DIR:-target}
STARLING=$TARGET/release/starling
BENCH=$TARGET/release/starling-bench
FILL=$TARGET/release/examples/fill_store

# --- cleanup ------------------------------------------------------------------------
TMP=$(mktemp -d)
PGDIR=$(mktemp -d)
BROKER_PID="" PG_PID="" REDIS_PID=""
stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}
cleanup() {
    stop_broker
    if [[ -n $PG_PID ]]; then
        "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" stop -m immediate -w -t 5 >/dev/null 2>&1 || true
        kill -KILL -- "-$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
    fi
    if [[ -n $REDIS_PID ]]; then
        kill -KILL -- "-$REDIS_PID" 2>/dev/null || kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP" "$PGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=$((21000 + RANDOM % 8000))
# free_port: sets FREE_PORT to the next loopback port nobody listens on.
free_port() {
    while port_open "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    FREE_PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
}

# --- servers ------------------------------------------------------------------------
free_port
PG_PORT=$FREE_PORT
log "postgres on $PG_PORT ($PG_BIN)"
[[ ${#AS_PG[@]} -gt 0 ]] && chown postgres: "$PGDIR"
LC_ALL=C "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 \
    --locale=C -N >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
LC_ALL=C setsid "${AS_PG[@]}" "$PG_BIN/postgres" -D "$PGDIR/data" -p "$PG_PORT" -k "$PGDIR" \
    -c listen_addresses=127.0.0.1 -c fsync=on </dev/null >"$TMP/pg.log" 2>&1 &
PG_PID=$!
PSQL=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q -At)
for _ in $(seq 300); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    kill -0 "$PG_PID" 2>/dev/null || { cat "$TMP/pg.log" >&2; die "postgres exited"; }
    sleep 0.1
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || die "postgres not ready within 30 s"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE starling"
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/starling"

free_port
REDIS_PORT=$FREE_PORT
mkdir -p "$TMP/redis"
log "redis on $REDIS_PORT"
setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" \
    --appendonly yes --appendfsync always --save "" --logfile "$TMP/redis/redis.log" \
    </dev/null >/dev/null 2>&1 &
REDIS_PID=$!
REDIS=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
for _ in $(seq 300); do
    [[ $("${REDIS[@]}" ping 2>/dev/null) == PONG ]] && break
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$TMP/redis/redis.log" >&2; die "redis exited"; }
    sleep 0.1
done
[[ $("${REDIS[@]}" ping 2>/dev/null) == PONG ]] || die "redis not ready within 30 s"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

url_of() {
    case $1 in
        postgres) echo "$PG_URL" ;;
        redis) echo "$REDIS_URL" ;;
        *) echo "" ;;
    esac
}
# wipe BACKEND: an empty store for the next broker.
wipe() {
    case $1 in
        postgres) "${PSQL[@]}" -d starling -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" 2>/dev/null ;;
        redis) "${REDIS[@]}" flushall >/dev/null ;;
        *) ;;
    esac
}

# start_broker BACKEND DURABILITY DATA_DIR TIMEOUT_SECS: a pinned broker on a free
# port; sets PORT and BROKER_PID and returns once it accepts connections.
start_broker() {
    local backend=$1 durability=$2 data=$3 timeout=$4 url dir
    free_port
    PORT=$FREE_PORT
    dir=$TMP/broker-$PORT
    mkdir -p "$dir"
    url=$(url_of "$backend")
    # The [limits] of benches/compare.sh: queues and in-flight windows effectively unbounded.
    cat >"$dir/starling.toml" <<EOF
[limits]
max_connections = 100000
max_queued_messages = 10000000
max_queued_bytes = 4294967296
max_inflight = 65535

[storage]
backend = "$backend"
durability = "$durability"
data_dir = "$data"
EOF
    [[ -n $url ]] && echo "url = \"$url\"" >>"$dir/starling.toml"
    BROKER_LOG=$dir/log
    RUST_LOG=warn "${PIN_BROKER[@]}" "$STARLING" --config "$dir/starling.toml" \
        --listen "127.0.0.1:$PORT" >"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            log "starling ($backend) exited at start:"; tail -5 "$BROKER_LOG" >&2
            BROKER_PID=""; return 1
        fi
        port_open "$PORT" && return 0
        sleep 0.02
    done
    log "starling ($backend) did not listen within $timeout s"; stop_broker; return 1
}

jnum() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
WARNINGS=()

scenario_args() {
    case $1 in
        fanin) echo "fanin --publishers 4 --messages 25000 --qos 1 --persistent" ;;
        fanout) echo "fanout --subscribers 50 --messages 5000 --qos 1 --persistent" ;;
        *) die "unknown scenario $1" ;;
    esac
}

# run_one SCENARIO BACKEND DURABILITY RUN: a fresh store and broker, one generator run.
run_one() {
    local sc=$1 backend=$2 dur=$3 run=$4 args line rc=0 cell=$1.$3.$2
    wipe "$backend"
    rm -rf "$TMP/data"
    if ! start_broker "$backend" "$dur" "$TMP/data" 60; then
        WARNINGS+=("$backend $dur $sc run $run: broker did not start")
        return 0
    fi
    args=$(scenario_args "$sc")
    log "$backend $dur $sc run $run: starling-bench $args (port $PORT)"
    # shellcheck disable=SC2086 # args are words
    line=$(timeout -k 5 $((DURATION_SECS + 30)) "${PIN_GEN[@]}" "$BENCH" $args --port "$PORT" \
        --broker-pid "$BROKER_PID" --duration-secs "$DURATION_SECS" --label "$backend-$dur" \
        2>"$TMP/gen.err") || rc=$?
    stop_broker
    if [[ $rc != 0 || $line != "{"* ]]; then
        WARNINGS+=("$backend $dur $sc run $run: generator failed (exit $rc): $(tail -1 "$TMP/gen.err")")
        return 0
    fi
    echo "$line" >>"$TMP/$cell"
    log "  $(jnum "$line" msg_per_sec) msg/s"
    local lost dup errors
    lost=$(jnum "$line" lost) dup=$(jnum "$line" dup) errors=$(jnum "$line" errors)
    if [[ ${lost:-0} != 0 || ${dup:-0} != 0 || ${errors:-0} != 0 ]]; then
        WARNINGS+=("$backend $dur $sc run $run: lost=${lost:-} dup=${dup:-} errors=${errors:-}")
        touch "$TMP/$cell.flag"
    fi
}

median_of() { # FILE of numbers -> median, "—" when empty or missing
    [[ -s $1 ]] || { echo "—"; return; }
    sort -g "$1" | awk '{a[NR]=$1} END{if(NR%2){print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'
}
fmt1() { awk -v v="$1" 'BEGIN{ if (v ~ /^[-0-9.e+]+$/) printf "%.1f", v; else printf "%s", v }'; }
median() { # CELL -> median msg_per_sec, "—" when no run succeeded
    local f=$TMP/$1
    [[ -f $f ]] || { echo "—"; return; }
    while read -r l; do jnum "$l" msg_per_sec; done <"$f" | sort -g |
        awk '{a[NR]=$1} END{if(NR==0){print "—"} else if(NR%2){print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'
}
fmt() { awk -v v="$1" 'BEGIN{ if (v ~ /^[-0-9.e+]+$/) printf "%.0f", v; else printf "%s", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.e+]+$/ && b ~ /^[0-9.e+]+$/ && b > 0) printf "%.2f", a/b; else printf "—" }'; }

# --- throughput ---------------------------------------------------------------------
for sc in $SCENARIOS; do
    for dur in $DURABILITIES; do
        for run in $(seq "$RUNS"); do
            for backend in $BACKENDS; do run_one "$sc" "$backend" "$dur" "$run"; done
        done
    done
done

# --- migrate and replay -------------------------------------------------------------
# Each round migrates the filled sled store to every server, then starts the broker on
# every backend (sled on the source itself); the medians of RUNS rounds are reported.
secs_since() { echo "$(date +%s.%N) - $1" | bc; }
if [[ $REPLAY == 1 ]]; then
    log "filling a sled store: $SESSIONS sessions, $MESSAGES messages"
    rm -rf "$TMP/fill"
    "$FILL" "$TMP/fill" "$SESSIONS" "$MESSAGES" >&2
    for run in $(seq "$RUNS"); do
        for backend in $BACKENDS; do
            [[ $backend == sled ]] && continue
            wipe "$backend"
            log "migrate sled -> $backend, round $run"
            t0=$(date +%s.%N)
            if timeout -k 5 "$STARTUP_TIMEOUT" env RUST_LOG=warn "$STARLING" migrate \
                --from "sled:$TMP/fill" --to "$(url_of "$backend")" --force >"$TMP/migrate.log" 2>&1; then
                secs_since "$t0" >>"$TMP/migrate.$backend"
            else
                WARNINGS+=("migrate to $backend, round $run, failed: $(tail -1 "$TMP/migrate.log")")
            fi
        done
        for backend in $BACKENDS; do
            [[ $backend != sled && ! -s $TMP/migrate.$backend ]] && continue
            log "start-up on $backend, round $run"
            sync
            t0=$(date +%s.%N)
            if start_broker "$backend" sync "$TMP/fill" "$STARTUP_TIMEOUT"; then
                secs_since "$t0" >>"$TMP/startup.$backend"
                awk '/VmRSS/ {print $2 / 1024}' "/proc/$BROKER_PID/status" >>"$TMP/rss.$backend"
                stop_broker
            else
                WARNINGS+=("start-up on $backend, round $run, failed")
            fi
        done
    done
fi

# --- report -------------------------------------------------------------------------
echo "## Stores: every backend against sled, $(date +%Y-%m-%dT%H:%M)"
echo
echo "- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "- PostgreSQL: $("$PG_BIN/postgres" --version) (fsync on, synchronous_commit on); Redis: $(redis-server --version | cut -d' ' -f3) (appendonly yes, appendfsync always)"
echo "- RUNS=$RUNS per cell (medians); broker pinned to CPU 1, generator to CPU 0; backends alternate within each run and round"
echo
if [[ -n $SCENARIOS ]]; then
    hdr="| scenario | durability |" sep="|---|---|"
    for b in $BACKENDS; do hdr+=" $b |"; sep+="---:|"; done
    for b in $BACKENDS; do [[ $b != sled ]] && { hdr+=" $b/sled |"; sep+="---:|"; }; done
    echo "$hdr"
    echo "$sep"
    for sc in $SCENARIOS; do
        for dur in $DURABILITIES; do
            line="| $(scenario_args "$sc") | $dur |"
            for b in $BACKENDS; do
                v=$(fmt "$(median "$sc.$dur.$b")")
                [[ -f $TMP/$sc.$dur.$b.flag ]] && v+=" (!)"
                line+=" $v |"
            done
            for b in $BACKENDS; do
                [[ $b == sled ]] && continue
                line+=" $(ratio "$(median "$sc.$dur.$b")" "$(median "$sc.$dur.sled")") |"
            done
            echo "$line"
        done
    done
    echo
fi
if [[ $REPLAY == 1 ]]; then
    echo "Store of $SESSIONS persistent sessions and $MESSAGES queued QoS 1 messages (examples/fill_store.rs into sled, then \`starling migrate --from sled:A --to URL --force\`):"
    echo
    echo "| backend | migrate from sled (s) | start-up until accepting (s) | start-up / sled | RSS once up (MiB) |"
    echo "|---|---:|---:|---:|---:|"
    for b in $BACKENDS; do
        m=$(fmt1 "$(median_of "$TMP/migrate.$b")")
        [[ $b == sled ]] && m="(source)"
        st=$(median_of "$TMP/startup.$b")
        printf '| %s | %s | %s | %s | %s |\n' "$b" "$m" "$(fmt1 "$st")" \
            "$(ratio "$st" "$(median_of "$TMP/startup.sled")")" "$(fmt "$(median_of "$TMP/rss.$b")")"
    done
    echo
fi
if ((${#WARNINGS[@]})); then
    echo "Warnings:"
    for w in "${WARNINGS[@]}"; do echo "- $w"; done
fi
