#!/usr/bin/env python3
"""timings.py FILE [WALL_JSON NAME] -- medians of `pipescan --timings` lines.

FILE holds one `timings: read 0.1 ms, parse 0.0 ms, spamd 123.4 ms, ..., total 130.2 ms` line
per run (stderr collected by timeit.py --stderr-of). Prints the median of every stage and, when
the timeit.py JSON and the command's name are given, the median of (wall time - scanner stages)
paired run by run: what the process costs beyond waiting for its slowest scanner.
"""
import json
import re
import statistics
import sys

runs = []
for line in open(sys.argv[1]):
    i = line.find("timings: ")
    if i < 0:
        continue
    stages = {}
    for part in line[i + 9:].strip().split(", "):
        m = re.fullmatch(r"(.+) ([0-9.]+) ms", part)
        if m:
            stages[m.group(1)] = float(m.group(2))
    runs.append(stages)
if not runs:
    sys.exit(f"timings.py: no timings lines in {sys.argv[1]}")
order = []
for r in runs:
    for k in r:
        if k not in order:
            order.append(k)
print("  stage medians over %d runs: " % len(runs) + ", ".join(
    f"{k} {statistics.median([r.get(k, 0.0) for r in runs]):.2f} ms" for k in order))
scanners = [k for k in order if k in ("spamd", "clamd", "rspamd", "av_command")]
if scanners:
    own = [r["total"] - max(r.get(k, 0.0) for k in scanners) for r in runs]
    print(f"  inside pipescan, total - slowest scanner: median {statistics.median(own):.2f} ms")
if len(sys.argv) >= 4:
    wall = json.load(open(sys.argv[2]))[sys.argv[3]]["samples_ms"]
    if len(wall) == len(runs) and scanners:
        d = [w - max(r.get(k, 0.0) for k in scanners) for w, r in zip(wall, runs)]
        print(f"  wall - slowest scanner (run by run, process start and exit included): "
              f"median {statistics.median(d):.2f} ms")
