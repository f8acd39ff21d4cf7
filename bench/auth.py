#!/usr/bin/env python3
"""auth.py -- scripts/bench part g: what mail authentication costs a run.

Usage: auth.py --runs N --out JSON NAME=CONFIG:MESSAGE[:ARGS] ...

Runs `PIPESCAN -c CONFIG ARGS` with MESSAGE on stdin, interleaved (one run of every contender
per round, rotated), and reports for each: the median wall time and the median CPU time (user +
system of the child, from wait4's rusage), so that the cost of verification or signing shows
as CPU, apart from the time spent waiting for DNS. PIPESCAN comes from the environment.
"""
import json
import os
import statistics
import sys
import time


def one(binary, conf, msg, args):
    fa = [(os.POSIX_SPAWN_OPEN, 0, msg, os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
          (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    argv = [binary, "-c", conf] + args
    t0 = time.perf_counter()
    pid = os.posix_spawn(binary, argv, os.environ, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000, code


def main():
    a = sys.argv[1:]
    runs, out = 50, None
    contenders = []
    while a:
        if a[0] == "--runs":
            runs = int(a[1]); a = a[2:]
        elif a[0] == "--out":
            out = a[1]; a = a[2:]
        else:
            name, spec = a[0].split("=", 1)
            conf, msg, *rest = spec.split(":", 2)
            args = rest[0].split() if rest else ["-f", "alice@example.test", "--", "bob@example.com"]
            contenders.append((name, conf, msg, args))
            a = a[1:]
    binary = os.environ["PIPESCAN"]
    res = {n: {"wall": [], "cpu": [], "bad": 0} for n, *_ in contenders}
    for r in range(runs + 3):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for name, conf, msg, args in order:
            wall, cpu, code = one(binary, conf, msg, args)
            if r < 3:
                continue  # warm-up
            res[name]["wall"].append(wall)
            res[name]["cpu"].append(cpu)
            res[name]["bad"] += code != 0
    summary = {}
    for name, *_ in contenders:
        w, c = res[name]["wall"], res[name]["cpu"]
        summary[name] = {
            "median_wall_ms": statistics.median(w),
            "median_cpu_ms": statistics.median(c),
            "mean_cpu_ms": statistics.mean(c),
            "max_wall_ms": max(w),
            "nonzero_exits": res[name]["bad"],
        }
        print(f"  {name:<34} wall median {statistics.median(w):7.2f} ms   "
              f"CPU median {statistics.median(c):6.2f} ms (mean {statistics.mean(c):6.2f})"
              + (f"   {res[name]['bad']} runs exited non-zero!" if res[name]["bad"] else ""))
    if out:
        json.dump(summary, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
