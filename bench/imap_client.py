#!/usr/bin/env python3
"""IMAP load and memory probes for bench/imap.sh (stdlib imaplib, Linux /proc).

  session --port P --manifest FILE [--pid PID] [--server NAME --mode MODE --run I]
      One timed IMAP session on 127.0.0.1:P, each step timed with perf_counter:
        login           connect, greeting, LOGIN user pass
        select          SELECT INBOX
        fetch_meta      UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)
        fetch_bodies    UID FETCH 1:* (BODY.PEEK[])
        search_subject  UID SEARCH SUBJECT "<word>"
        search_body     UID SEARCH BODY "<needle>"
        logout          LOGOUT
      Every answer is checked against the manifest that imap_mkmaildir.py wrote
      (outside the timed steps): EXISTS, one FETCH response per message with
      UID, FLAGS, RFC822.SIZE and ENVELOPE, the RFC822.SIZEs and the BODY[]
      literals adding up to the mailbox's size with CRLF line ends, the bodies'
      order-independent SHA-256, the SEARCH hit counts.  Anything else makes
      the run "ok": false, with the problems and the last lines of the
      exchange ("trace", C: client, S: server) in the record.
      With --pid: the CPU time the server's process tree used during the
      session (server_cpu_s; exited children count through cutime).
  conns --port P --pid PID [-n 50] [--settle 1.0]
      Memory per IMAP connection: summed VmRSS (and PSS) of the server's
      process tree before and after opening N connections, each logged in
      with INBOX selected and then idle; (after - before) / N.  Also the
      same after LOGIN only, before the SELECTs (per_login_*).
  rss PID
      Summed VmRSS and PSS (KiB) and the number of processes of PID's tree.
  compare A B
      Two --dump files of `session` (one line per message: FLAGS without
      \\Recent, RFC822.SIZE, ENVELOPE; strings normalised whether quoted or
      literal, no UIDs): how many messages agree, and a few that do not.

Output: one JSON line on stdout.  Loopback only: the host is always 127.0.0.1.
"""
import argparse
import collections
import hashlib
import imaplib
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (tree(), status_kb(): the SMTP bench's /proc helpers)

HOST = "127.0.0.1"
USER = "bench@example.test"
PASSWORD = "benchpass"
STEPS = ("login", "select", "fetch_meta", "fetch_bodies", "search_subject", "search_body", "logout")


# ------------------------------------------------------------------ /proc ---
def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_mem(pid):
    pids = benchlib.tree(pid)
    return {"rss_kb": sum(benchlib.status_kb(p, "VmRSS") for p in pids),
            "pss_kb": sum(pss_kb(p) for p in pids), "nproc": len(pids)}


def cpu_s(pid, reaped=False):
    """utime+stime of pid (+ cutime+cstime: its reaped children) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime stime (fields 14, 15)
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root):
    return sum(cpu_s(p, reaped=True) for p in benchlib.tree(root))


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- client ---
class TracingIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 that remembers the last lines of the exchange."""

    def __init__(self, port, timeout, trace):
        self.trace = trace  # the caller's, so it survives a failed greeting
        super().__init__(HOST, port, timeout=timeout)

    def _note(self, who, data):
        s = data.decode("latin-1").rstrip("\r\n")
        self.trace.append(f"{who}: {s[:300]}{' ...' if len(s) > 300 else ''}")

    def send(self, data):
        self._note("C", data)
        super().send(data)

    def readline(self):
        line = super().readline()
        self._note("S", line)
        return line

    def read(self, size):
        data = super().read(size)
        self.trace.append(f"S: <literal, {len(data)} of {size} octets>")
        return data


START = re.compile(rb"^\d+ \(")
SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
UID = re.compile(rb"UID (\d+)")
LITERAL = re.compile(rb"\{\d+\}$")


def fetch_responses(data):
    """Group imaplib's FETCH data into (text, [literals]) per response."""
    out = []
    for d in data:
        if d is None:
            continue
        head, lit = (d[0], d[1]) if isinstance(d, tuple) else (d, None)
        if START.match(head) or not out:
            out.append([head, []])
        else:
            out[-1][0] += head
        if lit is not None:
            out[-1][0] = LITERAL.sub(b"{literal}", out[-1][0])
            out[-1][1].append(lit)
    return out


def parse_fetch(text, lits):
    """The attribute list of one FETCH response as {NAME: value}; strings
    (quoted or literal) become ["s", str], atoms and numbers ["a", str], so
    that two servers choosing quoted vs literal compare equal."""
    lits = list(lits)
    i = text.index(b"(")
    stack, cur = [], []
    n = len(text)
    while i < n:
        c = text[i:i + 1]
        if c == b"(":
            stack.append(cur)
            cur = []
            i += 1
        elif c == b")":
            done, cur = cur, stack.pop() if stack else []
            cur.append(done)
            i += 1
        elif c == b" ":
            i += 1
        elif c == b'"':
            j, buf = i + 1, bytearray()
            while j < n and text[j:j + 1] != b'"':
                if text[j:j + 1] == b"\\":
                    j += 1
                buf += text[j:j + 1]
                j += 1
            cur.append(["s", buf.decode("latin-1")])
            i = j + 1
        elif text.startswith(b"{literal}", i):
            cur.append(["s", lits.pop(0).decode("latin-1") if lits else ""])
            i += len(b"{literal}")
        else:
            j = i
            while j < n and text[j:j + 1] not in (b" ", b"(", b")"):
                j += 1
                if text[j - 1:j] == b"[":  # BODY[...] holds spaces and parens
                    while j < n and text[j:j + 1] != b"]":
                        j += 1
            cur.append(["a", text[i:j].decode("latin-1")])
            i = j
    top = cur[0] if cur and isinstance(cur[0], list) else []
    return {top[k][1].upper(): top[k + 1] for k in range(0, len(top) - 1, 2)
            if isinstance(top[k], list) and len(top[k]) == 2 and top[k][0] == "a"}


def meta_key(text, lits):
    """One line per message for comparing two servers: FLAGS (without
    \\Recent, sorted), RFC822.SIZE, ENVELOPE; no sequence number or UID."""
    d = parse_fetch(text, lits)
    flags = sorted(f[1] for f in d.get("FLAGS", []) if isinstance(f, list) and len(f) == 2
                   and f[1].lower() != "\\recent")
    return json.dumps({"flags": flags, "size": d.get("RFC822.SIZE"), "envelope": d.get("ENVELOPE")})


def run_compare(a):
    """INFO lines: how many messages' FLAGS/RFC822.SIZE/ENVELOPE agree."""
    sides = []
    for path in (a.a, a.b):
        with open(path) as f:
            sides.append([line.rstrip("\n") for line in f])
    ca, cb = collections.Counter(sides[0]), collections.Counter(sides[1])
    only_a, only_b = list((ca - cb).elements()), list((cb - ca).elements())
    same = sum((ca & cb).values())
    print(f"INFO imap.compare: FLAGS, RFC822.SIZE and ENVELOPE identical for {same} of "
          f"{len(sides[0])} messages ({a.name_a}) / {len(sides[1])} ({a.name_b})")

    def msgid(line):
        try:
            return json.loads(line)["envelope"][9][1]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    by_id = {msgid(x): x for x in only_b}
    shown = 0
    for x in only_a:
        y = by_id.get(msgid(x))
        if shown >= a.examples:
            break
        print(f"INFO   {a.name_a}: {x[:700]}")
        print(f"INFO   {a.name_b}: {(y or '(no message with this Message-ID differs)')[:700]}")
        shown += 1
    return 0


def search_uids(data):
    return [int(x) for x in b" ".join(d for d in data if d).split()]


def run_session(a):
    man = json.load(open(a.manifest))
    n = man["count"]
    steps, client_cpu, problems = {}, {}, []
    info = {}
    m = None
    trace = collections.deque(maxlen=24)
    step = "login"
    cpu0 = tree_cpu_s(a.pid) if a.pid else 0.0
    busy0 = machine_busy_s()
    wall0 = time.perf_counter()

    def timed(name, fn):
        nonlocal step
        step = name
        c, t = time.process_time(), time.perf_counter()
        r = fn()
        steps[name] = time.perf_counter() - t
        client_cpu[name] = time.process_time() - c
        return r

    def check(cond, what):
        if not cond:
            problems.append(what)

    try:
        def login():
            mm = TracingIMAP4(a.port, a.timeout, trace)
            mm.login(USER, PASSWORD)
            return mm
        m = timed("login", login)

        typ, data = timed("select", lambda: m.select("INBOX"))
        check(typ == "OK", f"SELECT: {typ} {data}")
        exists = int(data[0]) if typ == "OK" and data and data[0] else -1
        info["exists"] = exists
        check(exists == n, f"SELECT: EXISTS {exists}, expected {n}")

        typ, data = timed("fetch_meta", lambda: m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
        check(typ == "OK", f"UID FETCH meta: {typ}")
        resp = fetch_responses(data) if typ == "OK" else []
        uids, total, bad = set(), 0, None
        if a.dump:
            with open(a.dump, "w") as f:
                for text, lits in resp:
                    try:
                        f.write(meta_key(text, lits) + "\n")
                    except Exception as e:  # a malformed response: keep it visible
                        f.write(json.dumps({"unparsed": text.decode("latin-1")[:300],
                                            "error": str(e)}) + "\n")
        for text, _ in resp:
            mu, ms = UID.search(text), SIZE.search(text)
            if not (mu and ms and b"FLAGS (" in text and b"ENVELOPE (" in text):
                bad = bad or text[:300]
                continue
            uids.add(int(mu.group(1)))
            total += int(ms.group(1))
        info.update(fetch_meta_responses=len(resp), rfc822_size_sum=total)
        check(len(resp) == n and len(uids) == n, f"UID FETCH meta: {len(resp)} responses, "
              f"{len(uids)} distinct UIDs, expected {n}")
        check(bad is None, f"UID FETCH meta: a response lacks UID/FLAGS/RFC822.SIZE/ENVELOPE: {bad!r}")
        check(total == man["bytes_crlf"], f"RFC822.SIZE sum {total}, expected {man['bytes_crlf']}")

        typ, data = timed("fetch_bodies", lambda: m.uid("FETCH", "1:*", "(BODY.PEEK[])"))
        check(typ == "OK", f"UID FETCH bodies: {typ}")
        resp = fetch_responses(data) if typ == "OK" else []
        digests, nbytes, buids = [], 0, set()
        for text, lits in resp:
            mu = UID.search(text)
            if mu:
                buids.add(int(mu.group(1)))
            if len(lits) == 1 and b"BODY[] {literal}" in text:
                digests.append(hashlib.sha256(lits[0]).digest())
                nbytes += len(lits[0])
        digest = hashlib.sha256(b"".join(sorted(digests))).hexdigest()
        info.update(fetch_bodies_responses=len(resp), bodies=len(digests), body_bytes=nbytes)
        check(len(digests) == n, f"UID FETCH bodies: {len(digests)} BODY[] literals, expected {n}")
        check(buids == uids, "UID FETCH bodies: UIDs differ from the meta fetch's")
        check(nbytes == man["bytes_crlf"], f"BODY[] bytes {nbytes}, expected {man['bytes_crlf']}")
        check(digest == man["sha256_sorted"], "BODY[] contents differ from the Maildir's messages (SHA-256)")
        del data, resp, digests

        typ, data = timed("search_subject",
                          lambda: m.uid("SEARCH", None, "SUBJECT", f'"{man["subject_word"]}"'))
        hits = search_uids(data) if typ == "OK" else []
        info["subject_hits"] = len(hits)
        check(typ == "OK" and len(hits) == man["subject_hits"] and set(hits) <= uids,
              f"UID SEARCH SUBJECT: {typ}, {len(hits)} hits, expected {man['subject_hits']}")

        typ, data = timed("search_body",
                          lambda: m.uid("SEARCH", None, "BODY", f'"{man["body_needle"]}"'))
        hits = search_uids(data) if typ == "OK" else []
        info["body_hits"] = len(hits)
        check(typ == "OK" and len(hits) == man["body_hits"] and set(hits) <= uids,
              f"UID SEARCH BODY: {typ}, {len(hits)} hits, expected {man['body_hits']}")

        typ, data = timed("logout", m.logout)
        check(typ == "BYE", f"LOGOUT: {typ} {data}")
    except Exception as e:  # report the failing step; the caller decides
        problems.append(f"{step}: {type(e).__name__}: {e}")
    wall = time.perf_counter() - wall0
    rec = {"kind": "session", "server": a.server, "mode": a.mode, "run": a.run,
           "ok": not problems and all(s in steps for s in STEPS),
           "steps_s": {k: round(v, 5) for k, v in steps.items()},
           "client_cpu_s": {k: round(v, 4) for k, v in client_cpu.items()},
           "total_s": round(sum(steps.values()), 5)}
    rec.update(info)
    busy = machine_busy_s() - busy0
    rec["machine_busy_pct"] = round(100 * busy / (max(wall, 0.01) * (os.cpu_count() or 1)), 1)
    if a.pid:
        time.sleep(0.3)  # let the server reap a per-connection process (Dovecot's imap)
        rec["server_cpu_s"] = round(tree_cpu_s(a.pid) - cpu0, 3)
    if problems:
        rec["problems"] = problems
        rec["trace"] = list(trace)
    print(json.dumps(rec), flush=True)
    # One progress line for the person watching.
    steps_ms = " ".join(f"{k}={v * 1000:.0f}" for k, v in steps.items())
    print(f"  {a.server:7} {a.mode:5} run {a.run}: {'ok' if rec['ok'] else 'NOT OK'} "
          f"{rec['total_s'] * 1000:.0f} ms ({steps_ms}) server CPU "
          f"{rec.get('server_cpu_s', 0) * 1000:.0f} ms{'; ' + '; '.join(problems)[:400] if problems else ''}",
          file=sys.stderr)
    return 0 if rec["ok"] else 1


def run_conns(a):
    """Two phases on the same connections: logged in only, then with INBOX
    selected; so the per-session cost and the selected mailbox's state show
    separately."""
    time.sleep(a.settle)
    before = tree_mem(a.pid)
    conns, traces, problems, rec_trace = [], [], [], []
    t0 = time.perf_counter()
    for i in range(a.n):
        trace = collections.deque(maxlen=24)
        try:
            c = TracingIMAP4(a.port, a.timeout, trace)
            c.login(USER, PASSWORD)
            conns.append(c)
            traces.append(trace)
        except Exception as e:
            problems.append(f"connection {i + 1}: {type(e).__name__}: {e}")
            rec_trace = list(trace)
            break
    time.sleep(a.settle)
    logged_in = tree_mem(a.pid)
    for i, c in enumerate(conns):
        if problems:
            break
        try:
            typ, data = c.select("INBOX")
            if typ != "OK":
                raise RuntimeError(f"SELECT: {typ} {data}")
        except Exception as e:
            problems.append(f"connection {i + 1}: {type(e).__name__}: {e}")
            rec_trace = list(traces[i])
    open_s = time.perf_counter() - t0
    time.sleep(a.settle)
    after = tree_mem(a.pid)
    for c in conns:
        try:
            c.logout()
        except Exception:
            pass
    k = len(conns)

    def per(x, key):
        return round((x[key] - before[key]) / k, 1) if k else None
    rec = {"kind": "conns", "server": a.server, "connections": k, "ok": not problems and k == a.n,
           "open_s": round(open_s, 3), "before": before, "logged_in": logged_in, "after": after,
           "per_conn_rss_kb": per(after, "rss_kb"), "per_conn_pss_kb": per(after, "pss_kb"),
           "per_login_rss_kb": per(logged_in, "rss_kb"), "per_login_pss_kb": per(logged_in, "pss_kb")}
    if problems:
        rec["problems"] = problems
        rec["trace"] = rec_trace
    print(json.dumps(rec), flush=True)
    return 0 if rec["ok"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("session")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--pid", type=int, default=0)
    s.add_argument("--server", default="")
    s.add_argument("--mode", default="")
    s.add_argument("--run", type=int, default=0)
    s.add_argument("--timeout", type=float, default=120, help="socket timeout, seconds")
    s.add_argument("--dump", help="write FLAGS/RFC822.SIZE/ENVELOPE per message here (for compare)")
    k = sub.add_parser("compare")
    k.add_argument("a")
    k.add_argument("b")
    k.add_argument("--name-a", default="buzon")
    k.add_argument("--name-b", default="dovecot")
    k.add_argument("--examples", type=int, default=3)
    c = sub.add_parser("conns")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--server", default="")
    c.add_argument("-n", type=int, default=50)
    c.add_argument("--settle", type=float, default=1.0)
    c.add_argument("--timeout", type=float, default=60)
    r = sub.add_parser("rss")
    r.add_argument("pid", type=int)
    r.add_argument("--server", default="")
    a = ap.parse_args()
    imaplib._MAXLINE = 10_000_000  # long UID SEARCH answers
    if a.cmd == "session":
        return run_session(a)
    if a.cmd == "conns":
        return run_conns(a)
    if a.cmd == "compare":
        return run_compare(a)
    rec = {"kind": "idle", "server": a.server}
    rec.update(tree_mem(a.pid))
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
