#!/usr/bin/env python3
"""Summarise bench/imap.sh's results (JSON lines) as FIGURE lines.

  imap_report.py RESULTS.jsonl

For each server and mode (first, cold, warm), the median over the runs that
passed every check of each step's wall time:
  FIGURE imap.<server>.<step>.<mode> <ms> ms
  FIGURE imap.<server>.server_cpu.<mode> <ms> ms    (CPU of the server's tree)
then memory:
  FIGURE imap.<server>.idle_rss <MiB> MiB           (fresh start, no client)
  FIGURE imap.<server>.idle_pss <MiB> MiB
  FIGURE imap.<server>.conn_rss <KiB> KiB           (per idle, selected connection)
  FIGURE imap.<server>.conn_pss <KiB> KiB
  FIGURE imap.<server>.conn_login_rss <KiB> KiB     (the same, logged in, nothing selected)
  FIGURE imap.<server>.conn_login_pss <KiB> KiB
and `FIGURE ratio.imap.<figure> <x> buzon/dovecot` for every figure both
servers have.  Failed runs are listed (problems and the last lines of the
exchange) and left out of the medians.
"""
import json
import statistics
import sys

SERVERS = ("buzon", "dovecot")
MODES = ("first", "cold", "warm")
STEPS = ("login", "select", "fetch_meta", "fetch_bodies", "search_subject", "search_body",
         "logout", "total")


def fmt(v):
    return f"{v:.4g}"


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    recs = []
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    figs = {}  # (server, name) -> (value, unit)
    failed = 0

    def put(server, name, vals, unit, scale=1.0):
        if not vals:
            return
        m = statistics.median(vals) * scale
        figs[(server, name)] = (m, unit)
        print(f"FIGURE imap.{server}.{name} {fmt(m)} {unit}")
        if len(vals) > 1:
            print(f"INFO imap.{server}.{name}: median of {len(vals)}, min {fmt(min(vals) * scale)}, "
                  f"max {fmt(max(vals) * scale)} {unit}")

    for server in SERVERS:
        sess = [r for r in recs if r.get("kind") == "session" and r.get("server") == server]
        for r in sess:
            if not r.get("ok"):
                failed += 1
                print(f"INFO imap.{server}.{r.get('mode')} run {r.get('run')}: NOT OK")
                for p in r.get("problems", []):
                    print(f"INFO   problem: {p}")
                for t in r.get("trace", []):
                    print(f"INFO   {t}")
        for mode in MODES:
            good = [r for r in sess if r.get("ok") and r.get("mode") == mode]
            if not good:
                continue
            for step in STEPS:
                vals = [r["total_s"] if step == "total" else r["steps_s"][step] for r in good]
                put(server, f"{step}.{mode}", vals, "ms", 1000)
            put(server, f"server_cpu.{mode}", [r["server_cpu_s"] for r in good if "server_cpu_s" in r],
                "ms", 1000)
            cc = [sum(r["client_cpu_s"].values()) for r in good]
            busy = [r.get("machine_busy_pct", 0) for r in good]
            print(f"INFO imap.{server}.{mode}: client CPU median {fmt(statistics.median(cc) * 1000)} ms "
                  f"per session; machine busy median {fmt(statistics.median(busy))} % of all CPUs "
                  f"during the sessions")
        idle = [r for r in recs if r.get("kind") == "idle" and r.get("server") == server]
        put(server, "idle_rss", [r["rss_kb"] for r in idle], "MiB", 1 / 1024)
        put(server, "idle_pss", [r["pss_kb"] for r in idle], "MiB", 1 / 1024)
        if idle:
            print(f"INFO imap.{server}: {idle[-1]['nproc']} process(es) when idle")
        for r in recs:
            if r.get("kind") != "conns" or r.get("server") != server:
                continue
            if not r.get("ok"):
                failed += 1
                print(f"INFO imap.{server}.conns: NOT OK after {r.get('connections')} connections")
                for p in r.get("problems", []):
                    print(f"INFO   problem: {p}")
                for t in r.get("trace", []):
                    print(f"INFO   {t}")
                continue
            put(server, "conn_rss", [r["per_conn_rss_kb"]], "KiB")
            put(server, "conn_pss", [r["per_conn_pss_kb"]], "KiB")
            put(server, "conn_login_rss", [r["per_login_rss_kb"]], "KiB")
            put(server, "conn_login_pss", [r["per_login_pss_kb"]], "KiB")
            b, li, a = r["before"], r["logged_in"], r["after"]
            print(f"INFO imap.{server}.conns: {r['connections']} connections opened in "
                  f"{r['open_s']} s; tree RSS {b['rss_kb']} -> {li['rss_kb']} (logged in) -> "
                  f"{a['rss_kb']} KiB (INBOX selected), PSS {b['pss_kb']} -> {li['pss_kb']} -> "
                  f"{a['pss_kb']} KiB, processes {b['nproc']} -> {a['nproc']}")
    print("INFO imap: conn_rss sums VmRSS over the process tree (Dovecot runs one imap process per "
          "connection, so its shared library pages count once per connection); conn_pss shares them "
          "out (smaps_rollup Pss). buzon's idle figures are the whole server (SMTP listener and "
          "queue included), Dovecot's its IMAP-only instance.")
    names = []
    for (s, name) in figs:
        if s == "buzon" and name not in names:
            names.append(name)
    for name in names:
        b, d = figs.get(("buzon", name)), figs.get(("dovecot", name))
        if b and d and d[0]:
            print(f"FIGURE ratio.imap.{name} {b[0] / d[0]:.3g} buzon/dovecot")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
