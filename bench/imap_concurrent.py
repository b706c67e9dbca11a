#!/usr/bin/env python3
"""bench/imap_concurrent.py -- many sessions on one mailbox at once (stdlib imaplib).

CLIENTS sessions log in to HOST:PORT as USER/PASSWORD and, for SECONDS, each
loops over a random mix on INBOX: SELECT, FETCH of flags, FETCH of a random
message's body, STORE of \\Seen or \\Deleted on a random message, EXPUNGE,
APPEND of a small message, NOOP. Every command's time is recorded; a NO or BAD
answer counts as a failure (with its text). RFC 2180 4.1 lets a server answer
a FETCH or STORE of a message another session expunged with NO; the goal is
that it never has to.

Output: `FIGURE imapconc.<label>.<cmd>.median|p90 value ms`, `FIGURE
imapconc.<label>.commands value`, `FIGURE imapconc.<label>.failures value`
and the first failures' texts.  Exit status 1 when any command failed
(unless --allow-failures).

Usage: imap_concurrent.py --port N [--host 127.0.0.1] [--user U --password P]
       [--clients 10] [--seconds 30] [--label buzon] [--seed 1]
"""
import argparse
import imaplib
import random
import statistics
import sys
import threading
import time

MSG = (b"From: load@example.org\r\nTo: {user}\r\nSubject: load {n}\r\n"
       b"Message-ID: <load-{n}@example.org>\r\n\r\n" + b"line of text for the load\r\n" * 20)


class Client(imaplib.IMAP4):
    """imaplib keeps untagged responses by kind, losing their order; EXISTS and EXPUNGE must be
    applied in order to know the view's size, so they are also kept in a list as they come."""

    def __init__(self, *a, **kw):
        self.events = []
        super().__init__(*a, **kw)

    def _append_untagged(self, typ, dat):
        if typ in ("EXISTS", "EXPUNGE"):
            self.events.append((typ, int(dat)))
        super()._append_untagged(typ, dat)


def run_client(args, idx, stop, times, failures, lock):
    rng = random.Random(args.seed * 1000 + idx)
    c = Client(args.host, args.port, timeout=60)
    c.login(args.user, args.password)
    n = 0

    def timed(name, fn):
        t0 = time.perf_counter()
        try:
            typ, data = fn()
        except imaplib.IMAP4.error as e:
            typ, data = "BAD", [str(e).encode()]
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            times.setdefault(name, []).append(dt)
            if typ != "OK":
                failures.append(f"{name}: {typ} {data!r}"[:300])
        return typ, data

    timed("select", lambda: c.select("INBOX"))
    exists = 0
    while not stop.is_set():
        op = rng.choice(["fetchflags", "fetchbody", "fetchbody", "store", "store", "delete",
                         "expunge", "append", "append", "noop", "select"])
        if op == "select":
            c.events.clear()
            timed("select", lambda: c.select("INBOX"))
        elif op == "noop":
            timed("noop", c.noop)
        elif op == "append":
            n += 1
            body = MSG.replace(b"{user}", args.user.encode()).replace(b"{n}", f"{idx}-{n}".encode())
            timed("append", lambda: c.append("INBOX", None, None, body))
        elif op == "expunge":
            timed("expunge", c.expunge)
        elif exists == 0:
            timed("noop", c.noop)
        elif op == "fetchflags":
            timed("fetch", lambda: c.fetch("1:*", "(UID FLAGS)"))
        elif op == "fetchbody":
            m = rng.randint(1, exists)
            timed("fetch", lambda: c.fetch(str(m), "(UID RFC822.SIZE BODY.PEEK[])"))
        elif op == "store":
            m = rng.randint(1, exists)
            timed("store", lambda: c.store(str(m), "+FLAGS", "(\\Seen)"))
        elif op == "delete":
            m = rng.randint(1, exists)
            timed("store", lambda: c.store(str(m), "+FLAGS.SILENT", "(\\Deleted)"))
        # Untagged EXISTS and EXPUNGE, in order, keep the view's size known.
        for typ, n in c.events:
            exists = n if typ == "EXISTS" else exists - 1
        c.events.clear()
        c.untagged_responses.clear()
    try:
        c.logout()
    except Exception:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--label", default="server")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--allow-failures", action="store_true")
    args = ap.parse_args()
    stop = threading.Event()
    times, failures, lock = {}, [], threading.Lock()
    errors = []

    def guarded(i):
        try:
            run_client(args, i, stop, times, failures, lock)
        except Exception as e:  # a broken connection is a failure too
            with lock:
                errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(120)
    total = 0
    for name in sorted(times):
        v = sorted(times[name])
        total += len(v)
        p90 = v[min(len(v) - 1, int(len(v) * 0.9))]
        print(f"FIGURE imapconc.{args.label}.{name}.median {statistics.median(v):.2f} ms")
        print(f"FIGURE imapconc.{args.label}.{name}.p90 {p90:.2f} ms")
    print(f"FIGURE imapconc.{args.label}.commands {total}")
    print(f"FIGURE imapconc.{args.label}.failures {len(failures) + len(errors)}")
    for f in (errors + failures)[:10]:
        print(f"INFO imapconc.{args.label} failed: {f}")
    if (failures or errors) and not args.allow_failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
