#!/usr/bin/env python3
"""timeit.py -- run commands side by side, interleaved, and print medians and ratios.

Usage: timeit.py [--runs N] [--warmup N] [--stdin FILE] [--ref NAME] [--json OUT]
                 [--stderr-of NAME=FILE] [--ok-exit NAME=CODE,...] NAME=COMMAND [NAME=COMMAND...]

Each COMMAND is split like a shell would split words (shlex) and run directly with
posix_spawn (no shell, unless the command itself is `sh -c ...`), stdin from FILE (re-opened
for every run), stdout to /dev/null, stderr to /dev/null (or, for --stderr-of NAME, appended
to FILE, e.g. to collect `pipescan --timings` lines).

Runs are interleaved: round 1 runs every command once (in an order rotated each round), then
round 2, ... so that a slow spell of a shared machine hits every command alike. Wall time is
measured around spawn + waitpid. A run that exits with another status than 0 (or
the --ok-exit codes given for that command) is reported (and the benchmark is
suspect). No memory figure here: a child spawned from Python inherits Python's ru_maxrss across
exec (Linux keeps the high-water mark of the pre-exec address space); scripts/bench measures
peak RSS with GNU time instead.

The harness's own cost (spawning /bin/true) is measured the same way and printed, so that a
reader can judge how much of a small figure is the harness.
"""
import json
import os
import shlex
import statistics
import sys
import time


def spawn_ns(argv, stdin_path, stderr_path=None):
    """One run: stdin from stdin_path, stdout to /dev/null, stderr appended to stderr_path (or
    /dev/null). Returns (start ns, end ns, exit code), perf_counter_ns around spawn + waitpid."""
    fa = [(os.POSIX_SPAWN_OPEN, 0, stdin_path or "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
    if stderr_path:
        fa.append((os.POSIX_SPAWN_OPEN, 2, stderr_path,
                   os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    else:
        fa.append((os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0))
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    return t0, t1, os.waitstatus_to_exitcode(status)


def spawn(argv, stdin_path, stderr_path):
    t0, t1, code = spawn_ns(argv, stdin_path, stderr_path)
    return (t1 - t0) / 1e6, code


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def main():
    args = sys.argv[1:]
    runs, warmup, stdin, ref, out, stderr_of, ok_exit = 30, 3, None, None, None, {}, {}
    cmds = []
    while args:
        a = args.pop(0)
        if a == "--runs":
            runs = int(args.pop(0))
        elif a == "--warmup":
            warmup = int(args.pop(0))
        elif a == "--stdin":
            stdin = args.pop(0)
        elif a == "--ref":
            ref = args.pop(0)
        elif a == "--json":
            out = args.pop(0)
        elif a == "--ok-exit":
            n, c = args.pop(0).split("=", 1)
            ok_exit[n] = {int(x) for x in c.split(",")}
        elif a == "--stderr-of":
            n, f = args.pop(0).split("=", 1)
            stderr_of[n] = f
        elif "=" in a:
            n, c = a.split("=", 1)
            cmds.append((n, shlex.split(c)))
        else:
            sys.exit(f"timeit.py: bad argument {a!r}")
    if not cmds:
        sys.exit(__doc__)
    all_cmds = [("(harness: /bin/true)", ["/bin/true"])] + cmds
    times = {n: [] for n, _ in all_cmds}
    fails = {n: {} for n, _ in all_cmds}
    for r in range(warmup + runs):
        k = r % len(all_cmds)
        for n, argv in all_cmds[k:] + all_cmds[:k]:
            ms, code = spawn(argv, stdin, stderr_of.get(n) if r >= warmup else None)
            if r < warmup:
                continue
            times[n].append(ms)
            if code not in ok_exit.get(n, {0}):
                fails[n][code] = fails[n].get(code, 0) + 1
    ref = ref or cmds[0][0]
    ref_med = statistics.median(times[ref])
    width = max(len(n) for n, _ in all_cmds)
    print(f"  {'command':<{width}}  {'median ms':>9}  {'p10':>7}  {'p90':>7}  {'ratio':>6}")
    result = {}
    for n, _ in all_cmds:
        med = statistics.median(times[n])
        line = (f"  {n:<{width}}  {med:9.2f}  {pct(times[n], .1):7.2f}  {pct(times[n], .9):7.2f}"
                f"  {med / ref_med:6.2f}")
        if fails[n]:
            line += "  FAILED exits: " + ", ".join(f"{c}x{k}" for c, k in fails[n].items())
        print(line)
        result[n] = {"median_ms": med, "p10_ms": pct(times[n], .1), "p90_ms": pct(times[n], .9),
                     "ratio": med / ref_med, "runs": len(times[n]),
                     "failed": sum(fails[n].values()), "samples_ms": times[n]}
    print(f"  ({runs} interleaved runs each after {warmup} warm-up rounds; ratio = median / median of {ref})")
    if out:
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
