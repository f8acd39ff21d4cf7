#!/usr/bin/env python3
"""scan-overhead.py -- what each command costs beyond its spamd exchange, run by run.

Usage: scan-overhead.py --spamd HOST:PORT --listen PORT [--runs N] [--warmup N] --stdin FILE
                        [--ref NAME] [--json OUT] [--minus NAME=STAGE]
                        NAME=COMMAND [NAME=COMMAND...]

spamd takes 200-300 ms for a 10 KB message here, with a p10..p90 spread of about 90 ms from
one request to the next: medians of wall times cannot show a difference of a few ms. So every
command talks to spamd through a relay on 127.0.0.1:PORT that notes, for each connection, when
it accepted it and when it passed on the last byte of spamd's answer. For each run:

  wall     spawn to exit (posix_spawn + waitpid, as timeit.py)
  scan     accept to the last byte of the answer, at the relay: the exchange itself
  outside  wall - scan: process start, reading, parsing, our own work, reinjection, exit

The relay's own cost is inside `scan`, alike for every command. `outside` hardly varies, so
"outside of pipescan - outside of spamc -c" is pipescan's overhead over the bare scan. Commands
run interleaved (round-robin, rotated each round), stdin from FILE, stdout and stderr to
/dev/null. A command must make exactly one connection per run.

--minus NAME=STAGE: command NAME prints a `pipescan --timings` line on stderr; its STAGE
(e.g. reinject: the delivery command's run) is taken off its `outside`, run by run, and shown
as a second row "NAME - STAGE".
"""
import re
import json
import os
import shlex
import socket
import statistics
import sys
import threading
import time

# This directory's timeit.py (the harness of the other parts), not the standard library's.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timeit import pct, spawn_ns  # noqa: E402


