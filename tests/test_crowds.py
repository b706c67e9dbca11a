"""Crowds: many connections that wait for their clients, slow and hostile clients, floods and a
crash, against the real server. They prove the shape DESIGN.md ("Process and threads") asks for:
a connection that waits (between commands, inside IMAP IDLE, in the middle of a line) holds no
thread, so `workers = 4` serves hundreds of such connections; every limit answers at once
(SMTP `421`, IMAP `* BYE`, POP3 `-ERR`) and closes, never hangs; a command line must be complete
within its timeout counted from its first byte; and a SIGKILL under that load loses no message
whose final `250` a client got.

The clients are Python's own smtplib, imaplib and poplib, and raw sockets where a client must
misbehave (drip a byte a second, flood). They connect from many loopback source addresses
(127.0.0.2 ... 127.0.0.250) so that the per-address limit is not what they meet. The test
process raises its RLIMIT_NOFILE to the hard limit at import (the server, started from it,
inherits the same limit).

Against a server that gives each connection a thread these tests fail: its thread count grows
with the crowd, a dripping client keeps its connection (and thread) alive, and it knows none of
the keys they set (workers, *.reserved_connections, login_timeout, smtp.junk_command_limit,
smtp.min_data_rate). The crash test is the exception: it guards durability, which the change
must keep."""

import errno
import imaplib
import os
import poplib
import re
import resource
import select
import selectors
import signal
import smtplib
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import Server, free_port


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        with open("/proc/sys/fs/nr_open") as f:
            hard = int(f.read())
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_raise_nofile()

HOST = "127.0.0.1"
ALICE = ("alice@example.test", "secret-alice")
BOB = ("bob@example.test", "secret-bob")
MIB = 1024 * 1024
MAX_THREADS = 40  # a server with `workers = 4` needs far fewer; a thread per connection needs more
NORMAL = "127.0.0.251"  # the source address of the well-behaved clients


def source(i):
    """The i-th loopback source address, 127.0.0.2 ... 127.0.0.250 (then round again)."""
    return f"127.0.0.{2 + i % 249}"


def threads(pid):
    """Threads of the server process."""
    return len(os.listdir(f"/proc/{pid}/task"))


def rss(pid):
    """VmRSS of the server process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


def quietly(close):
    """Calls a client's close or shutdown, which may already have happened."""
    try:
        close()
    except (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException):
        pass


def message(mid, to, subject="crowd"):
    return (f"From: Carol <carol@remote.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n\r\nHello from the crowd tests.\r\n")


def message_ids(maildir):
    """Message-ID of every message in a Maildir's new/ and cur/, as a list (duplicates kept)."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                head = f.read(64 * 1024).split(b"\n\n", 1)[0]
            m = re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)", head)
            if m:
                out.append(m.group(1).decode())
    return out


class IMAP(imaplib.IMAP4):
    """imaplib's client, connecting from a chosen loopback source address."""

    def __init__(self, port, src, timeout=10):
        self.src = src
        super().__init__(HOST, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.src, 0))


class POP3(poplib.POP3):
    """poplib's client, connecting from a chosen loopback source address."""

    def __init__(self, port, src, timeout=10):
        self.src = src
        super().__init__(HOST, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.src, 0))


def smtp_client(port, src=NORMAL, timeout=10):
    """smtplib's client from `src`; raises SMTPConnectError unless the banner is a 220."""
    return smtplib.SMTP(HOST, port, source_address=(src, 0), timeout=timeout)


