#!/usr/bin/env bash
# Start-up (replay) time of a broker whose store holds SESSIONS persistent sessions and
# MESSAGES queued messages: fills a fresh data dir, then times `starling` from launch
# until its listener accepts connections, and reports its RSS once up.
# Usage: benches/startup.sh [SESSIONS] [MESSAGES]   (defaults 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${1:-100000}
MESSAGES=${2:-1000000}
PORT=${PORT:-28883}
cargo build --release --quiet --bin starling --example fill_store
DIR=$(mktemp -d)
trap 'kill -9 "${PID:-}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
target/release/examples/fill_store "$DIR" "$SESSIONS" "$MESSAGES"
START=$(date +%s.%N)
RUST_LOG=warn target/release/starling --listen "127.0.0.1:$PORT" --data-dir "$DIR" 2>"$DIR/log" &
PID=$!
for _ in $(seq 1 6000); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
done
END=$(date +%s.%N)
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
echo "{\"sessions\":$SESSIONS,\"messages\":$MESSAGES,\"startup_secs\":$(echo "$END - $START" | bc),\"rss_kib\":$RSS}"