class Relay:
    def __init__(self, listen_port, upstream):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(16)
        self.lock = threading.Lock()
        self.done = []  # (accepted_ns, last_byte_ns) per finished connection
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            client, _ = self.sock.accept()
            t0 = time.perf_counter_ns()
            threading.Thread(target=self.relay, args=(client, t0), daemon=True).start()

    def relay(self, client, t0):
        up = socket.create_connection(self.upstream)
        for s in (client, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def forward_request():
            try:
                while True:
                    b = client.recv(65536)
                    if not b:
                        up.shutdown(socket.SHUT_WR)
                        return
                    up.sendall(b)
            except OSError:
                pass

        threading.Thread(target=forward_request, daemon=True).start()
        last = t0
        try:
            while True:
                b = up.recv(65536)
                if not b:
                    break
                client.sendall(b)
                last = time.perf_counter_ns()
        except OSError:
            pass
        with self.lock:
            self.done.append((t0, last))
        for s in (client, up):
            try:
                s.close()
            except OSError:
                pass

    def count(self):
        with self.lock:
            return len(self.done)

    def wait_for(self, n, timeout=2.0):
        end = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < end:
            time.sleep(0.0005)
        with self.lock:
            return list(self.done)


def main():
    args = sys.argv[1:]
    spamd, listen, runs, warmup, stdin, ref, out, cmds = None, None, 30, 3, None, None, None, []
    minus = {}
    while args:
        a = args.pop(0)
        if a in ("--spamd", "--listen", "--runs", "--warmup", "--stdin", "--ref", "--json"):
            v = args.pop(0)
            if a == "--spamd":
                spamd = v
            elif a == "--listen":
                listen = int(v)
            elif a == "--runs":
                runs = int(v)
            elif a == "--warmup":
                warmup = int(v)
            elif a == "--stdin":
                stdin = v
            elif a == "--ref":
                ref = v
            else:
                out = v
        elif a == "--minus":
            n, stage = args.pop(0).split("=", 1)
            minus[n] = stage
        elif "=" in a:
            n, c = a.split("=", 1)
            cmds.append((n, shlex.split(c)))
        else:
            sys.exit(f"scan-overhead.py: bad argument {a!r}")
    if not (spamd and listen and stdin and cmds):
        sys.exit(__doc__)
    relay = Relay(listen, spamd)
    res = {n: {"wall": [], "scan": [], "outside": []} for n, _ in cmds}
    bad = {n: [] for n, _ in cmds}
    for n, stage in minus.items():
        res[f"{n} - {stage}"] = {"wall": [], "scan": [], "outside": []}
        bad[f"{n} - {stage}"] = []
    errfile = f"/tmp/scan-overhead.{os.getpid()}.stderr"
    for r in range(warmup + runs):
        k = r % len(cmds)
        for n, argv in cmds[k:] + cmds[:k]:
            before = relay.count()
            if n in minus and os.path.exists(errfile):
                os.unlink(errfile)
            t0, t1, code = spawn_ns(argv, stdin, errfile if n in minus else None)
            done = relay.wait_for(before + 1)
            if r < warmup:
                continue
            new = done[before:]
            if code != 0 or len(new) != 1:
                bad[n].append(f"exit {code}, {len(new)} connections")
                continue
            a, z = new[0]
            # A client that exits on the answer's last byte can be gone before the relay's
            # thread takes its timestamp: count the exchange as ending at the exit.
            z = min(z, t1)
            if not t0 <= a <= z:
                bad[n].append("exchange outside the run")
                continue
            res[n]["wall"].append((t1 - t0) / 1e6)
            res[n]["scan"].append((z - a) / 1e6)
            res[n]["outside"].append((t1 - t0 - (z - a)) / 1e6)
            if n in minus:
                text = open(errfile, errors="replace").read()
                m = re.search(r"timings: .*?\b" + re.escape(minus[n]) + r" ([0-9.]+) ms", text)
                k = f"{n} - {minus[n]}"
                if not m:
                    bad[k].append(f"no {minus[n]} stage in its --timings line")
                    continue
                res[k]["wall"].append((t1 - t0) / 1e6)
                res[k]["scan"].append((z - a) / 1e6)
                res[k]["outside"].append((t1 - t0 - (z - a)) / 1e6 - float(m.group(1)))
    ref = ref or cmds[0][0]
    width = max([len(n) for n, _ in cmds] + [len(f"{n} - {s}") for n, s in minus.items()])
    print(f"  {'command':<{width}}  {'wall ms':>8}  {'scan ms':>8}  {'outside':>8}  "
          f"{'p10':>6}  {'p90':>6}  {'- ' + ref:>12}")
    ref_out = statistics.median(res[ref]["outside"]) if res[ref]["outside"] else float("nan")
    summary = {}
    names = [n for n, _ in cmds] + [f"{n} - {s}" for n, s in minus.items()]
    for n in names:
        v = res[n]
        if not v["outside"]:
            print(f"  {n:<{width}}  no valid runs: {'; '.join(bad[n][:3])}")
            continue
        o = statistics.median(v["outside"])
        line = (f"  {n:<{width}}  {statistics.median(v['wall']):8.2f}  "
                f"{statistics.median(v['scan']):8.2f}  {o:8.2f}  {pct(v['outside'], .1):6.2f}  "
                f"{pct(v['outside'], .9):6.2f}  {o - ref_out:+12.2f}")
        if bad[n]:
            line += f"  ({len(bad[n])} runs dropped: {bad[n][0]})"
        print(line)
        summary[n] = {"wall_median_ms": statistics.median(v["wall"]),
                      "scan_median_ms": statistics.median(v["scan"]),
                      "outside_median_ms": o, "outside_p10_ms": pct(v["outside"], .1),
                      "outside_p90_ms": pct(v["outside"], .9), "runs": len(v["outside"]),
                      "dropped": len(bad[n]), "samples": v}
    print(f"  ({runs} interleaved runs each after {warmup} warm-up rounds; scan = the spamd "
          f"exchange seen at the relay; outside = wall - scan)")
    if os.path.exists(errfile):
        os.unlink(errfile)
    if out:
        with open(out, "w") as f:
            json.dump(summary, f)


if __name__ == "__main__":
    main()