class Peer:
    """A raw client socket from a chosen loopback address: bytes out, CRLF lines in."""

    def __init__(self, port, src="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout, source_address=(src, 0))
        self.buf = b""
        self.closed = False  # the server closed (EOF) or reset the connection

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete line from the server in time; buffered %r" % self.buf[:200])
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk

    def line(self, timeout=10):
        """The next line without its CRLF, or None once the server has closed."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if self.closed:
                return None
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=10):
        """One SMTP reply: (code, text), or (None, what came) when the server closed first."""
        lines = []
        while True:
            line = self.line(timeout)
            if line is None:
                return None, "\n".join(lines + ["<closed>"])
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                code = int(line[:3]) if line[:3].isdigit() else None
                return code, "\n".join(lines)

    def cmd(self, text, timeout=10):
        self.send(text + "\r\n")
        return self.reply(timeout)

    def until_closed(self, timeout):
        """Reads lines until the server closes or `timeout` passes: (lines, closed)."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            try:
                line = self.line(max(deadline - time.monotonic(), 0.001))
            except socket.timeout:
                return lines, False
            if line is None:
                if self.buf:
                    lines.append(self.buf)
                return lines, True
            lines.append(line)

    def silent_and_open(self):
        """True when the server has neither said anything nor closed (checked without waiting)."""
        if self.closed or self.buf:
            return False
        self.sock.setblocking(False)  # (with a timeout set, Python would wait for data first)
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            self.closed = True
            return False
        finally:
            self.sock.settimeout(10)
        if not data:
            self.closed = True
        self.buf += data
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Herd:
    """Many raw sockets driven by one selectors loop: what each receives gathers in its buffer."""

    def __init__(self, socks):
        self.socks = list(socks)
        self.bufs = [b""] * len(self.socks)
        self.closed = [False] * len(self.socks)
        for s in self.socks:
            s.setblocking(False)

    def send(self, i, data):
        view = memoryview(data)
        deadline = time.monotonic() + 10
        while view:
            try:
                view = view[self.socks[i].send(view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                select.select([], [self.socks[i]], [], 0.1)
            except OSError:
                self.closed[i] = True
                return

    def send_all(self, data):
        for i in range(len(self.socks)):
            if not self.closed[i]:
                self.send(i, data(i) if callable(data) else data)

    def wait(self, done, timeout, only=None):
        """Reads until `done(buffer)` holds for every socket (of `only`, if given) or `timeout`
        passes; returns the indexes for which it does not."""
        pending = {i for i in (only if only is not None else range(len(self.socks)))
                   if not done(self.bufs[i])}
        sel = selectors.DefaultSelector()
        for i in pending:
            if not self.closed[i]:
                sel.register(self.socks[i], selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        try:
            while pending and sel.get_map() and time.monotonic() < deadline:
                for key, _ in sel.select(min(0.5, max(deadline - time.monotonic(), 0))):
                    i = key.data
                    try:
                        chunk = self.socks[i].recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        self.closed[i] = True
                        sel.unregister(self.socks[i])
                        continue
                    self.bufs[i] += chunk
                    if done(self.bufs[i]):
                        pending.discard(i)
                        sel.unregister(self.socks[i])
        finally:
            sel.close()
        return sorted(pending)

    def describe(self, indexes, n=3):
        return "; ".join(f"#{i}{' (closed)' if self.closed[i] else ''}: {self.bufs[i][-200:]!r}"
                         for i in indexes[:n])

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def line_starting(prefix):
    """A predicate: the buffer holds a line that starts with `prefix` (bytes, or a regex)."""
    pat = re.compile(rb"(?:^|\r\n)" + (prefix if isinstance(prefix, bytes) else prefix.encode()))
    return lambda buf: pat.search(buf) is not None


class Dripper(threading.Thread):
    """Sends one byte a second to each of its peers, from its text (a line that is never
    finished, or a DATA body that never ends), until stopped."""

    def __init__(self, peers):
        super().__init__(daemon=True)
        self.peers = peers  # [(Peer, text)]
        self.halt = threading.Event()
        self.failed = {}  # index -> the send error

    def run(self):
        k = 0
        while not self.halt.is_set():
            for i, (p, text) in enumerate(self.peers):
                if i in self.failed or k >= len(text):
                    continue
                try:
                    p.sock.send(text[k:k + 1])  # one byte: the socket buffer always has room
                except OSError as e:
                    self.failed[i] = repr(e)
            k += 1
            self.halt.wait(1.0)

    def stop(self):
        self.halt.set()
        self.join(5)


class CrowdCase(unittest.TestCase):
    """Helpers: a server with IMAP and POP3 beside SMTP on free ports, and clients that are all
    closed when the test ends."""

    def start_server(self, extra, imap=False, pop3=False):
        lines = ["auth.cleartext_networks = 127.0.0.0/8"]
        imap_port = pop3_port = None
        if imap:
            imap_port = free_port()
            lines.append(f"imap.listen = {HOST}:{imap_port}")
        if pop3:
            pop3_port = free_port()
            lines.append(f"pop3.listen = {HOST}:{pop3_port}")
        s = Server(extra="\n".join(lines) + "\n" + extra)
        self.addCleanup(s.cleanup)
        s.imap_port, s.pop3_port = imap_port, pop3_port
        s.start()
        for user in ("alice", "bob"):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(s.maildir(user), sub), exist_ok=True)
        return s

    def peer(self, port, src="127.0.0.1", timeout=10):
        p = Peer(port, src, timeout)
        self.addCleanup(p.close)
        return p

    def herd(self, socks):
        h = Herd(socks)
        self.addCleanup(h.close)
        return h

    def imap_sessions(self, port, n, user_of, source_of, parallel=32):
        """n imaplib sessions, logged in with INBOX selected; fails the test, saying which and
        why, unless every one gets there."""
        def open_one(i):
            try:
                c = IMAP(port, source_of(i))
            except Exception as e:
                return i, None, f"connect: {e!r}"
            try:
                c.login(*user_of(i))
                typ, data = c.select("INBOX")
                if typ != "OK":
                    return i, c, f"SELECT INBOX: {typ} {data}"
                return i, c, None
            except Exception as e:
                return i, c, f"{e!r}"

        with ThreadPoolExecutor(parallel) as ex:
            results = list(ex.map(open_one, range(n)))
        clients = [c for _, c, _ in results if c is not None]
        self.addCleanup(lambda: [quietly(c.shutdown) for c in clients])
        errors = [(i, source_of(i), e) for i, _, e in results if e]
        self.assertEqual(errors[:5], [], f"{len(errors)} of {n} IMAP clients could not log in and "
                                         f"SELECT INBOX (first ones shown as (index, source, error))")
        return clients

    def idle(self, clients, tag=b"i1"):
        """Puts every imaplib session into IDLE (RFC 2177) by hand on its socket (imaplib has no
        IDLE before Python 3.14) and waits for each `+` continuation; returns the Herd of their
        sockets. imaplib's buffer is empty here: SELECT's tagged reply was the last thing sent."""
        herd = self.herd([c.sock for c in clients])
        herd.send_all(tag + b" IDLE\r\n")
        missing = herd.wait(line_starting(b"\\+ "), 10)
        self.assertEqual(missing, [], f"{len(missing)} of {len(clients)} IMAP sessions got no `+` "
                                      f"continuation to IDLE within 10 s: {herd.describe(missing)}")
        return herd


class IdleCrowd(CrowdCase):

    def test_500_idle_sessions_all_see_a_delivery(self):
        """500 imaplib sessions (alice and bob, 10 per source address) sit in IDLE on a server
        with 4 workers. SMTP still answers with its 220 at once; a message to alice and one to bob
        reach every IDLE session of theirs as `* N EXISTS` within 10 s; each leaves IDLE with DONE
        and logs out. While the 500 wait, the server runs fewer than 40 threads: an idle
        connection holds none."""
        n = 500
        s = self.start_server("workers = 4\nmax_connections = 3000\n", imap=True)
        pid = s.proc.pid
        users = [ALICE if i % 2 == 0 else BOB for i in range(n)]
        clients = self.imap_sessions(s.imap_port, n, lambda i: users[i], lambda i: source(i // 10))
        herd = self.idle(clients)
        samples = [threads(pid)]

        smtp = smtplib.SMTP(source_address=(NORMAL, 0), timeout=10)
        self.addCleanup(smtp.close)
        t0 = time.monotonic()
        code, banner = smtp.connect(HOST, s.port)
        self.assertEqual(code, 220, f"with 500 IMAP sessions in IDLE, SMTP answered {code} {banner!r}")
        for who in (ALICE, BOB):
            smtp.sendmail("carol@remote.test", [who[0]], message(f"<idle-{who[0]}@remote.test>", who[0]))
        smtp.quit()
        print(f"\nSMTP connect + 2 messages with 500 in IDLE: {time.monotonic() - t0:.2f} s")
        samples.append(threads(pid))

        t0 = time.monotonic()
        missing = herd.wait(line_starting(rb"\* [1-9]\d* EXISTS\r\n"), 10)
        samples.append(threads(pid))
        print(f"every IDLE session told of the delivery after {time.monotonic() - t0:.2f} s; "
              f"server threads {samples}, RSS {rss(pid) / MIB:.1f} MiB")
        missed_alice = [i for i in missing if users[i] == ALICE]
        missed_bob = [i for i in missing if users[i] == BOB]
        self.assertEqual((len(missed_alice), len(missed_bob)), (0, 0),
                         f"IDLE sessions that saw no `* N EXISTS` within 10 s of the delivery: "
                         f"{len(missed_alice)} of alice's 250, {len(missed_bob)} of bob's 250: "
                         f"{herd.describe(missing)}")

        herd.send_all(b"DONE\r\n")
        missing = herd.wait(line_starting(b"i1 OK"), 10)
        self.assertEqual(missing, [], f"{len(missing)} IDLE sessions did not end with `i1 OK` after DONE: "
                                      f"{herd.describe(missing)}")
        herd.send_all(b"o1 LOGOUT\r\n")
        missing = herd.wait(line_starting(b"o1 OK"), 10)
        self.assertEqual(missing, [], f"{len(missing)} sessions did not log out: {herd.describe(missing)}")
        herd.close()

        self.assertLess(max(samples), MAX_THREADS,
                        f"the server ran {max(samples)} threads (samples {samples}) while 500 IMAP "
                        f"sessions waited in IDLE with workers = 4: a waiting connection must hold no thread")


class SlowClients(CrowdCase):

    def dripper_peers(self, s, n_per_kind, sources):
        """Opens the dripping clients: each is (Peer, the text it drips). Kinds: an SMTP command
        line, an SMTP DATA body after MAIL and RCPT, an IMAP line before and after LOGIN, a POP3
        line. None of the texts is ever finished."""
        endless = lambda head: head + b"x" * 200  # no CRLF: the line never ends

        def smtp_line(src):
            p = Peer(s.port, src)
            code, text = p.reply()
            assert code == 220, f"SMTP banner: {text!r}"
            return p, endless(b"EHLO drip")

        def smtp_data(src):
            p = Peer(s.port, src)
            for cmd, want in ((None, 220), ("EHLO drip.example", 250), ("MAIL FROM:<drip@remote.test>", 250),
                              (f"RCPT TO:<{BOB[0]}>", 250), ("DATA", 354)):
                code, text = p.reply() if cmd is None else p.cmd(cmd)
                assert code == want, f"{cmd}: {text!r}"
            return p, b"Subject: drip\r\n\r\n" + b"drip drop\r\n" * 30  # and never the final dot

        def imap_line(src):
            p = Peer(s.imap_port, src)
            greeting = p.line()
            assert greeting and greeting.startswith(b"* OK"), f"IMAP greeting: {greeting!r}"
            return p, endless(b"a1 LOGIN ")

        def imap_logged_in(src):
            p = Peer(s.imap_port, src)
            greeting = p.line()
            assert greeting and greeting.startswith(b"* OK"), f"IMAP greeting: {greeting!r}"
            p.send(f'a1 LOGIN "{ALICE[0]}" "{ALICE[1]}"\r\n')
            while True:
                line = p.line()
                assert line is not None, "closed after LOGIN"
                if line.startswith(b"a1 "):
                    assert line.startswith(b"a1 OK"), f"LOGIN: {line!r}"
                    break
            return p, endless(b"a2 SELECT ")

        def pop3_line(src):
            p = Peer(s.pop3_port, src)
            greeting = p.line()
            assert greeting and greeting.startswith(b"+OK"), f"POP3 greeting: {greeting!r}"
            return p, endless(b"USER ")

        kinds = [("smtp line", smtp_line), ("smtp data", smtp_data), ("imap line", imap_line),
                 ("imap line after login", imap_logged_in), ("pop3 line", pop3_line)]
        jobs = [(name, fn) for name, fn in kinds for _ in range(n_per_kind)]
        jobs = [(name, fn, sources[j % len(sources)]) for j, (name, fn) in enumerate(jobs)]

        def open_one(job):
            name, fn, src = job
            try:
                p, text = fn(src)
                return name, p, text, None
            except Exception as e:
                return name, None, None, f"{name} from {src}: {e!r}"

        with ThreadPoolExecutor(30) as ex:
            opened = list(ex.map(open_one, jobs))
        for _, p, _, _ in opened:
            if p is not None:
                self.addCleanup(p.close)
        errors = [e for _, _, _, e in opened if e]
        self.assertEqual(errors[:5], [], f"{len(errors)} dripping clients could not be set up")
        return [(name, p, text) for name, p, text, _ in opened]

    def test_300_dripping_clients_do_not_block_service(self):
        """300 clients from 20 source addresses each send one byte a second of something they
        never finish: an SMTP command line, a DATA body, an IMAP command before or after LOGIN, a
        POP3 command. Meanwhile a normal smtplib session delivers a message, an imaplib session
        logs in and fetches it and a poplib session lists it, each within 5 s; the drippers are
        all still connected (not cut off to make room), and the server runs fewer than 40
        threads with workers = 4: a connection in the middle of a line holds no thread."""
        s = self.start_server("workers = 4\nmax_connections = 1000\nmax_connections_per_ip = 20\n",
                              imap=True, pop3=True)
        pid = s.proc.pid
        sources = [f"127.0.0.{10 + k}" for k in range(20)]  # 15 drippers each, under the 20 per address
        drippers = self.dripper_peers(s, 60, sources)
        self.assertEqual(len(drippers), 300)
        drip = Dripper([(p, text) for _, p, text in drippers])
        drip.start()
        self.addCleanup(drip.stop)
        time.sleep(2)  # every dripper is in the middle of its line
        samples = [threads(pid)]
        took = {}

        mid = "<normal-while-dripping@remote.test>"
        t0 = time.monotonic()
        try:
            with smtp_client(s.port, timeout=10) as smtp:
                smtp.sendmail("carol@remote.test", [ALICE[0]], message(mid, ALICE[0]))
        except (smtplib.SMTPException, OSError) as e:
            self.fail(f"a normal SMTP session failed while 300 clients dripped: {e!r}")
        took["smtp"] = time.monotonic() - t0
        samples.append(threads(pid))

        t0 = time.monotonic()
        try:
            c = IMAP(s.imap_port, NORMAL)
            self.addCleanup(quietly, c.shutdown)
            c.login(*ALICE)
            self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
            typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            self.assertEqual(typ, "OK")
            self.assertIn(mid.encode(), data[0][1])
            c.logout()
        except (imaplib.IMAP4.error, OSError, EOFError) as e:
            self.fail(f"a normal IMAP session failed while 300 clients dripped: {e!r}")
        took["imap"] = time.monotonic() - t0
        samples.append(threads(pid))

        t0 = time.monotonic()
        try:
            p = POP3(s.pop3_port, NORMAL)
            self.addCleanup(p.close)
            p.user(ALICE[0])
            p.pass_(ALICE[1])
            resp, listing, _ = p.list()
            self.assertTrue(resp.startswith(b"+OK"), resp)
            self.assertEqual(len(listing), 1, listing)
            p.quit()
        except (poplib.error_proto, OSError, EOFError) as e:
            self.fail(f"a normal POP3 session failed while 300 clients dripped: {e!r}")
        took["pop3"] = time.monotonic() - t0
        samples.append(threads(pid))
        print("\nwhile 300 dripped: " + ", ".join(f"{k} {v:.2f} s" for k, v in took.items())
              + f"; server threads {samples}, RSS {rss(pid) / MIB:.1f} MiB")

        for what, secs in took.items():
            self.assertLessEqual(secs, 5.0, f"the normal {what} session took {secs:.1f} s while 300 clients dripped")
        # Within every timeout (smtp.timeout and login_timeout keep their defaults here), so none
        # may have been cut off; a DATA dripper may meet a default smtp.min_data_rate, so it is not counted.
        cut = [f"{name} #{i}: {p.buf[:100]!r}{' closed' if p.closed else ''}"
               for i, (name, p, _) in enumerate(drippers) if name != "smtp data" and not p.silent_and_open()]
        self.assertEqual(cut[:5], [],
                         f"{len(cut)} dripping clients were answered or closed while within their timeouts")
        self.assertLess(max(samples), MAX_THREADS,
                        f"the server ran {max(samples)} threads (samples {samples}) with 300 clients in "
                        f"the middle of a line and workers = 4: a waiting connection must hold no thread")
        drip.stop()

    def test_a_line_must_be_complete_within_the_timeout(self):
        """smtp.timeout = 3s is the time a command line has from its first byte to its end: a
        client that sends one byte a second and never ends its line gets `421` and is closed
        within 3-6 s, not kept alive by its drip. DATA slower than smtp.min_data_rate (here 200
        bytes/s, a fifth of 1000, in whole lines) is ended with `421` too, and not delivered."""
        s = self.start_server("workers = 4\nsmtp.timeout = 3s\nsmtp.min_data_rate = 1000\n")

        with self.subTest("a line dripped a byte a second"):
            p = self.peer(s.port)
            code, text = p.reply()
            self.assertEqual(code, 220, text)
            text = b"EHLO slow.example.org" + b"x" * 20
            got, closed, first, k = [], False, time.monotonic(), 0
            while time.monotonic() - first < 9 and not closed:
                try:
                    p.sock.send(text[k:k + 1])
                except OSError:
                    pass  # the server closed: what it said is still to be read
                k += 1
                lines, closed = p.until_closed(max(first + k - time.monotonic(), 0.01))
                got += lines
            elapsed = time.monotonic() - first
            said = b" | ".join(got)
            self.assertTrue(closed and any(l.startswith(b"421") for l in got),
                            f"after {elapsed:.1f} s of one byte a second (smtp.timeout = 3s) the server said "
                            f"{said!r} and {'closed' if closed else 'kept the connection open'}")
            self.assertTrue(2.0 <= elapsed <= 6.5,
                            f"the dripping line was ended {elapsed:.1f} s after its first byte (smtp.timeout = 3s)")

        with self.subTest("DATA below smtp.min_data_rate"):
            p = self.peer(s.port)
            for cmd, want in ((None, 220), ("EHLO slow.example.org", 250), ("MAIL FROM:<carol@remote.test>", 250),
                              (f"RCPT TO:<{ALICE[0]}>", 250), ("DATA", 354)):
                code, text = p.reply() if cmd is None else p.cmd(cmd)
                self.assertEqual(code, want, f"{cmd}: {text}")
            p.send("Subject: slow\r\nMessage-ID: <slow-data@remote.test>\r\n\r\n")
            got, closed, start = [], False, time.monotonic()
            while time.monotonic() - start < 10 and not closed:
                try:
                    p.sock.send(b"y" * 98 + b"\r\n")  # 100 bytes every half second: 200 bytes/s
                except OSError:
                    pass
                lines, closed = p.until_closed(0.5)
                got += lines
            elapsed = time.monotonic() - start
            said = b" | ".join(got)
            self.assertTrue(closed and any(l.startswith(b"421") for l in got),
                            f"DATA at 200 bytes/s (smtp.min_data_rate = 1000) went on for {elapsed:.1f} s; "
                            f"the server said {said!r} and {'closed' if closed else 'kept the connection open'}")
            self.assertNotIn("<slow-data@remote.test>", message_ids(s.maildir("alice")),
                             "a message cut off for its rate was delivered")

    def test_junk_commands_are_limited(self):
        """smtp.junk_command_limit = 20: NOOP, RSET, VRFY, EXPN and HELP are junk. The first 20
        are answered as usual, the 21st gets `421` and the connection is closed; the same for
        a mix of them. (As Postfix's smtpd_junk_command_limit, for every client; smtp.max_errors
        is raised out of the way.)"""
        s = self.start_server("workers = 4\nsmtp.junk_command_limit = 20\nsmtp.max_errors = 1000\n")

        with self.subTest("25 NOOPs"):
            p = self.peer(s.port)
            self.assertEqual(p.reply()[0], 220)
            self.assertEqual(p.cmd("EHLO junk.example")[0], 250)
            codes = []
            for _ in range(25):
                try:
                    code, text = p.cmd("NOOP", timeout=5)
                except OSError:
                    code = None
                codes.append(code)
                if code is None or code == 421:
                    break
            self.assertEqual(codes, [250] * 20 + [421],
                             f"reply codes to 25 NOOPs with smtp.junk_command_limit = 20 (None: closed)")
            self.assertTrue(p.until_closed(3)[1], "the connection stayed open after the 421")

        with self.subTest("a mix of junk commands"):
            p = self.peer(s.port)
            self.assertEqual(p.reply()[0], 220)
            self.assertEqual(p.cmd("EHLO junk.example")[0], 250)
            junk = ["NOOP", "RSET", f"VRFY {ALICE[0]}", "EXPN staff", "HELP"]
            replies = []
            for k in range(25):
                try:
                    code, text = p.cmd(junk[k % len(junk)], timeout=5)
                except OSError:
                    code, text = None, "<closed>"
                replies.append((junk[k % len(junk)], code))
                if code is None or code == 421:
                    break
            self.assertEqual(len(replies), 21, f"replies: {replies}")
            self.assertNotIn(421, [c for _, c in replies[:20]], f"replies: {replies}")
            self.assertNotIn(None, [c for _, c in replies[:20]], f"replies: {replies}")
            self.assertEqual(replies[20][1], 421, f"replies: {replies}")
            self.assertTrue(p.until_closed(3)[1], "the connection stayed open after the 421")

    def test_clients_that_do_not_read_hold_no_worker(self):
        """workers = 1: two clients ask for a 20 MiB message (IMAP FETCH BODY[], POP3 RETR) and
        then read nothing, so the server's writes to them wait; meanwhile other clients are served
        at once (imaplib LOGIN and NOOP, smtplib delivery, poplib STAT): a connection waiting for
        its client to read holds a spare thread, not the worker. Then the readers read, and get
        the whole message."""
        s = self.start_server("workers = 1\nmessage_size_limit = 64M\n", imap=True, pop3=True)
        body = b"".join(b"%07d the quick brown fox jumps over the lazy dog\r\n" % i for i in range(400_000))
        with smtp_client(s.port) as c:
            c.sendmail("x@remote.test", [ALICE[0]], b"Subject: big\r\n\r\n" + body)

        def stalled(port, src):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((src, 0))
            sock.connect((HOST, port))
            self.addCleanup(sock.close)
            return sock

        def recv_until(sock, marker, timeout=10):
            chunks, end = [], time.monotonic() + timeout
            sock.settimeout(timeout)
            while time.monotonic() < end:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                if marker in b"".join(chunks[-2:]):
                    break
            return b"".join(chunks)

        imap_sock = stalled(s.imap_port, source(1))
        recv_until(imap_sock, b"\r\n")
        imap_sock.sendall(b"a LOGIN alice@example.test secret-alice\r\nb SELECT INBOX\r\nc FETCH 1 BODY[]\r\n")
        pop_sock = stalled(s.pop3_port, source(2))
        recv_until(pop_sock, b"\r\n")
        pop_sock.sendall(b"USER alice@example.test\r\nPASS secret-alice\r\nRETR 1\r\n")
        time.sleep(1)  # both writers now wait on full sockets

        t0 = time.monotonic()
        c = IMAP(s.imap_port, NORMAL)
        self.addCleanup(quietly, c.shutdown)
        c.login(*ALICE)
        self.assertEqual(c.noop()[0], "OK")
        with smtp_client(s.port) as m:
            m.sendmail("x@remote.test", [BOB[0]], b"Subject: small\r\n\r\nhi\r\n")
        p = POP3(s.pop3_port, NORMAL)
        self.addCleanup(quietly, p.quit)
        p.user(BOB[0])
        p.pass_(BOB[1])
        self.assertEqual(p.stat()[0], 1)
        took = time.monotonic() - t0
        self.assertLess(took, 8, f"with two clients not reading and workers = 1, others took {took:.1f} s")

        for sock in (imap_sock, pop_sock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        got = recv_until(imap_sock, b"c OK", timeout=60)
        self.assertIn(b"%07d the quick" % 399_999, got, "the stalled IMAP reader got the whole message")
        got = recv_until(pop_sock, b"\r\n.\r\n", timeout=60)
        self.assertIn(b"%07d the quick" % 399_999, got, "the stalled POP3 reader got the whole message")

    def test_mailbox_fetch_to_slow_readers_waits_in_the_loop(self):
        """workers = 1: 20 clients each ask for a whole 4 MiB mailbox (`FETCH 1:* BODY[]` over 40
        messages of 100 KiB) and then read nothing. Between two messages a FETCH whose client is
        not reading waits in the event loop, so the server gains no thread for them (a thread per
        stalled reader would be 20 more) and other clients are served at once; then the readers
        read, and each gets all 40 messages and the tagged OK."""
        s = self.start_server("workers = 1\nmax_connections_per_ip = 100\n", imap=True)
        text = b"".join(b"%05d the quick brown fox jumps over the lazy dog\r\n" % i for i in range(2000))
        with smtp_client(s.port) as c:
            for i in range(40):
                c.sendmail("x@remote.test", [ALICE[0]], b"Subject: part %d\r\n\r\n" % i + text)
        before = threads(s.proc.pid)

        readers = []
        for i in range(20):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((source(i), 0))
            sock.connect((HOST, s.imap_port))
            self.addCleanup(sock.close)
            sock.settimeout(10)
            self.assertTrue(sock.recv(4096).startswith(b"* OK"))
            sock.sendall(b"a LOGIN alice@example.test secret-alice\r\nb SELECT INBOX\r\n"
                         b"c FETCH 1:* BODY[]\r\n")
            readers.append(sock)
        time.sleep(1.5)  # every FETCH now waits on a full socket
        during = threads(s.proc.pid)
        self.assertLessEqual(during, before + 2,
                             f"server threads {before} before, {during} with 20 stalled mailbox "
                             f"FETCHes and workers = 1: a FETCH waiting for its reader must hold no thread")

        t0 = time.monotonic()
        c = IMAP(s.imap_port, NORMAL)
        self.addCleanup(quietly, c.shutdown)
        c.login(*BOB)
        self.assertEqual(c.select("INBOX")[0], "OK")
        took = time.monotonic() - t0
        self.assertLess(took, 5, f"with 20 stalled FETCHes and workers = 1, a login took {took:.1f} s")

        def drain(sock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 * MIB)
            sock.settimeout(60)
            data = bytearray()
            while not data.endswith(b"\r\n") or b"\r\nc " not in data[-200:]:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            return bytes(data)

        with ThreadPoolExecutor(20) as ex:
            got = list(ex.map(drain, readers))
        for i, data in enumerate(got):
            self.assertEqual(data.count(b"%05d the quick" % 1999), 40, f"reader {i} got every message")
            self.assertIn(b"\r\nc OK", data[-200:], f"reader {i} got the tagged OK")

    def test_login_timeout(self):
        """login_timeout = 2s: an IMAP session that has not logged in within it gets `* BYE` and
        is closed within 2-5 s of connecting, even when it keeps sending NOOPs (it is a limit on
        logging in, not on idleness); a POP3 one gets `-ERR` and is closed; an IMAP session that
        has logged in is still served after waiting 4 s."""
        s = self.start_server("workers = 4\nlogin_timeout = 2s\n", imap=True, pop3=True)

        def silent(port):
            t0 = time.monotonic()
            p = self.peer(port)
            first = p.line()
            lines, closed = p.until_closed(7)
            return first, lines, closed, time.monotonic() - t0

        def chatty():
            t0 = time.monotonic()
            p = self.peer(s.imap_port)
            first = p.line()
            got, closed, n = [], False, 0
            while not closed and time.monotonic() - t0 < 7:
                n += 1
                try:
                    p.send(f"n{n} NOOP\r\n")
                except OSError:
                    pass
                lines, closed = p.until_closed(0.5)
                got += lines
            return first, got, closed, time.monotonic() - t0

        def logged_in():
            c = IMAP(s.imap_port, NORMAL)
            self.addCleanup(quietly, c.shutdown)
            c.login(*ALICE)
            time.sleep(4)
            return c.noop()

        with ThreadPoolExecutor(4) as ex:
            imap_silent = ex.submit(silent, s.imap_port)
            imap_chatty = ex.submit(chatty)
            pop3_silent = ex.submit(silent, s.pop3_port)
            served = ex.submit(logged_in)

        for name, fut, greeting, bye in (("IMAP, silent", imap_silent, b"* OK", b"* BYE"),
                                         ("IMAP, NOOP every 0.5 s", imap_chatty, b"* OK", b"* BYE"),
                                         ("POP3, silent", pop3_silent, b"+OK", b"-ERR")):
            with self.subTest(name):
                first, lines, closed, secs = fut.result()
                self.assertTrue(first and first.startswith(greeting), f"greeting {first!r}")
                said = b" | ".join(lines)[-300:]
                self.assertTrue(closed and any(l.startswith(bye) for l in lines),
                                f"{name}, not logged in, login_timeout = 2s: after {secs:.1f} s the server said "
                                f"{said!r} and {'closed' if closed else 'kept the connection open'}")
                self.assertTrue(1.5 <= secs <= 5.5,
                                f"{name}: closed {secs:.1f} s after connecting (login_timeout = 2s)")
        with self.subTest("IMAP, logged in, 4 s later"):
            typ, data = served.result()
            self.assertEqual(typ, "OK", data)


class Flood(CrowdCase):

    def flood(self, port, n, sources, ok, busy, wait=10.0):
        """Opens n non-blocking connections as fast as possible, holds them, and reads for up to
        `wait` s what each gets: (states, RSS samples, thread samples, sockets). A state is "ok",
        "busy" (refused and closed cleanly), or what went wrong."""
        pid = self.server.proc.pid
        socks, states, bufs = [], [None] * n, [b""] * n
        sel = selectors.DefaultSelector()
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            s.bind((sources[i % len(sources)], 0))
            err = s.connect_ex((HOST, port))
            if err not in (0, errno.EINPROGRESS):
                states[i] = f"connect: {errno.errorcode.get(err, err)}"
                continue
            sel.register(s, selectors.EVENT_READ, i)
        rss_samples, thread_samples, next_sample = [], [], 0.0
        deadline = time.monotonic() + wait
        while sel.get_map() and time.monotonic() < deadline:
            if time.monotonic() >= next_sample:
                rss_samples.append(rss(pid))
                thread_samples.append(threads(pid))
                next_sample = time.monotonic() + 0.25
            for key, _ in sel.select(0.1):
                i = key.data
                try:
                    chunk = socks[i].recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    states[i] = "reset" + (f" after {bufs[i][:60]!r}" if bufs[i] else " with no answer")
                    sel.unregister(socks[i])
                    continue
                except OSError as e:
                    states[i] = f"error {e!r}"
                    sel.unregister(socks[i])
                    continue
                if not chunk:
                    if states[i] == "busy-open":
                        states[i] = "busy"
                    elif states[i] is None:
                        states[i] = "closed with " + (repr(bufs[i][:60]) if bufs[i] else "no answer")
                    sel.unregister(socks[i])
                    continue
                bufs[i] += chunk
                if states[i] is None and b"\r\n" in bufs[i]:
                    if bufs[i].startswith(ok):
                        states[i] = "ok"
                        sel.unregister(socks[i])  # held open, as a client that is slow to speak
                    elif bufs[i].startswith(busy):
                        states[i] = "busy-open"  # now the server must close it
                    else:
                        states[i] = f"unexpected {bufs[i][:80]!r}"
                        sel.unregister(socks[i])
        sel.close()
        rss_samples.append(rss(pid))
        thread_samples.append(threads(pid))
        return states, rss_samples, thread_samples, socks

    def check_flood(self, what, states, rss_samples, thread_samples, max_ok):
        counts = {}
        for st in states:
            key = "no answer within 10 s" if st is None else ("busy but not closed" if st == "busy-open" else st)
            counts[key] = counts.get(key, 0) + 1
        print(f"\n{what}: {counts}; peak RSS {max(rss_samples) / MIB:.1f} MiB, peak threads {max(thread_samples)}")
        bad = {k: v for k, v in counts.items() if k not in ("ok", "busy")}
        self.assertEqual(bad, {}, f"{what}: every connection must get a greeting or a clean refusal "
                                  f"(answer, then close); counts: {counts}")
        self.assertLessEqual(counts.get("ok", 0), max_ok, f"{what}: more greeted than max_connections allows: {counts}")
        self.assertGreaterEqual(counts.get("ok", 0), max_ok // 2,
                                f"{what}: fewer than half of max_connections were greeted: {counts}")
        self.assertLess(max(rss_samples), 64 * MIB,
                        f"{what}: server RSS reached {max(rss_samples) / MIB:.1f} MiB with {counts.get('ok', 0)} "
                        f"connections held")
        self.assertLess(max(thread_samples), MAX_THREADS,
                        f"{what}: the server ran {max(thread_samples)} threads with {counts.get('ok', 0)} "
                        f"connections held and workers = 4: a waiting connection must hold no thread")

    CONFIG = "workers = 4\nmax_connections = 1000\nmax_connections_per_ip = 100\n"
    SOURCES = [f"127.0.0.{100 + k}" for k in range(25)]  # 80 connections each, under the 100 per address

    def test_2000_connections_each_get_an_answer(self):
        """2,000 TCP connections opened to SMTP at once from 25 addresses (max_connections = 1000,
        max_connections_per_ip = 100, workers = 4) and held: within 10 s every one has either a
        `220` banner (no more than 1,000) or a `421` followed by the server's close; none is reset
        or left without an answer. The server stays under 64 MiB RSS and 40 threads, and once
        they are closed a normal smtplib session delivers."""
        self.server = s = self.start_server(self.CONFIG)
        states, rss_samples, thread_samples, socks = self.flood(s.port, 2000, self.SOURCES, b"220", b"421")
        for sock in socks:
            sock.close()
        self.check_flood("2000 SMTP connections", states, rss_samples, thread_samples, 1000)
        deadline = time.monotonic() + 5
        while True:  # the server may take a moment to see 1,000 closes
            try:
                with smtp_client(s.port) as smtp:
                    smtp.sendmail("carol@remote.test", [ALICE[0]], message("<after-flood@remote.test>", ALICE[0]))
                break
            except smtplib.SMTPConnectError as e:
                if time.monotonic() > deadline:
                    self.fail(f"5 s after the flood was closed, SMTP still refuses: {e!r}")
                time.sleep(0.1)
        self.assertIn("<after-flood@remote.test>", message_ids(s.maildir("alice")))

    def test_2000_imap_connections_each_get_an_answer(self):
        """The same flood against IMAP: every connection gets `* OK` (no more than 1,000) or
        `* BYE` and the server's close, within 10 s; under 64 MiB and 40 threads; afterwards an
        imaplib session logs in."""
        self.server = s = self.start_server(self.CONFIG, imap=True)
        states, rss_samples, thread_samples, socks = self.flood(s.imap_port, 2000, self.SOURCES, b"* OK", b"* BYE")
        for sock in socks:
            sock.close()
        self.check_flood("2000 IMAP connections", states, rss_samples, thread_samples, 1000)
        deadline = time.monotonic() + 5
        while True:
            try:
                c = IMAP(s.imap_port, NORMAL)
                self.addCleanup(quietly, c.shutdown)
                self.assertEqual(c.login(*ALICE)[0], "OK")
                c.logout()
                break
            except imaplib.IMAP4.error as e:  # a BYE greeting
                if time.monotonic() > deadline:
                    self.fail(f"5 s after the flood was closed, IMAP still refuses: {e!r}")
                time.sleep(0.1)

    def fill(self, port, ok, busy, sources, limit=150):
        """Opens connections one after the other, holding each greeted one, until one is refused:
        returns (the held peers, the refusal)."""
        held = []
        for i in range(limit):
            p = self.peer(port, sources[i % len(sources)])
            line = p.line(5)
            if line is not None and line.startswith(ok):
                held.append(p)
            elif line is not None and line.startswith(busy):
                p.close()
                return held, line
            else:
                self.fail(f"connection {i + 1} got {line!r} (neither {ok!r} nor {busy!r})")
        self.fail(f"{limit} connections were all greeted: max_connections = 100 is not enforced")

    def test_stress_mode_near_the_limit(self):
        """max_connections = 20, stress_timeout = 1s: with 17 idle SMTP clients (85%) the server
        enters stress mode and says so once in the log; a client that then connects and stays
        silent is dropped with 421 after about a second instead of smtp.timeout (60 s); when the
        crowd leaves, stress mode ends (logged) and a silent client is left alone again."""
        s = self.start_server("workers = 2\nmax_connections = 20\nmax_connections_per_ip = 100\n"
                              "stress_timeout = 1s\nsmtp.timeout = 60s\nsmtp.reserved_connections = 0\n")
        crowd = [self.peer(s.port, source(i)) for i in range(17)]
        for p in crowd:
            self.assertTrue(p.line().startswith(b"220"))
        late = self.peer(s.port, NORMAL)
        self.assertTrue(late.line().startswith(b"220"))
        lines, closed = late.until_closed(5)
        self.assertTrue(closed and any(l.startswith(b"421") for l in lines),
                        f"in stress mode a silent client is dropped after stress_timeout: {lines}, closed={closed}; "
                        f"server log:\n{s.read_log()}")
        for p in crowd:
            p.close()
        deadline = time.time() + 10
        while "event=stress state=off" not in s.read_log() and time.time() < deadline:
            time.sleep(0.1)
        log = s.read_log()
        self.assertEqual(log.count("event=stress state=on"), 1, "stress mode is logged once")
        self.assertIn("event=stress state=off", log)
        calm = self.peer(s.port, NORMAL)
        self.assertTrue(calm.line().startswith(b"220"))
        time.sleep(2)
        self.assertTrue(calm.silent_and_open(), "out of stress mode, a client has smtp.timeout again")

    def test_reserved_shares(self):
        """max_connections = 100 with imap.reserved_connections = 20 and
        smtp.reserved_connections = 10%: SMTP filled until it answers `421` holds at most 80 (the
        rest is IMAP's), and 20 IMAP clients are then still greeted with `* OK`. The other way
        round (a fresh server): IMAP filled until `* BYE` holds at most 90, and 10 SMTP clients
        still get their `220`."""
        config = ("workers = 4\nmax_connections = 100\nmax_connections_per_ip = 100\n"
                  "imap.reserved_connections = 20\nsmtp.reserved_connections = 10%\n")
        sources = [f"127.0.0.{30 + k}" for k in range(10)]

        with self.subTest("SMTP full, IMAP's reserve"):
            s = self.start_server(config, imap=True)
            held, refusal = self.fill(s.port, b"220", b"421", sources)
            got = []
            for k in range(20):
                line = self.peer(s.imap_port, sources[k % len(sources)]).line(5)
                got.append(line)
            refused = [(k + 1, line) for k, line in enumerate(got) if not (line or b"").startswith(b"* OK")]
            self.assertEqual(len(refused), 0,
                             f"with SMTP full ({len(held)} held, then {refusal!r}), {len(refused)} of the 20 IMAP "
                             f"clients (imap.reserved_connections = 20) were not greeted; the first (number, "
                             f"greeting): {refused[:1]}")
            self.assertTrue(70 <= len(held) <= 80, f"SMTP held {len(held)} before its 421; max_connections = 100 "
                                                   f"less IMAP's 20 is 80")
            s.cleanup()

        with self.subTest("IMAP full, SMTP's reserve"):
            s = self.start_server(config, imap=True)
            held, refusal = self.fill(s.imap_port, b"* OK", b"* BYE", sources)
            got = []
            for k in range(10):
                got.append(self.peer(s.port, sources[k % len(sources)]).reply(5))
            refused = [(k + 1, r) for k, r in enumerate(got) if r[0] != 220]
            self.assertEqual(len(refused), 0,
                             f"with IMAP full ({len(held)} held, then {refusal!r}), {len(refused)} of the 10 SMTP "
                             f"clients (smtp.reserved_connections = 10%) were not greeted; the first (number, "
                             f"reply): {refused[:1]}")
            self.assertTrue(80 <= len(held) <= 90, f"IMAP held {len(held)} before its BYE; max_connections = 100 "
                                                   f"less SMTP's 10 is 90")


class Crash(CrowdCase):

    def test_kill_9_loses_no_acknowledged_message(self):
        """Under load (100 IMAP sessions of alice in IDLE, 20 SMTP clients dripping a line, 10
        smtplib clients sending to alice one message after another) the server is killed with
        SIGKILL after 5 s and started again on the same config and data dir. Once its queue is
        empty, every message whose final `250` a client got is in alice's Maildir (duplicates
        are allowed: a message can be stored and the kill come before its 250 is sent)."""
        s = self.start_server("workers = 4\nmax_connections = 500\nmax_connections_per_ip = 50\n", imap=True)
        clients = self.imap_sessions(s.imap_port, 100, lambda i: ALICE, lambda i: f"127.0.0.{40 + i // 10}")
        herd = self.idle(clients)
        drippers = []
        for k in range(20):
            p = self.peer(s.port, "127.0.0.60")
            self.assertEqual(p.reply()[0], 220)
            drippers.append((p, b"EHLO " + b"z" * 100))
        drip = Dripper(drippers)
        drip.start()
        self.addCleanup(drip.stop)

        stop = threading.Event()
        acked = [[] for _ in range(10)]
        failures = [[] for _ in range(10)]

        def sender(k):
            smtp, n = None, 0
            while not stop.is_set():
                try:
                    if smtp is None:
                        smtp = smtp_client(s.port, src=f"127.0.0.{70 + k}", timeout=10)
                    mid = f"<crash-{k}-{n}@remote.test>"
                    n += 1
                    smtp.sendmail("carol@remote.test", [ALICE[0]], message(mid, ALICE[0]))
                    acked[k].append(mid)  # sendmail returns only once it has the final 250
                except (smtplib.SMTPException, OSError) as e:
                    failures[k].append(repr(e))
                    if smtp is not None:
                        smtp.close()
                    smtp = None
                    stop.wait(0.05)
            if smtp is not None:
                smtp.close()

        senders = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(10)]
        for t in senders:
            t.start()
        time.sleep(5)
        before_kill = sum(len(a) for a in acked)
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait(10)
        stop.set()
        for t in senders:
            t.join(15)
        drip.stop()
        herd.close()
        total = sum(len(a) for a in acked)
        self.assertGreater(before_kill, 20, f"only {before_kill} messages were acknowledged in 5 s of load; "
                                            f"sender errors: {[f[:2] for f in failures]}")

        s.start()  # the same config and data dir
        envs = os.path.join(s.tmp, "data", "queue", "env")
        deadline = time.monotonic() + 20
        while os.path.isdir(envs) and os.listdir(envs) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = os.listdir(envs) if os.path.isdir(envs) else []
        self.assertEqual(left, [], "the queue did not empty within 20 s of the restart")
        stored = message_ids(s.maildir("alice"))
        have = set(stored)
        missing = [mid for a in acked for mid in a if mid not in have]
        print(f"\n{total} messages acknowledged before the SIGKILL, {len(stored)} stored, "
              f"{len(stored) - len(have)} duplicates")
        self.assertEqual(missing, [], f"{len(missing)} of {total} acknowledged messages are not in alice's Maildir "
                                      f"after a SIGKILL and restart")


if __name__ == "__main__":
    unittest.main()
