#!/usr/bin/env bash
# `starling migrate` time for a store of SESSIONS persistent sessions and MESSAGES queued
# messages: fills a fresh sled data dir (examples/fill_store.rs, through the Store
# trait), then times `starling migrate --from sled:A --to TARGET` (copy, flush, verify).
# Usage: benches/migrate.sh [SESSIONS] [MESSAGES] [TARGET]
#   (defaults 100000 1000000 and a fresh sled:DIR; TARGET may be postgres://... or redis://...)
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${1:-100000}
MESSAGES=${2:-1000000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin starling --example fill_store
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
TARGET=${3:-sled:$DIR/b}
"$TARGET_DIR"/release/examples/fill_store "$DIR/a" "$SESSIONS" "$MESSAGES"
START=$(date +%s.%N)
RUST_LOG=warn "$TARGET_DIR"/release/starling migrate --from "sled:$DIR/a" --to "$TARGET" --force
END=$(date +%s.%N)
echo "{\"sessions\":$SESSIONS,\"messages\":$MESSAGES,\"migrate_secs\":$(echo "$END - $START" | bc)}"
