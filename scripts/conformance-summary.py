#!/usr/bin/env python3
"""Recomputes the Summary tables of CONFORMANCE.md from its per-section tables.

Counts, per spec and section, the statements, the server-applicable ones ("Applies to"
starts with "server") and their status. Rewrites the text between "## Summary" and the
next "## " heading in place. Usage: scripts/conformance-summary.py [CONFORMANCE.md]"""

import re
import sys
from collections import OrderedDict

STATUSES = ["tested", "partial", "decoder only", "no test"]


def parse(text):
    sections = OrderedDict()
    current = None
    for line in text.splitlines():
        m = re.match(r"### (MQTT [0-9.]+) ([0-9]+\.[0-9]+) (.*)", line)
        if m:
            current = (m.group(1), m.group(2), m.group(3).strip())
            sections[current] = []
            continue
        if current and line.startswith("| ") and re.match(r"\| [0-9]", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            sections[current].append((cells[2], cells[3]))
    return sections


def counts(rows):
    server = [status for applies, status in rows if applies.startswith("server")]
    return [len(rows), len(server)] + [server.count(s) for s in STATUSES]


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def summary(sections):
    out = ["## Summary", "",
           "Counts of statements; the last four columns split the server-applicable ones "
           "(server + server-and-client). Recomputed by `scripts/conformance-summary.py`.", "",
           "| Spec | Chapter | Statements | Server-applicable | Tested | Partial | Decoder only | No test |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for spec in sorted({s for s, _, _ in sections}):
        total = [0] * 6
        for chapter in ("3", "4"):
            rows = [r for (s, sec, _), rs in sections.items() if s == spec
                    and sec.split(".")[0] == chapter for r in rs]
            c = counts(rows)
            total = [a + b for a, b in zip(total, c)]
            out.append(row([spec, chapter] + c))
        out.append(row([f"**{spec}**", "**3+4**"] + [f"**{n}**" for n in total]))
    out += ["", "Per section:", "",
            "| Spec | Section | Statements | Server-applicable | Tested | Partial | Decoder only | No test |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (spec, sec, name), rows in sections.items():
        out.append(row([spec, f"{sec} {name}"] + counts(rows)))
    return "\n".join(out) + "\n\n"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "CONFORMANCE.md"
    text = open(path).read()
    start = text.index("## Summary")
    end = text.index("\n## ", start + 1) + 1
    text = text[:start] + summary(parse(text)) + text[end:]
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
