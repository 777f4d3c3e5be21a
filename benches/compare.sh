#!/usr/bin/env bash
# Compares Starling with Mosquitto (and rumqttd when installed) using starling-bench.
# Each run starts a fresh broker on a loopback port pinned to CPU 1, with the generator
# pinned to CPU 0, and prints a Markdown table of medians. See benches/README.md.
#
# Environment:
#   RUNS=3          runs per broker and scenario (median reported)
#   QUICK=1         message and connection counts divided by 20 (smoke test)
#   SCENARIOS="..." subset of: fanin_q0 fanin_q1 fanout_q0 fanout_q1 pairs_q0 pairs_q1 conns
#                   (default) and the workload scenarios, run only when named:
#                   broadcast (10,000 subscribers on one topic), many_topics (5,000
#                   publisher/subscriber pairs, one topic each), retained (100,000
#                   retained messages to one `#` subscriber), churn (1M subscriptions
#                   made, then unsubscribed and re-made), fanin_q1_persistent (QoS 1
#                   fan-in to persistent sessions; Starling with sync durability on sled)
#   BROKERS="..."   subset of: mosquitto starling rumqttd (default: all that are installed)
#   CONNS=N         idle connections for `conns` (default 19900, capped by ulimit -n)
#   DURATION_SECS=N hard cap of one generator run (default 300)
#   PORT_BASE=N     first loopback port tried (default 18830)
#   NO_UNPINNED=1   skip the extra unpinned Starling runs
#   NO_FLOOR=1      skip examples/conn_floor (run in the `conns` scenario beside the
#                   brokers, pinned like them: the least a server can do per connection)
#   STARLING=PATH   the Starling binary to measure (default: this tree's release build;
#                   the generator is always this tree's)
#   MOSQUITTO_NODELAY=1  add `set_tcp_nodelay true` to the Mosquitto config (default: off,
#                   Mosquitto's own default; Starling always sets TCP_NODELAY)
#   TLS=1           every broker listens with TLS (an ECDSA P-256 server certificate for
#                   127.0.0.1 from a CA made here with openssl) and every generator
#                   connection shakes hands with it (Mosquitto and Starling only)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
QUICK=${QUICK:-0}
DIV=1
[[ $QUICK == 1 ]] && DIV=20
DURATION_SECS=${DURATION_SECS:-300}
PORT=${PORT_BASE:-18830}
SCENARIOS=${SCENARIOS:-fanin_q0 fanin_q1 fanout_q0 fanout_q1 pairs_q0 pairs_q1 conns}

log() { echo "compare.sh: $*" >&2; }

# --- tools and brokers -------------------------------------------------------------
MOSQUITTO=$(command -v mosquitto || true)
[[ -z $MOSQUITTO && -x /usr/sbin/mosquitto ]] && MOSQUITTO=/usr/sbin/mosquitto
RUMQTTD=$(command -v rumqttd || true)
NOTES=()
if [[ -z $MOSQUITTO ]]; then
    NOTES+=("Mosquitto not installed (install: apt-get install -y mosquitto); skipped.")
fi
if [[ -z $RUMQTTD ]]; then
    NOTES+=("rumqttd not on PATH (install: cargo install rumqttd); skipped.")
fi
TLS=${TLS:-0}
if [[ $TLS == 1 ]]; then
    RUMQTTD=""
    NOTES+=("TLS=1: rumqttd not run (its TLS listener is not set up here).")
fi
if [[ -z ${BROKERS:-} ]]; then
    BROKERS=""
    [[ -n $MOSQUITTO ]] && BROKERS+=" mosquitto"
    BROKERS+=" starling"
    [[ -n $RUMQTTD ]] && BROKERS+=" rumqttd"
fi
for b in $BROKERS; do
    case $b in
        mosquitto) [[ -n $MOSQUITTO ]] || { log "mosquitto requested but not installed (apt-get install -y mosquitto)"; exit 1; } ;;
        rumqttd) [[ -n $RUMQTTD ]] || { log "rumqttd requested but not on PATH (cargo install rumqttd)"; exit 1; } ;;
        starling) ;;
        *) log "unknown broker $b"; exit 1 ;;
    esac
done

PIN_BROKER=() PIN_GEN=()
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    PIN_BROKER=(taskset -c 1)
    PIN_GEN=(taskset -c 0)
