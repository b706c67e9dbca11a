#!/usr/bin/env python3
"""Measurement helpers for bench/bench.sh (stdlib only, Linux /proc).

  rss PID                   summed VmRSS (KiB) of PID and all its descendants
  count DIR                 number of files in DIR (e.g. a Maildir's new/)
  load --server NAME --pid PID --dir DIR --expect N [--timeout S] -- CMD...
      Run CMD (smtp-source) while sampling the server's process tree every
      0.1 s; the clock runs from CMD's start until DIR holds N files.
      Prints one JSON line: seconds, msgs_per_s, peak_rss_kb (summed VmRSS
      of the tree, max over samples), hwm_kb (VmHWM of PID itself), rc.
  report FILE               median over runs of every figure in FILE (JSON
      lines written by `load` and `idle` records) as `FIGURE name value unit`
      lines, then the buzon/postfix ratios.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(root):
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root):
    return sum(status_kb(p, "VmRSS") for p in tree(root))


def count(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def cmd_load(args):
    opts, cmd = {}, []
    i = 0
    while i < len(args):
        if args[i] == "--":
            cmd = args[i + 1:]
            break
        opts[args[i].lstrip("-")] = args[i + 1]
        i += 2
    pid, d, expect = int(opts["pid"]), opts["dir"], int(opts["expect"])
    timeout = float(opts.get("timeout", "600"))
    peak = [tree_rss_kb(pid)]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_kb(pid))
            stop.wait(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    n = count(d)
    while n < expect and time.perf_counter() - t0 < timeout:
        time.sleep(0.01)
        n = count(d)
    secs = time.perf_counter() - t0
    stop.set()
    t.join()
    peak[0] = max(peak[0], tree_rss_kb(pid))
    rec = {"server": opts.get("server", ""), "rc": p.returncode, "delivered": n,
           "complete": n >= expect, "seconds": round(secs, 3),
           "msgs_per_s": round(n / secs, 1), "peak_rss_kb": peak[0],
           "hwm_kb": status_kb(pid, "VmHWM")}
    if p.stderr:
        rec["stderr"] = p.stderr.decode(errors="replace")[-300:]
    print(json.dumps(rec), flush=True)
    return 0 if rec["complete"] and p.returncode == 0 else 1


# (record key, figure suffix, unit, scale)
FIGS = [
    ("msgs_per_s", "smtp_4k_msgs_per_s", "msg/s", 1),
    ("seconds", "smtp_4k_seconds", "s", 1),
    ("idle_rss_kb", "idle_rss", "MiB", 1 / 1024),
    ("peak_rss_kb", "peak_rss", "MiB", 1 / 1024),  # summed over the process tree
    ("hwm_kb", "peak_hwm", "MiB", 1 / 1024),  # buzon only
    ("binary_bytes", "binary_size", "KiB", 1 / 1024),
]


def cmd_report(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    med = {}
    for server in ("buzon", "postfix"):
        for key, name, unit, scale in FIGS:
            if key == "hwm_kb" and server != "buzon":
                continue  # VmHWM is per process: meaningful for buzon's one process only
            vals = [r[key] for r in recs if r.get("server") == server and r.get(key) is not None
                    and r.get("complete", True)]
            if not vals:
                continue
            m = statistics.median(vals) * scale
            med[(server, name)] = (m, unit)
            print(f"FIGURE {server}.{name} {m:.4g} {unit}")
            if len(vals) > 1:
                print(f"INFO {server}.{name}: median of {len(vals)} runs, min {min(vals) * scale:.4g}, "
                      f"max {max(vals) * scale:.4g} {unit}")
    for _, name, _, _ in FIGS:
        b, p = med.get(("buzon", name)), med.get(("postfix", name))
        if b and p and p[0]:
            print(f"FIGURE ratio.{name} {b[0] / p[0]:.3g} buzon/postfix")
    return 0


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    if a[0] == "rss":
        print(tree_rss_kb(int(a[1])))
    elif a[0] == "count":
        print(count(a[1]))
    elif a[0] == "load":
        return cmd_load(a[1:])
    elif a[0] == "report":
        return cmd_report(a[1])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
