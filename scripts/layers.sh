#!/usr/bin/env bash
# Checks that the library's modules import each other only downwards (ARCHITECTURE.md,
# "Layers"): for every top-level module under src/, the `crate::<module>` paths it names
# must be in its allowed list below. Prints each forbidden edge with the line naming it
# and exits 1 if there is one. `scripts/layers.sh --graph` prints the current edges.
set -euo pipefail
cd "$(dirname "$0")/.."

# module: the modules it may import (lowest layers first in the file).
declare -A ALLOWED=(
    [topic]=""
    [protocol]="topic"
    [message]="protocol topic"
    [config]="protocol"
    [delivery]="message protocol topic"
    [guard]=""
    [hooks]="message protocol topic"
    [auth]="config hooks protocol topic"
    [transport]=""
    [metrics]="protocol"
    [persistence]="config delivery guard message metrics protocol topic"
    [router]="config delivery guard message persistence protocol topic"
    [session]="auth config delivery hooks message metrics persistence protocol router sys topic transport"
    [sys]="message metrics protocol router topic"
    [cluster]="config delivery message metrics persistence protocol router session sys topic"
    [local]="config delivery hooks message metrics protocol router session topic transport"
    [http]="message metrics protocol router session topic"
    [broker]="auth cluster config hooks http local message metrics persistence protocol router session sys topic transport"
)

files_of() {
    if [[ -d src/$1 ]]; then find "src/$1" -name '*.rs'; fi
    if [[ -f src/$1.rs ]]; then echo "src/$1.rs"; fi
}

status=0
for module in "${!ALLOWED[@]}"; do
    allowed=" ${ALLOWED[$module]} $module "
    # (Comments may name any module.)
    used=$( (files_of "$module" | xargs grep -hE 'crate::[a-z_]+' || true) | grep -vE '^\s*//' |
        grep -oE 'crate::[a-z_]+' | sed 's/crate:://' | sort -u || true)
    for dep in $used; do
        if [[ ${1:-} == --graph ]]; then
            echo "$module -> $dep"
        elif [[ $allowed != *" $dep "* ]]; then
            echo "layers: $module must not import $dep:" >&2
            files_of "$module" | xargs grep -nE "crate::$dep\b" | grep -vE '^[^:]+:[0-9]+:\s*//' >&2 || true
            status=1
        fi
    done
done
# Every module of the library is listed.
for path in src/*; do
    name=$(basename "$path" .rs)
    case $name in lib | main | bin) continue ;; esac
    if [[ -z ${ALLOWED[$name]+x} ]]; then
        echo "layers: module $name is not in scripts/layers.sh" >&2
        status=1
    fi
done
exit $status
