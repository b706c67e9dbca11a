#!/usr/bin/env python3
"""Idle-connection load for bench/idle.sh (stdlib only, Linux /proc).

One process holds every connection: non-blocking sockets under `selectors`
(epoll), one small state machine per connection (connect, TLS handshake when
--tls, greeting, LOGIN, SELECT INBOX, IDLE), so 1,000 connections need no
client threads.  Source addresses rotate over 127.0.0.2 .. 127.0.0.<1+K>
(--src-addrs K) so per-address limits of the servers do not bite.

  mem --pid PID [--server S --label L]
      One JSON line: summed VmRSS and PSS (KiB), processes and threads of
      PID and all its descendants.

  run --server S --pid PID --port P [--tls] [-n 1000] [--users 100] ...
      1. opens N connections (user u000 .. u<USERS-1>, round robin, so user
         u000 -- the recipient below -- holds N/USERS of them), at most
         --inflight of them between connect and IDLE at once; all must
         reach IDLE (the `+` continuation) or the run fails;
      2. after --settle seconds: memory of the server's tree (`mem` record,
         label `idle`), with the CPU the tree used in the last settle-1 s
         (idle_cpu_pct, % of one CPU);
      3. --deliveries D with --maildir-fmt: D times, a message written to
         u000's Maildir tmp/ and renamed into new/ (the way an LDA
         delivers); the clock runs from the rename to each of u000's
         connections reading `* N EXISTS` with N above what it had (record
         `latency`, via `rename`);
         with --smtp-port also D deliveries over SMTP (smtplib, one
         connection): the clock runs from the final 250 of DATA (via
         `smtp`).  A random 100-300 ms pause between deliveries, so they do
         not fall in step with a server's polling tick;
      4. every connection must still be open (record `alive`; a server that
         dropped some fails the run);
      5. with --intake-port: SMTP intake runs (smtp-source, the postfix
         package's load generator, one new connection per message): a
         warm-up, then --intake-runs pairs of runs of --intake-msgs messages
         over --intake-sessions sessions to --intake-rcpt, whose Maildir
         new/ (--intake-maildir) is counted; the clock stops when all are
         there; one run of a pair with the N connections in IDLE, the other
         with none (closed, and opened again for the next such run), in the
         order I R R I I R ... (records `intake`, idle = N or 0, with the
         server tree's CPU per message).  The intake recipient has no idle
         connection: this measures what idle connections cost the intake,
         not notifications.
      One JSON line per record on stdout; progress on stderr.

  report FILE
      The table (figures, buzon, dovecot, ratio buzon/dovecot, goal) from
      the JSON lines of FILE.
"""
import argparse
import errno
import json
import os
import random
import re
import selectors
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (tree(), status_kb(), count())

HOST = "127.0.0.1"
EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.I)


def log(msg):
    print(f"[idle-client {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
            "pss_kb": sum(pss_kb(p) for p in pids), "nproc": len(pids),
            "threads": sum(benchlib.status_kb(p, "Threads") for p in pids)}


def tree_cpu_s(root):
    """utime+stime (all threads) summed over root's process tree, seconds."""
    tot = 0
    for p in benchlib.tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tot += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return tot / os.sysconf("SC_CLK_TCK")


def emit(rec):
    print(json.dumps(rec), flush=True)


# ------------------------------------------------------------ connections ---
class Conn:
    """One IMAP connection's state machine: connect -> tls -> greeting ->
    login -> select -> idle_wait -> idling."""

    def __init__(self, i, user, src, tls_ctx):
        self.i, self.user, self.src, self.tls_ctx = i, user, src, tls_ctx
        self.state = "connect"
        self.buf = b""
        self.out = b""
        self.exists = None  # last `* N EXISTS` seen
        self.seen = []  # (monotonic time, N) of EXISTS lines while idling
        self.error = None
        self.sock = None
        self.trace = []

    def note(self, who, data):
        self.trace.append(f"{who}: {data[:120]!r}")
        del self.trace[:-8]