else
    NOTES+=("Fewer than 2 CPUs or no taskset: nothing pinned.")
fi

# Brokers and the generator inherit the raised fd limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
[[ $FDS == unlimited ]] && FDS=1048576
CONNS=${CONNS:-$((19900 / DIV))}
if ((CONNS > FDS - 100)); then
    CONNS=$((FDS - 100))
    NOTES+=("conns capped at $CONNS by ulimit -n $FDS.")
fi

log "building"
cargo build --release --bin starling --bin starling-bench >&2
[[ ${NO_FLOOR:-0} == 1 ]] || cargo build --release --example conn_floor >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET/release/starling-bench
# STARLING=path: another build of Starling in the Starling column (a before/after run).
STARLING=${STARLING:-$TARGET/release/starling}

TMP=$(mktemp -d)
BROKER_PID=""
BROKER_LOG=""
stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}
cleanup() {
    stop_broker
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# TLS=1: a CA and a server certificate for 127.0.0.1 (both ECDSA P-256).
GEN_TLS=()
if [[ $TLS == 1 ]]; then
    command -v openssl >/dev/null || { log "TLS=1 needs openssl (apt-get install -y openssl)"; exit 1; }
    P256=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${P256[@]}" -days 7 -subj /CN=bench-ca \
        -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
    openssl req "${P256[@]}" -subj /CN=127.0.0.1 \
        -keyout "$TMP/server.key" -out "$TMP/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$TMP/server.ext"
    openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" \
        -CAcreateserial -days 7 -extfile "$TMP/server.ext" -out "$TMP/server.pem" 2>/dev/null
    # Mosquitto started as root reads them as its own user (mosquitto).
    chmod a+rx "$TMP" && chmod a+r "$TMP"/server.pem "$TMP"/server.key
    GEN_TLS=(--tls-ca "$TMP/ca.pem")
fi

mkdir -p benches/results
STAMP=$(date +%Y-%m-%dT%H%M%S)
OUT=benches/results/$STAMP.jsonl
: >"$OUT"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_broker NAME PINNED(1|0): fresh broker on a free port; sets PORT, BROKER_PID.
start_broker() {
    local name=$1 pinned=$2 pin=()
    [[ $pinned == 1 ]] && pin=("${PIN_BROKER[@]}")
    PORT=$((PORT + 1))
    while port_open "$PORT"; do PORT=$((PORT + 1)); done
    local dir=$TMP/$name-$PORT
    mkdir -p "$dir"
    BROKER_LOG=$dir/log
    case $name in
        starling)
            # Limits like the Mosquitto config below: connections, queues and messages in
            # flight per client effectively unbounded (the defaults cap connections at
            # 10,000, queues at 10,000 messages and the in-flight window at 64).
            cat >"$dir/starling.toml" <<EOF
[limits]
max_connections = 100000
max_queued_messages = 10000000
max_queued_bytes = 4294967296
max_inflight = 65535
EOF
            local listen=(--listen "127.0.0.1:$PORT")
            if [[ $TLS == 1 ]]; then
                listen=()
                printf '\n[[listeners]]\nkind = "tls"\nbind = "127.0.0.1:%s"\ncert = "%s"\nkey = "%s"\n' \
                    "$PORT" "$TMP/server.pem" "$TMP/server.key" >>"$dir/starling.toml"
            fi
            RUST_LOG=warn "${pin[@]}" "$STARLING" --config "$dir/starling.toml" \
                "${listen[@]}" --data-dir "$dir/data" >"$BROKER_LOG" 2>&1 &
            ;;
        mosquitto)
            cat >"$dir/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
max_connections -1
log_dest stderr
log_type error
log_type warning
EOF
            # Mosquitto leaves Nagle on by default; Starling sets TCP_NODELAY.
            [[ ${MOSQUITTO_NODELAY:-0} == 1 ]] && echo "set_tcp_nodelay true" >>"$dir/mosquitto.conf"
            if [[ $TLS == 1 ]]; then
                printf 'certfile %s\nkeyfile %s\n' "$TMP/server.pem" "$TMP/server.key" >>"$dir/mosquitto.conf"
            fi
            "${pin[@]}" "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$BROKER_LOG" 2>&1 &
            ;;
        conn_floor)
            "${pin[@]}" "$TARGET/release/examples/conn_floor" "127.0.0.1:$PORT" >"$BROKER_LOG" 2>&1 &
            ;;
        rumqttd)
            # rumqttd 0.20 format (its rumqttd.toml): one MQTT 3.1.1 (v4) server.
            cat >"$dir/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = 100000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF
            "${pin[@]}" "$RUMQTTD" -c "$dir/rumqttd.toml" >"$BROKER_LOG" 2>&1 &
            ;;
    esac
    BROKER_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            log "$name exited at start:"; tail -5 "$BROKER_LOG" >&2; BROKER_PID=""; return 1
        fi
        port_open "$PORT" && return 0
        sleep 0.1
    done
    log "$name did not listen on $PORT within 10 s"; stop_broker; return 1
}

