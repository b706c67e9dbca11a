#!/usr/bin/env python3
"""IMAP COMPRESS=DEFLATE (RFC 4978): what it saves on the wire and what it costs in memory.

Starts target/release/buzon on loopback ports picked at run time (tests/harness.py), fills alice's
INBOX with the message corpus (../shared/corpus/eml/**, else generated messages), then prints:

  wire   octets the server sent for SELECT + FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), and for
         FETCH 1:* (BODY.PEEK[]), without and with COMPRESS, and the ratio;
  idle   the server's RSS with N (default 200) logged-in connections waiting in IDLE, each having
         fetched 1:* (FLAGS ENVELOPE) first (so its compressor was used and given back), without and
         with COMPRESS, on fresh servers: KiB per connection, and what COMPRESS adds to each.

Usage: python3 bench/imap_compress.py [-n 200] [--corpus DIR] [--json]
(make bench-compress). Linux only (/proc); stdlib only.
"""
import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from harness import Server, free_port  # noqa: E402
from imap.client import HOST  # noqa: E402
from test_imap_compress import ZImap, words_message  # noqa: E402

ALICE = ("alice@example.test", "secret-alice")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def corpus(path):
    files = sorted(glob.glob(os.path.join(path, "**", "*.eml"), recursive=True))
    out = []
    for p in files:
        with open(p, "rb") as f:
            data = f.read()
        # IMAP wants CRLF lines (RFC 3501 4.3); the corpus files are mostly LF.
        out.append(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    if not out:
        out = [words_message(20_000 + 3000 * i, seed=i) for i in range(40)]
    return out


def start(n):
    s = Server()
    port = free_port()
    with open(s.config, "a") as f:
        f.write(f"imap.listen = {HOST}:{port}\nauth.cleartext_networks = 127.0.0.0/8\n"
                f"max_connections = {n + 50}\nmax_connections_per_ip = {n + 50}\n")
    s.start()
    s.imap_port = port
    return s


def fill(s, messages):
    c = ZImap(s.imap_port)
    c.login(ALICE)
    for m in messages:
        tag = c.tag()
        c.send(f"{tag} APPEND INBOX {{{len(m)}}}\r\n")
        c.response()
        c.send(m + b"\r\n")
        c.until(tag)
    c.ok("LOGOUT")
    c.close()


def wire(s, compress):
    c = ZImap(s.imap_port)
    c.login(ALICE)
    if compress:
        c.compress()
    out = {}
    for name, cmds in (("headers", ["SELECT INBOX", "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"]),
                       ("bodies", ["FETCH 1:* (BODY.PEEK[])"])):
        before_in, before_out = c.wire_in, c.wire_out
        t0 = time.process_time(), time.perf_counter()
        plain = 0
        for cmd in cmds:
            untagged, tagged = c.ok(cmd)
            plain += sum(len(u) + 2 for u in untagged) + len(tagged) + 2
        out[name] = {"wire_in": c.wire_in - before_in, "wire_out": c.wire_out - before_out,
                     "plain_in": plain, "seconds": round(time.perf_counter() - t0[1], 3)}
    c.ok("LOGOUT")
    c.close()
    return out


def idle(messages, n, compress):
    s = start(n)
    try:
        fill(s, messages[:20])
        pid = s.proc.pid
        time.sleep(0.5)
        base = rss_kib(pid)
        conns = []
        for _ in range(n):
            c = ZImap(s.imap_port, timeout=30)
            c.login(ALICE)
            if compress:
                c.compress()
            c.ok("SELECT INBOX")
            c.ok("FETCH 1:* (FLAGS ENVELOPE)")
            c.send(f"{c.tag()} IDLE\r\n")
            c.response()
            conns.append(c)
        time.sleep(1.0)
        held = rss_kib(pid)
        for c in conns:
            c.close()
        return {"connections": n, "base_kib": base, "idle_kib": held,
                "per_conn_kib": round((held - base) / n, 1)}
    finally:
        s.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared",
                                                   "corpus", "eml"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    messages = corpus(a.corpus)
    total = sum(len(m) for m in messages)
    print(f"corpus: {len(messages)} messages, {total} octets ({a.corpus})")
    s = start(10)
    try:
        fill(s, messages)
        plain, comp = wire(s, False), wire(s, True)
    finally:
        s.cleanup()
    results = {"wire": {"plain": plain, "compress": comp}}
    for part, what in (("headers", "SELECT + FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"),
                       ("bodies", "FETCH 1:* (BODY.PEEK[])")):
        p, c = plain[part]["wire_in"], comp[part]["wire_in"]
        print(f"wire  {what}: {p} octets plain, {c} compressed ({c / p:.1%}); "
              f"client sent {plain[part]['wire_out']} / {comp[part]['wire_out']}; "
              f"{plain[part]['seconds']} s / {comp[part]['seconds']} s")
    r_plain, r_comp = idle(messages, a.n, False), idle(messages, a.n, True)
    results["idle"] = {"plain": r_plain, "compress": r_comp}
    extra = r_comp["per_conn_kib"] - r_plain["per_conn_kib"]
    print(f"idle  {a.n} connections in IDLE: {r_plain['per_conn_kib']} KiB each plain, "
          f"{r_comp['per_conn_kib']} KiB each compressed: COMPRESS adds {extra:.1f} KiB a connection "
          f"(goal: at most 64)")
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
