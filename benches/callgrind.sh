#!/usr/bin/env bash
# Runs the broker under callgrind for one starling-bench scenario and prints the
# broker's total instruction count (Ir). Instruction counts repeat from run to run and
# do not care what else the machine is doing, unlike wall-clock numbers.
#
#   benches/callgrind.sh OUT_PREFIX -- SCENARIO ARGS...
#   benches/callgrind.sh /tmp/fanout_q1 -- fanout --subscribers 10 --messages 2000 --qos 1
#
# Writes OUT_PREFIX.callgrind (callgrind_annotate it) and OUT_PREFIX.json (the
# generator's line). Run it twice with different message counts and divide the
# difference in Ir by the difference in deliveries: that cancels start-up, connection
# set-up and shutdown and leaves the cost per delivery.
#
# EXTRA_LIMITS adds lines to the broker's [limits] table, e.g. compare.sh's in-flight
# window: EXTRA_LIMITS="max_inflight = 65535" (the default window is 64).
set -euo pipefail

out=${1:?usage: $0 OUT_PREFIX -- SCENARIO ARGS...}
shift
[[ ${1:-} == -- ]] && shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STARLING=${STARLING:-$ROOT/target/release/starling}
BENCH=${BENCH:-$ROOT/target/release/starling-bench}
PORT=${PORT:-19883}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/starling.toml" <<EOF
[limits]
max_connections = 100000
max_queued_messages = 10000000
max_queued_bytes = 4294967296
${EXTRA_LIMITS:-}
EOF

RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out.callgrind" \
    "$STARLING" --config "$dir/starling.toml" --listen "127.0.0.1:$PORT" \
    --data-dir "$dir/data" 2>"$dir/broker.log" &
vg=$!
# Valgrind takes a while to start the broker, longer on a busy machine.
up=0
for _ in $(seq 1 900); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
    sleep 0.2
done
if [[ $up != 1 ]]; then
    echo "broker did not start listening on $PORT; see $dir/broker.log" >&2
    kill "$vg" 2>/dev/null || true
    exit 1
fi
"$BENCH" "$@" --port "$PORT" --duration-secs 120 --drain-ms 3000 >"$out.json"
kill -INT "$vg"
wait "$vg" || true
cat "$out.json"
grep -E '^(summary|totals):' "$out.callgrind" | head -1