# Scenario key -> generator arguments.
scenario_args() {
    case $1 in
        fanin_q0) echo "fanin --publishers 4 --messages $((100000 / DIV)) --qos 0" ;;
        fanin_q1) echo "fanin --publishers 4 --messages $((100000 / DIV)) --qos 1" ;;
        fanout_q0) echo "fanout --subscribers 50 --messages $((50000 / DIV)) --qos 0" ;;
        fanout_q1) echo "fanout --subscribers 50 --messages $((50000 / DIV)) --qos 1" ;;
        pairs_q0) echo "pairs --pairs 50 --window 8 --messages $((10000 / DIV)) --qos 0" ;;
        pairs_q1) echo "pairs --pairs 50 --window 8 --messages $((10000 / DIV)) --qos 1" ;;
        conns) echo "conns --connections $CONNS --subscribe --concurrency 64" ;;
        broadcast) echo "fanout --subscribers $((10000 / DIV)) --messages $((200 / (DIV > 1 ? 4 : 1))) --qos 0" ;;
        many_topics) echo "pairs --pairs $((5000 / DIV)) --window 4 --messages $((200 / (DIV > 1 ? 4 : 1))) --qos 0" ;;
        retained) echo "retained --messages $((100000 / DIV)) --qos 0" ;;
        churn) echo "churn --clients 100 --subscriptions $((1000000 / DIV)) --per-packet 100 --cycles 1" ;;
        fanin_q1_persistent) echo "fanin --publishers 4 --messages $((25000 / DIV)) --qos 1 --persistent" ;;
        *) log "unknown scenario $1"; return 1 ;;
    esac
}

jnum() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
WARNINGS=()

