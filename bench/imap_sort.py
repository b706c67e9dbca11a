#!/usr/bin/env python3
"""Time IMAP SORT (DATE) and THREAD REFERENCES on a 5,000-message Maildir, first and second run.

  bench/imap_sort.py [--count 5000] [--runs 3] [--no-dovecot]

Builds a Maildir of COUNT messages (about 2 KiB each, deterministic): threads of replies with
References and In-Reply-To chains, Re:/Fwd:/[list] subjects, Date fields in several zones (some
missing or invalid), encoded-word display names. buzon (target/release/buzon) serves one copy;
when Dovecot is installed a private Dovecot serves another (loopback only, as the tests do).

For each run, on a fresh server process: session 1 does SELECT, UID SORT (DATE) UTF-8 ALL twice;
session 2 does SELECT, UID THREAD REFERENCES UTF-8 ALL twice. The first command of a session
reads the headers, the second finds them cached (buzon keeps sort keys per UID for the selected
folder; Dovecot keeps its index cache on disk, so its session 2 profits from session 1). The
answers of the two servers are compared. Prints the median milliseconds of each step.
"""
import argparse
import imaplib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Server, free_port  # noqa: E402
from test_imap_dovecot import DOVECOT, PASSWORD, USER, Dovecot  # noqa: E402

WORDS = ("budget report meeting invoice travel plans release notes draft review lunch server "
         "backup patch question answer update schedule").split()
ZONES = ["+0000", "-0500", "+0100", "+0530", "-0800", "+0900"]


def build(dest, count, seed=1):
    rnd = random.Random(seed)
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dest, s))
    t0 = 1_600_000_000
    subjects, refs = [], []
    for k in range(count):
        t = t0 + k * 600 + rnd.randrange(600)
        if k and rnd.random() < 0.6:
            p = rnd.randrange(max(0, k - 300), k)
            subject = "Re: " + subjects[p].removeprefix("Re: ")
            chain = (refs[p] + [f"<m{p}@bench.test>"])[-20:]
        else:
            subject = " ".join(rnd.choice(WORDS) for _ in range(3))
            if rnd.random() < 0.1:
                subject = "[list] " + subject
            chain = []
        subjects.append(subject)
        refs.append(chain)
        head = [f"From: =?utf-8?q?User_{k % 97}?= <user{k % 97}@bench.test>", f"To: list{k % 7}@bench.test",
                f"Subject: {subject}", f"Message-ID: <m{k}@bench.test>"]
        r = rnd.random()
        if r < 0.95:
            z = rnd.choice(ZONES)
            sign = 1 if z[0] == "+" else -1
            off = sign * (int(z[1:3]) * 3600 + int(z[3:]) * 60)
            head.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S ", time.gmtime(t + off)) + z)
        elif r < 0.98:
            head.append("Date: sometime")
        if chain:
            head.append("References: " + " ".join(chain) if rnd.random() < 0.9
                        else "In-Reply-To: " + chain[-1])
        body = "\n".join(" ".join(rnd.choice(WORDS) for _ in range(12)) for _ in range(25))
        path = os.path.join(dest, "cur", f"{t}.M{k}P1.bench:2,S")
        with open(path, "w") as f:
            f.write("\n".join(head) + "\n\n" + body + "\n")
        os.utime(path, (t, t))


def timed(c, *args):
    start = time.perf_counter()
    typ, data = c.uid(*args)
    ms = (time.perf_counter() - start) * 1000
    if typ != "OK":
        raise RuntimeError(f"{args}: {typ} {data}")
    return ms, b" ".join(d for d in data if d)


def session(port, cmd):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(USER, PASSWORD)
    start = time.perf_counter()
    c.select("INBOX")
    select = (time.perf_counter() - start) * 1000
    first, a = timed(c, *cmd)
    second, b = timed(c, *cmd)
    c.logout()
    if a != b:
        raise RuntimeError("the second answer differs from the first")
    return select, first, second, a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-dovecot", action="store_true")
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="buzon-sortbench-")
    try:
        master = os.path.join(tmp, "master")
        build(master, opts.count)
        servers = ["buzon"] + ([] if opts.no_dovecot or not DOVECOT else ["dovecot"])
        figures = {}
        answers = {}
        sort_cmd = ("SORT", "(DATE)", "UTF-8", "ALL")
        thread_cmd = ("THREAD", "REFERENCES", "UTF-8", "ALL")
        for run in range(opts.runs):
            for who in servers:
                mail = os.path.join(tmp, f"{who}-mail-{run}")
                subprocess.run(["cp", "-a", master, mail], check=True)
                if who == "buzon":
                    port = free_port()
                    srv = Server(mailbox="maildir:" + mail,
                                 extra=f"imap.listen = 127.0.0.1:{port}\nauth.cleartext_networks = 127.0.0.0/8\n")
                    srv.start()
                    stop = srv.cleanup
                else:
                    d = os.path.join(tmp, f"dovecot-{run}")
                    os.makedirs(d)
                    srv = Dovecot(d, mail)
                    port, stop = srv.port, srv.stop
                try:
                    s1 = session(port, sort_cmd)
                    s2 = session(port, thread_cmd)
                finally:
                    stop()
                for name, v in (("select", s1[0]), ("sort_first", s1[1]), ("sort_second", s1[2]),
                                ("select2", s2[0]), ("thread_first", s2[1]), ("thread_second", s2[2])):
                    figures.setdefault((who, name), []).append(v)
                answers[who] = (s1[3], s2[3])
        for (who, name), v in sorted(figures.items()):
            print(f"FIGURE imap_sort.{who}.{name} {statistics.median(v):.1f} ms")
        if "dovecot" in answers:
            same = answers["buzon"] == answers["dovecot"]
            print(f"INFO imap_sort.same_answers_as_dovecot sort={answers['buzon'][0] == answers['dovecot'][0]} "
                  f"thread={answers['buzon'][1] == answers['dovecot'][1]}")
            if not same:
                return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