class Client:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.ctx = None
        if a.tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    # -- socket events --
    def start(self, c):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((c.src, 0))
        c.sock = s
        try:
            s.connect((HOST, self.a.port))
        except BlockingIOError:
            pass
        except OSError as e:
            return self.fail(c, f"connect: {e}")
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def fail(self, c, why):
        c.error = why
        c.state = "failed"
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass

    def want(self, c, write):
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        try:
            self.sel.modify(c.sock, ev, c)
        except (KeyError, ValueError):
            pass

    def send(self, c, line):
        c.note("C", line)
        c.out += line
        self.flush(c)

    def flush(self, c):
        while c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self.want(c, True)
                return
            except OSError as e:
                return self.fail(c, f"send: {e}")
            c.out = c.out[n:]
        self.want(c, False)

    def event(self, c, mask, now):
        if c.state == "connect":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return self.fail(c, f"connect: {os.strerror(err)}")
            if self.ctx:
                self.sel.unregister(c.sock)
                c.sock = self.ctx.wrap_socket(c.sock, do_handshake_on_connect=False)
                self.sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                c.state = "tls"
            else:
                c.state = "greeting"
                self.want(c, False)
                return
        if c.state == "tls":
            try:
                c.sock.do_handshake()
            except ssl.SSLWantReadError:
                return self.want(c, False)
            except ssl.SSLWantWriteError:
                return self.want(c, True)
            except (ssl.SSLError, OSError) as e:
                return self.fail(c, f"TLS handshake: {e}")
            c.state = "greeting"
            self.want(c, False)
        if mask & selectors.EVENT_WRITE and c.out:
            self.flush(c)
            if c.state == "failed":
                return
        if not mask & selectors.EVENT_READ and c.state != "greeting":
            return
        eof = False
        while True:
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as e:
                return self.fail(c, f"recv: {e}")
            if not data:
                eof = True
                break
            c.buf += data
        while b"\r\n" in c.buf:
            line, c.buf = c.buf.split(b"\r\n", 1)
            c.note("S", line)
            self.line(c, line, now)
            if c.state == "failed":
                return
        if eof:
            self.fail(c, f"server closed the connection in state {c.state}: {' | '.join(c.trace[-3:])}")

    def line(self, c, line, now):
        a = self.a
        m = EXISTS.match(line)
        if m:
            n = int(m.group(1))
            if c.state == "idling":
                c.seen.append((now, n))
            c.exists = n
            return
        if line.startswith(b"* BYE") and c.state != "idling":
            return self.fail(c, f"{c.state}: {line[:200].decode(errors='replace')}")
        if c.state == "greeting":
            if line.startswith(b"* OK"):
                c.state = "login"
                self.send(c, f"a1 LOGIN {c.user} {a.password}\r\n".encode())
            elif line.startswith(b"* "):
                self.fail(c, f"greeting: {line[:200].decode(errors='replace')}")
        elif c.state == "login" and line.startswith(b"a1 "):
            if not line.startswith(b"a1 OK"):
                return self.fail(c, f"LOGIN: {line[:200].decode(errors='replace')}")
            c.state = "select"
            self.send(c, b"a2 SELECT INBOX\r\n")
        elif c.state == "select" and line.startswith(b"a2 "):
            if not line.startswith(b"a2 OK"):
                return self.fail(c, f"SELECT: {line[:200].decode(errors='replace')}")
            c.state = "idle_wait"
            self.send(c, b"a3 IDLE\r\n")
        elif c.state == "idle_wait":
            if line.startswith(b"+"):
                c.state = "idling"
            elif line.startswith(b"a3 "):
                self.fail(c, f"IDLE: {line[:200].decode(errors='replace')}")

    def poll(self, timeout):
        now = time.monotonic()
        for key, mask in self.sel.select(timeout):
            self.event(key.data, mask, time.monotonic())
        return now

    # -- phases --
    def open_all(self, label):
        a = self.a
        srcs = [f"127.0.0.{2 + k}" for k in range(a.src_addrs)]
        todo = [Conn(i, a.user_fmt.format(i % a.users), srcs[i % len(srcs)], self.ctx)
                for i in range(a.n)]
        self.conns = todo[:]
        todo.reverse()
        t0 = time.monotonic()
        deadline = t0 + a.open_timeout
        while time.monotonic() < deadline:
            pending = [c for c in self.conns if c.state not in ("idling", "failed", "connect") or
                       (c.state == "connect" and c.sock is not None)]
            while todo and len(pending) < a.inflight:
                c = todo.pop()
                self.start(c)
                pending.append(c)
            if not todo and not pending:
                break
            if sum(c.state == "failed" for c in self.conns) > 0 and a.stop_on_failure:
                break
            self.poll(0.05)
        idling = sum(c.state == "idling" for c in self.conns)
        failed = [c for c in self.conns if c.state == "failed"]
        rec = {"kind": "open", "server": a.server, "label": label, "wanted": a.n,
               "idling": idling, "failed": len(failed),
               "seconds": round(time.monotonic() - t0, 2),
               "ok": idling == a.n}
        if failed:
            reasons = {}
            for c in failed:
                reasons[c.error] = reasons.get(c.error, 0) + 1
            rec["errors"] = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
        if idling < a.n:
            stuck = [c for c in self.conns if c.state not in ("idling", "failed")]
            if stuck:
                rec["stuck"] = len(stuck)
                rec["stuck_example"] = stuck[0].trace
        emit(rec)
        log(f"{a.server}/{label}: {idling}/{a.n} connections in IDLE after {rec['seconds']} s"
            + (f"; failures: {rec.get('errors')}" if failed else ""))
        return rec["ok"]

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.poll(min(left, 0.2))

    def watchers(self):
        u0 = self.a.user_fmt.format(0)
        return [c for c in self.conns if c.user == u0 and c.state == "idling"]

    def latency(self, via, deliver):
        """D deliveries by `deliver(k)` (returns the start of the clock);
        per delivery, the time until each of u000's connections sees a
        higher EXISTS."""
        a = self.a
        watch = self.watchers()
        samples, missed, first = [], 0, []
        for k in range(a.deliveries):
            self.pump(random.uniform(0.1, 0.3))
            base = {id(c): (c.exists or 0) for c in watch}
            for c in watch:
                c.seen.clear()
            t0 = deliver(k)
            got = {}
            deadline = t0 + a.latency_timeout
            while len(got) < len(watch) and time.monotonic() < deadline:
                self.poll(0.02)
                for c in watch:
                    if id(c) not in got:
                        hit = [t for t, n in c.seen if n > base[id(c)]]
                        if hit:
                            got[id(c)] = max(0.0, hit[0] - t0)
            missed += len(watch) - len(got)
            samples.extend(got.values())
            if got:
                first.append(min(got.values()))
        rec = {"kind": "latency", "server": a.server, "label": a.label, "via": via,
               "deliveries": a.deliveries, "watchers": len(watch), "samples": len(samples),
               "missed": missed, "timeout_s": a.latency_timeout,
               "median_ms": round(statistics.median(samples) * 1000, 1) if samples else None,
               "max_ms": round(max(samples) * 1000, 1) if samples else None,
               "first_median_ms": round(statistics.median(first) * 1000, 1) if first else None}
        emit(rec)
        log(f"{a.server}/{a.label}: EXISTS after {via}: median {rec['median_ms']} ms, "
            f"max {rec['max_ms']} ms over {len(samples)} samples ({missed} missed)")

    def rename_delivery(self, k):
        a = self.a
        md = a.maildir_fmt.format(user=a.user_fmt.format(0).split("@")[0])
        name = f"{int(time.time())}.M{k}P{os.getpid()}R{random.randrange(1 << 30)}.idlebench"
        tmp = os.path.join(md, "tmp", name)
        body = (f"From: sender@example.net\r\nTo: {a.user_fmt.format(0)}\r\n"
                f"Subject: idle bench rename {k}\r\nMessage-ID: <rename{k}.{name}@example.net>\r\n"
                f"\r\nHello {k}.\r\n").encode()
        with open(tmp, "wb") as f:
            f.write(body)
        if a.owner:
            uid, gid = (int(x) for x in a.owner.split(":"))
            os.chown(tmp, uid, gid)
        os.rename(tmp, os.path.join(md, "new", name))
        return time.monotonic()

    def smtp_delivery(self, smtp):
        a = self.a

        def deliver(k):
            msg = (f"From: sender@example.net\r\nTo: {a.user_fmt.format(0)}\r\n"
                   f"Subject: idle bench smtp {k}\r\nMessage-ID: <smtp{k}.{os.getpid()}@example.net>\r\n"
                   f"\r\nHello {k}.\r\n")
            smtp.sendmail("sender@example.net", [a.user_fmt.format(0)], msg)
            return time.monotonic()  # right after the final 250
        return deliver

    def intake(self):
        """SMTP intake runs alternating with and without the idle
        connections (I R R I I R ...), so a drift of the machine (disk, other
        load) spreads over both; the connections are closed for an R run and
        opened again for the next I run."""
        a = self.a
        new = os.path.join(a.intake_maildir, "new")

        def clear():
            for d in ("new", "cur", "tmp"):
                p = os.path.join(a.intake_maildir, d)
                for f in os.listdir(p):
                    os.unlink(os.path.join(p, f))

        def one(msgs):
            clear()
            os.sync()
            self.pump(0.5)
            c0 = tree_cpu_s(a.pid)
            t0 = time.monotonic()
            p = subprocess.Popen(
                ["smtp-source", "-s", str(a.intake_sessions), "-m", str(msgs), "-l", str(a.intake_size),
                 "-f", "sender@example.net", "-t", a.intake_rcpt, "-S", "idle bench intake",
                 f"{HOST}:{a.intake_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            n = 0
            while time.monotonic() - t0 < a.intake_timeout:
                self.poll(0.01)
                n = benchlib.count(new)
                if n >= msgs and p.poll() is not None:
                    break
            secs = time.monotonic() - t0
            cpu = tree_cpu_s(a.pid) - c0
            if p.poll() is None:
                p.kill()
            err = p.communicate()[1]
            return {"rc": p.returncode, "delivered": n, "complete": n >= msgs,
                    "seconds": round(secs, 3), "msgs_per_s": round(n / secs, 1),
                    "server_cpu_ms_per_msg": round(1000 * cpu / max(n, 1), 3),
                    "stderr": err.decode(errors="replace")[-200:]}

        one(a.intake_warmup)
        order = []
        for r in range(a.intake_runs):
            order += [True, False] if r % 2 == 0 else [False, True]
        is_open = True
        for k, want in enumerate(order):
            if want and not is_open:
                if not self.open_all(f"{a.label}.reopen"):
                    log(f"{a.server}: could not open the idle connections again")
                    return
                self.pump(1.0)
                is_open = True
            elif not want and is_open:
                self.close_all()
                self.pump(a.settle)
                is_open = False
            idle = sum(c.state == "idling" for c in self.conns)
            rec = {"kind": "intake", "server": a.server, "label": a.label, "idle": a.n if want else 0,
                   "idle_alive": idle, "run": k // 2 + 1, "msgs": a.intake_msgs,
                   "sessions": a.intake_sessions}
            rec.update(one(a.intake_msgs))
            if want and sum(c.state == "idling" for c in self.conns) != a.n:
                rec["ok"] = False
                rec["problem"] = "idle connections dropped during the run"
            emit(rec)
            log(f"{a.server}: intake with {rec['idle']} idle connections: {rec['msgs_per_s']} msg/s, "
                f"server CPU {rec['server_cpu_ms_per_msg']} ms/msg "
                f"({rec['delivered']}/{a.intake_msgs} in {rec['seconds']} s)")
        self.close_all()

    def close_all(self):
        for c in self.conns:
            if c.sock is not None and c.state != "failed":
                try:
                    self.sel.unregister(c.sock)
                except (KeyError, ValueError):
                    pass
                try:
                    c.sock.close()
                except OSError:
                    pass
                c.state = "closed"


def run(a):
    random.seed(a.seed)
    emit({"kind": "mem", "server": a.server, "label": f"{a.label}.rest", **tree_mem(a.pid)})
    cl = Client(a)
    ok = cl.open_all(a.label)
    if not ok:
        cl.close_all()
        return 1
    cl.pump(1.0)
    c0, t0 = tree_cpu_s(a.pid), time.monotonic()
    cl.pump(max(a.settle - 1.0, 1.0))
    cpu_pct = 100 * (tree_cpu_s(a.pid) - c0) / (time.monotonic() - t0)
    emit({"kind": "mem", "server": a.server, "label": f"{a.label}.idle", "conns": a.n,
          "idle_cpu_pct": round(cpu_pct, 2), **tree_mem(a.pid)})
    if a.deliveries and a.maildir_fmt:
        cl.latency("rename", cl.rename_delivery)
    if a.deliveries and a.smtp_port:
        smtp = smtplib.SMTP(HOST, a.smtp_port, timeout=30)
        smtp.ehlo("idle-bench.example.net")
        cl.latency("smtp", cl.smtp_delivery(smtp))
        smtp.quit()
    alive = sum(c.state == "idling" for c in cl.conns)
    emit({"kind": "alive", "server": a.server, "label": a.label, "alive": alive, "wanted": a.n,
          "ok": alive == a.n})
    if alive != a.n:
        log(f"{a.server}/{a.label}: only {alive}/{a.n} connections still open at the end")
    if a.intake_port:
        cl.intake()
    cl.close_all()
    return 0 if alive == a.n else 1


# ---------------------------------------------------------------- report ---
def cmd_report(path, goals_plain, goals_tls, goal_latency, goal_intake, max_threads_added):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))

    def mem(server, label):
        r = [x for x in recs if x.get("kind") == "mem" and x["server"] == server and x["label"] == label]
        return r[-1] if r else None

    def opened(server, label):
        r = [x for x in recs if x.get("kind") == "open" and x["server"] == server and x["label"] == label]
        return r[-1] if r else None

    def lat(server, via):
        r = [x for x in recs if x.get("kind") == "latency" and x["server"] == server and x["via"] == via]
        return r[-1] if r else None

    rows = []  # (figure, buzon, dovecot, unit, goal, goal_check(buzon value) or None)

    def num(v, nd=1):
        if v is None:
            return "-"
        if isinstance(v, str):
            return v
        if abs(v) >= 100 or float(v).is_integer():
            return f"{v:,.0f}"
        if abs(v) < 10:
            return f"{v:.2f}"
        return f"{v:,.{nd}f}"

    def ratio(b, d):
        if isinstance(b, (int, float)) and isinstance(d, (int, float)) and d:
            return f"{b / d:.2f}"
        return "-"

    conns = {}
    for label in ("plain", "tls"):
        for s in ("buzon", "dovecot"):
            o = opened(s, label)
            if o:
                conns[(s, label)] = o
    for label, goal_kib in (("plain", goals_plain), ("tls", goals_tls)):
        rest = {s: mem(s, f"{label}.rest") for s in ("buzon", "dovecot")}
        idle = {s: mem(s, f"{label}.idle") for s in ("buzon", "dovecot")}
        if not any(rest.values()):
            continue
        n = max((x.get("conns", 0) for x in idle.values() if x), default=0)
        tag = "plain" if label == "plain" else "TLS (imaps)"

        def g(d, s, k, scale=1.0):
            return d[s][k] * scale if d.get(s) else None
        rows.append((f"[{tag}] RSS at rest", g(rest, "buzon", "rss_kb", 1 / 1024),
                     g(rest, "dovecot", "rss_kb", 1 / 1024), "MiB", "", None))
        rows.append((f"[{tag}] RSS with {n} IDLE", g(idle, "buzon", "rss_kb", 1 / 1024),
                     g(idle, "dovecot", "rss_kb", 1 / 1024), "MiB", "", None))
        per = {}
        perp = {}
        for s in ("buzon", "dovecot"):
            if rest.get(s) and idle.get(s) and idle[s].get("conns"):
                per[s] = (idle[s]["rss_kb"] - rest[s]["rss_kb"]) / idle[s]["conns"]
                perp[s] = (idle[s]["pss_kb"] - rest[s]["pss_kb"]) / idle[s]["conns"]
        rows.append((f"[{tag}] KiB per idle connection (RSS)", per.get("buzon"), per.get("dovecot"),
                     "KiB", f"<= {goal_kib:g}", lambda v, gk=goal_kib: v <= gk))
        rows.append((f"[{tag}] KiB per idle connection (PSS)", perp.get("buzon"), perp.get("dovecot"),
                     "KiB", "", None))
        rows.append((f"[{tag}] processes at rest / with {n}",
                     f"{rest['buzon']['nproc']} / {idle['buzon']['nproc']}" if rest.get("buzon") and idle.get("buzon") else None,
                     f"{rest['dovecot']['nproc']} / {idle['dovecot']['nproc']}" if rest.get("dovecot") and idle.get("dovecot") else None,
                     "", "", None))
        rows.append((f"[{tag}] threads at rest", g(rest, "buzon", "threads"), g(rest, "dovecot", "threads"),
                     "", "", None))
        rows.append((f"[{tag}] threads with {n} IDLE", g(idle, "buzon", "threads"),
                     g(idle, "dovecot", "threads"), "", "", None))
        dt = {s: (idle[s]["threads"] - rest[s]["threads"]) if rest.get(s) and idle.get(s) else None
              for s in ("buzon", "dovecot")}
        rows.append((f"[{tag}] threads added by {n} IDLE", dt["buzon"], dt["dovecot"], "",
                     f"<= {max_threads_added} (independent of connections)",
                     lambda v: v <= max_threads_added))
        rows.append((f"[{tag}] server CPU while {n} wait in IDLE", g(idle, "buzon", "idle_cpu_pct"),
                     g(idle, "dovecot", "idle_cpu_pct"), "% CPU", "", None))
        ot = {s: conns[(s, label)]["seconds"] if (s, label) in conns else None for s in ("buzon", "dovecot")}
        rows.append((f"[{tag}] time to open {n} and reach IDLE", ot["buzon"], ot["dovecot"], "s", "", None))

    for via, what in (("rename", "rename tmp/->new/"), ("smtp", "SMTP final 250")):
        b, d = lat("buzon", via), lat("dovecot", via)
        if not (b or d):
            continue
        for k, name in (("median_ms", "median"), ("max_ms", "max")):
            rows.append((f"EXISTS after {what}, {name}", b[k] if b else None,
                         d[k] if d else ("n/a (no SMTP)" if via == "smtp" else None),
                         "ms", f"< {goal_latency:g}", lambda v: v < goal_latency))
        miss_b = b["missed"] if b else None
        miss_d = d["missed"] if d else ("n/a" if via == "smtp" else None)
        rows.append((f"EXISTS after {what}, missed (> timeout)",
                     f"{miss_b}/{b['samples'] + b['missed']}" if b else None,
                     f"{miss_d}/{d['samples'] + d['missed']}" if d else miss_d, "", "0", None))

    intake = [x for x in recs if x.get("kind") == "intake" and x["server"] == "buzon"]
    if intake:
        med, cpu = {}, {}
        for idle in sorted({x["idle"] for x in intake}):
            good = [x for x in intake if x["idle"] == idle and x["complete"]]
            v = [x["msgs_per_s"] for x in good]
            c = [x["server_cpu_ms_per_msg"] for x in good]
            med[idle] = statistics.median(v) if v else None
            cpu[idle] = statistics.median(c) if c else None
            spread = f" (median of {len(v)}, {min(v):.0f}..{max(v):.0f})" if v else ""
            rows.append((f"SMTP intake, {idle} IDLE{spread}", med[idle], "n/a (no SMTP)", "msg/s",
                         "", None))
            rows.append((f"SMTP intake server CPU, {idle} IDLE", cpu[idle], "n/a (no SMTP)", "ms/msg",
                         "", None))
        hi = max(med)
        if med.get(0) and med.get(hi) and hi:
            r = med[hi] / med[0]
            rows.append((f"SMTP intake ratio {hi} IDLE / 0 IDLE", r, "-", "",
                         f">= {1 - goal_intake / 100:.2f}", lambda v: v >= 1 - goal_intake / 100))
        if cpu.get(0) and cpu.get(hi) and hi:
            rows.append((f"SMTP intake server CPU ratio {hi} IDLE / 0 IDLE", cpu[hi] / cpu[0], "-", "",
                         "", None))

    w = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'figure':<{w}}  {'buzon':>14}  {'dovecot':>14}  {'b/d':>6}  {'unit':<5}  goal")
    print("-" * (w + 62))
    for fig, b, d, unit, goal, check in rows:
        mark = ""
        if check and isinstance(b, (int, float)):
            mark = "  ok" if check(b) else "  MISSED"
        print(f"{fig:<{w}}  {num(b):>14}  {num(d):>14}  {ratio(b, d):>6}  {unit:<5}  {goal}{mark}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mem")
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--server", default="")
    m.add_argument("--label", default="")
    r = sub.add_parser("run")
    r.add_argument("--server", required=True)
    r.add_argument("--label", default="plain")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--tls", action="store_true")
    r.add_argument("-n", type=int, default=1000)
    r.add_argument("--users", type=int, default=100)
    r.add_argument("--user-fmt", default="u{:03d}@example.test")
    r.add_argument("--password", default="benchpass")
    r.add_argument("--src-addrs", type=int, default=50)
    r.add_argument("--inflight", type=int, default=64)
    r.add_argument("--open-timeout", type=float, default=120)
    r.add_argument("--stop-on-failure", action="store_true")
    r.add_argument("--settle", type=float, default=3.0)
    r.add_argument("--deliveries", type=int, default=20)
    r.add_argument("--latency-timeout", type=float, default=5.0)
    r.add_argument("--maildir-fmt", help="Maildir of a user, {user} = local part; enables rename deliveries")
    r.add_argument("--owner", help="uid:gid for the renamed files")
    r.add_argument("--smtp-port", type=int, help="enables SMTP deliveries to u000")
    r.add_argument("--intake-port", type=int)
    r.add_argument("--intake-rcpt", default="intake@example.test")
    r.add_argument("--intake-maildir")
    r.add_argument("--intake-msgs", type=int, default=2000)
    r.add_argument("--intake-sessions", type=int, default=8)
    r.add_argument("--intake-size", type=int, default=1024)
    r.add_argument("--intake-runs", type=int, default=3)
    r.add_argument("--intake-warmup", type=int, default=200)
    r.add_argument("--intake-timeout", type=float, default=120)
    r.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("report")
    p.add_argument("file")
    p.add_argument("--goal-plain-kib", type=float, default=16)
    p.add_argument("--goal-tls-kib", type=float, default=48)
    p.add_argument("--goal-latency-ms", type=float, default=100)
    p.add_argument("--goal-intake-pct", type=float, default=10)
    p.add_argument("--max-threads-added", type=int, default=16,
                   help="threads the server may add with the connections (its worker pool)")
    a = ap.parse_args()
    if a.cmd == "mem":
        emit({"kind": "mem", "server": a.server, "label": a.label, **tree_mem(a.pid)})
        return 0
    if a.cmd == "run":
        return run(a)
    return cmd_report(a.file, a.goal_plain_kib, a.goal_tls_kib, a.goal_latency_ms, a.goal_intake_pct,
                      a.max_threads_added)


if __name__ == "__main__":
    sys.exit(main())
