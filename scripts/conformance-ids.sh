#!/usr/bin/env bash
# List MQTT normative-statement ids ([MQTT-x.y.z-n]) mentioned in test sources,
# with the test function each mention belongs to (the enclosing fn, or for a
# top-level comment above a test, the next fn). Output: id<TAB>file::fn<TAB>line text.
# Used to refresh CONFORMANCE.md; a mention is not proof that a test asserts it.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(ls tests/*.rs 2>/dev/null; find src -name '*tests*.rs' -o -path '*/tests/*.rs' | sort; \
        grep -rl '#\[cfg(test)\]' src | sort)
for f in $(printf '%s\n' $files | sort -u); do
  awk -v F="$f" '
    function flush(name,   i) { for (i = 1; i <= n; i++) print ids[i] "\t" F "::" name "\t" txt[i]; n = 0 }
    /^[[:space:]]*(pub )?(async )?fn [a-z0-9_]+/ {
      match($0, /fn [a-z0-9_]+/); name = substr($0, RSTART + 3, RLENGTH - 3)
      flush(name); cur = name
    }
    {
      line = $0
      while (match(line, /MQTT-[0-9]+\.[0-9]+(\.[0-9]+)?-[0-9]+/)) {
        id = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
        t = $0; gsub(/^[ \t]+/, "", t)
        if ($0 ~ /^\/\//) { n++; ids[n] = id; txt[n] = t }   # top-level comment: next fn
        else print id "\t" F "::" cur "\t" t
      }
    }
    END { flush("(end of file)") }
  ' "$f"
done | sort -t$'\t' -k1,1V -k2,2
