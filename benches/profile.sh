#!/usr/bin/env bash
# Samples the broker with `perf record` (cpu-clock, so it works where hardware counters
# are "not supported") during one starling-bench scenario, and prints where the time
# went: kernel vs broker vs libc, and the top symbols.
#
#   benches/profile.sh OUT -- SCENARIO ARGS...
#   benches/profile.sh /tmp/fo -- --qos 1 fanout --subscribers 50 --messages 50000
#
# The broker runs pinned to CPU 1 and the generator to CPU 0, as in compare.sh, with
# the same unlimited queues. OUT.data is perf's file: `perf report -i OUT.data`.
# Environment: PORT (default 19884), FREQ (samples/s, default 1999), CONFIG (extra
# TOML appended to the broker's config, e.g. '[server]\nrouter_thread = "dedicated"').
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 && $2 == -- ]] || { echo "usage: $0 OUT -- SCENARIO ARGS..." >&2; exit 2; }
OUT=$1
shift 2
command -v perf >/dev/null || { echo "perf not installed (apt-get install -y linux-perf)" >&2; exit 1; }
PORT=${PORT:-19884}
cargo build --release --bin starling --bin starling-bench >&2
TMP=$(mktemp -d)
trap 'kill "$BROKER" 2>/dev/null || true; rm -rf "$TMP"' EXIT
printf '[limits]\nmax_connections = 100000\nmax_queued_messages = 10000000\nmax_queued_bytes = 4294967296\n%b\n' \
    "${CONFIG:-}" >"$TMP/starling.toml"
RUST_LOG=warn taskset -c 1 target/release/starling --config "$TMP/starling.toml" \
    --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" >"$TMP/log" 2>&1 &
BROKER=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
perf record -F "${FREQ:-1999}" -g -p "$BROKER" -o "$OUT.data" 2>"$TMP/perf.err" &
PERF=$!
sleep 0.3
taskset -c 0 target/release/starling-bench --port "$PORT" --broker-pid "$BROKER" "$@"
kill -INT "$PERF"
wait "$PERF" || true
echo "== share by object"
perf report -i "$OUT.data" --no-children --sort dso -g none 2>/dev/null | grep '%' | head -5
echo "== top symbols"
perf report -i "$OUT.data" --no-children --sort sym -g none 2>/dev/null | grep '%' | head -25