# run_one KEY BROKER(column name) RUN: one fresh broker, one generator run.
run_one() {
    local key=$1 column=$2 run=$3 broker=$2 pinned=1 gen_pin=("${PIN_GEN[@]}")
    if [[ $column == starling-unpinned ]]; then broker=starling pinned=0 gen_pin=(); fi
    if ! start_broker "$broker" "$pinned"; then
        WARNINGS+=("$column $key run $run: broker did not start")
        return 0
    fi
    local args line rc=0
    args=$(scenario_args "$key")
    log "$column $key run $run: starling-bench $args (port $PORT)"
    # shellcheck disable=SC2086 # args are words
    line=$(timeout -k 5 $((DURATION_SECS + 30)) "${gen_pin[@]}" "$BENCH" $args "${GEN_TLS[@]}" --port "$PORT" \
        --broker-pid "$BROKER_PID" --duration-secs "$DURATION_SECS" --label "$column" \
        2>"$TMP/gen.err") || rc=$?
    stop_broker
    if [[ $rc != 0 || $line != "{"* ]]; then
        WARNINGS+=("$column $key run $run: generator failed (exit $rc): $(tail -1 "$TMP/gen.err")")
        return 0
    fi
    echo "{\"key\":\"$key\",\"broker\":\"$column\",\"run\":$run,${line#\{}" >>"$OUT"
    echo "$line" >>"$TMP/$key.$column"
    local lost dup reorder errors cpu
    lost=$(jnum "$line" lost) dup=$(jnum "$line" dup) reorder=$(jnum "$line" reorder)
    errors=$(jnum "$line" errors) cpu=$(jnum "$line" gen_cpu_pct)
    if [[ ${lost:-0} != 0 || ${dup:-0} != 0 || ${reorder:-0} != 0 || ${errors:-0} != 0 ]]; then
        WARNINGS+=("$column $key run $run: lost=${lost:-} dup=${dup:-} reorder=${reorder:-} errors=${errors:-} $(sed -n 's/.*"first_error":\("[^"]*"\).*/\1/p' <<<"$line")")
        touch "$TMP/$key.$column.flag"
    fi
    if [[ -n $cpu ]] && awk "BEGIN{exit !($cpu > 90)}"; then
        WARNINGS+=("$column $key run $run: generator CPU ${cpu}% (saturated? numbers are a floor)")
    fi
}

COLUMNS_RUN=""
for b in $BROKERS; do COLUMNS_RUN+=" $b"; done
for key in $SCENARIOS; do
    scenario_args "$key" >/dev/null
    for run in $(seq "$RUNS"); do
        for column in $COLUMNS_RUN; do
            run_one "$key" "$column" "$run"
        done
        if [[ ${NO_UNPINNED:-0} != 1 && $key == fan* && " $BROKERS " == *" starling "* ]]; then
            run_one "$key" starling-unpinned "$run"
        fi
        if [[ ${NO_FLOOR:-0} != 1 && $key == conns ]]; then
            run_one "$key" conn_floor "$run"
        fi
    done
done

# median KEY COLUMN METRIC -> value or "n/a" (with " (!)" when a run had loss/errors)
median() {
    local f=$TMP/$1.$2 v
    [[ -f $f ]] || { echo "—"; return; }
    v=$(while read -r l; do jnum "$l" "$3"; done <"$f" | sort -g |
        awk '{a[NR]=$1} END{if(NR==0){print "n/a"} else if(NR%2){print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}')
    [[ -f $f.flag ]] && v="$v (!)"
    echo "$v"
}
fmt() {
    local v=$1 flag=""
    if [[ $v == *" (!)" ]]; then flag=" (!)" v=${v% (!)}; fi
    awk -v v="$v" 'BEGIN{ if (v ~ /^[-0-9.e+]+$/) printf "%.0f", v; else printf "%s", v }'
    printf "%s" "$flag"
}
ratio() {
    awk -v s="${1%% *}" -v m="${2%% *}" 'BEGIN{ if (s ~ /^[0-9.e+]+$/ && m ~ /^[0-9.e+]+$/ && m > 0) printf "%.2f", s/m; else printf "—" }'
}

row() { # label key metric
    local m s u r line
    m=$(median "$2" mosquitto "$3") s=$(median "$2" starling "$3")
    u=$(median "$2" starling-unpinned "$3") r=$(median "$2" rumqttd "$3")
    line="| $1 | $(fmt "$m") | $(fmt "$s") | $(ratio "$s" "$m") | $(fmt "$u") |"
    [[ -n $RUMQTTD ]] && line+=" $(fmt "$r") |"
    echo "$line"
}

report() {
    echo "## starling-bench comparison, $STAMP"
    echo
    echo "- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    local mv="not installed"
    if [[ -n $MOSQUITTO ]]; then mv=$("$MOSQUITTO" -h 2>&1 | head -1 || true); fi
    [[ ${MOSQUITTO_NODELAY:-0} == 1 ]] && mv+=" (set_tcp_nodelay true)"
    echo "- Mosquitto: $mv"
    echo "- Starling: $STARLING, tree at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo " (with uncommitted changes)")"
    [[ -n $RUMQTTD ]] && echo "- rumqttd: $("$RUMQTTD" --version 2>&1 | head -1)"
    echo "- Runs: $RUNS per cell (median), QUICK=$QUICK; broker on CPU 1, generator on CPU 0 (\"unpinned\": neither pinned)"
    [[ $TLS == 1 ]] && echo "- TLS=1: every connection over TLS 1.3 (ECDSA P-256 server certificate); the conns rate counts TLS handshake + CONNECT + SUBSCRIBE"
    echo
    local head="| scenario | Mosquitto | Starling | ratio (Starling/Mosquitto) | Starling unpinned |"
    local sep="|---|---:|---:|---:|---:|"
    [[ -n $RUMQTTD ]] && head+=" rumqttd |" && sep+="---:|"
    echo "$head"
    echo "$sep"
    local n=$((100000 / DIV)) f=$((50000 / DIV)) p=$((10000 / DIV))
    for key in $SCENARIOS; do
        case $key in
            fanin_q0) row "fanin QoS 0, 4 pubs × $n → 1 sub (msg/s)" "$key" msg_per_sec ;;
            fanin_q1) row "fanin QoS 1, 4 pubs × $n → 1 sub (msg/s)" "$key" msg_per_sec ;;
            fanout_q0) row "fanout QoS 0, 1 pub × $f → 50 subs (deliveries/s)" "$key" msg_per_sec ;;
            fanout_q1) row "fanout QoS 1, 1 pub × $f → 50 subs (deliveries/s)" "$key" msg_per_sec ;;
            pairs_q0)
                row "pairs QoS 0, 50 pairs × $p, window 8: p50 (µs, lower is better)" "$key" p50_us
                row "pairs QoS 0: p99 (µs, lower is better)" "$key" p99_us
                row "pairs QoS 0: throughput (msg/s)" "$key" msg_per_sec
                ;;
            pairs_q1)
                row "pairs QoS 1, 50 pairs × $p, window 8: p50 (µs, lower is better)" "$key" p50_us
                row "pairs QoS 1: p99 (µs, lower is better)" "$key" p99_us
                row "pairs QoS 1: throughput (msg/s)" "$key" msg_per_sec
                ;;
            conns)
                row "$CONNS idle conns + 1 sub each: rate (conn/s)" "$key" conn_per_sec
                row "$CONNS idle conns + 1 sub each: broker RSS/conn (bytes, lower is better)" "$key" rss_per_conn
                if [[ ${NO_FLOOR:-0} != 1 ]]; then
                    local fr fm sr
                    fr=$(median "$key" conn_floor conn_per_sec) fm=$(median "$key" conn_floor rss_per_conn)
                    sr=$(median "$key" starling conn_per_sec)
                    FLOOR_LINE="examples/conn_floor in the same run (\`conns\`, same generator, pinned alike): $(fmt "$fr") conn/s, RSS/conn $(fmt "$fm") B; Starling/conn_floor rate ratio $(ratio "$sr" "$fr")."
                fi
                ;;
            broadcast) row "broadcast QoS 0, 1 pub → $((10000 / DIV)) subs (deliveries/s)" "$key" msg_per_sec ;;
            many_topics)
                row "many topics QoS 0, $((5000 / DIV)) pairs, window 4 (msg/s)" "$key" msg_per_sec
                row "many topics QoS 0: p99 (µs, lower is better)" "$key" p99_us
                ;;
            retained) row "$((100000 / DIV)) retained → 1 \`#\` sub (msg/s)" "$key" msg_per_sec ;;
            churn)
                row "churn: subscribe $((1000000 / DIV)) filters, 100 clients (filters/s)" "$key" sub_per_sec
                row "churn: unsubscribe + re-subscribe, trie full (filters/s)" "$key" churn_per_sec
                row "churn: broker RSS per subscription (bytes, lower is better)" "$key" rss_per_sub
                ;;
            fanin_q1_persistent) row "fanin QoS 1 to a persistent session, 4 pubs × $((25000 / DIV)) (msg/s)" "$key" msg_per_sec ;;
        esac
    done
    [[ -n ${FLOOR_LINE:-} ]] && echo && echo "$FLOOR_LINE"
    echo
    echo "CPU use during the measured interval, median, % of one core (broker / generator):"
    echo
    head="| scenario | Mosquitto | Starling | Starling unpinned |"
    sep="|---|---:|---:|---:|"
    [[ -n $RUMQTTD ]] && head+=" rumqttd |" && sep+="---:|"
    echo "$head"
    echo "$sep"
    for key in $SCENARIOS; do
        local line="| $key |" col
        for col in mosquitto starling starling-unpinned rumqttd; do
            [[ $col == rumqttd && -z $RUMQTTD ]] && continue
            line+=" $(fmt "$(median "$key" "$col" broker_cpu_pct)") / $(fmt "$(median "$key" "$col" gen_cpu_pct)") |"
        done
        echo "$line"
    done
    echo
    echo "A broker well under 100% in a throughput row was not CPU-bound (waiting on"
    echo "something: for Mosquitto usually Nagle + delayed ACK, see MOSQUITTO_NODELAY)."
    echo "(!) = at least one run had loss, duplicates, reordering or errors; see the notes."
    echo "Raw results: $OUT"
    if ((${#NOTES[@]} + ${#WARNINGS[@]} > 0)); then
        echo
        echo "Notes:"
        for n in "${NOTES[@]}" "${WARNINGS[@]}"; do echo "- $n"; done
    fi
}

report | tee "benches/results/$STAMP.md"
