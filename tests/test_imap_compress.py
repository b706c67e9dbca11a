"""IMAP COMPRESS=DEFLATE (RFC 4978) against the real server, with a client built on Python's zlib
(raw deflate, wbits=-15, a sync flush after every command) over a real socket: plain, STARTTLS and
implicit TLS; LOGIN, COMPRESS, SELECT, APPEND and FETCH of a 1 MiB message, IDLE woken by an SMTP
delivery, LOGOUT; garbage and a decompression bomb after COMPRESS; offlineimap3 (imaplib2) with
usecompression, both ways; and, as root, a system user's session relayed to its mail process,
which is where the compression runs."""

import hashlib
import os
import random
import re
import shutil
import smtplib
import ssl
import time
import unittest
import zlib

import test_mailproc
from harness import requires
from imap.client import ALICE, HOST, RawImap, fetch_map, tls_context
from test_imap import ImapCase
from test_imap_clients import ClientCase, maildir_files


def words_message(size, seed=1):
    """A text message of about `size` octets that compresses as mail does (words, not one byte)."""
    rnd = random.Random(seed)
    vocab = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))))
             for _ in range(2000)]
    head = (b"From: Pepe <pepe@remote.test>\r\nTo: alice@example.test\r\nSubject: big one\r\n"
            b"Message-ID: <big-" + str(seed).encode() + b"@remote.test>\r\n\r\n")
    lines, n = [], len(head)
    while n < size:
        line = " ".join(rnd.choice(vocab) for _ in range(12)).encode() + b"\r\n"
        lines.append(line)
        n += len(line)
    return head + b"".join(lines)


class ZImap(RawImap):
    """RawImap that turns on COMPRESS=DEFLATE: commands compressed and sync-flushed, responses
    inflated as they arrive; counts the octets on the wire each way."""

    def __init__(self, port, tls=False, timeout=10):
        self.deflate = None
        self.inflate = None
        self.wire_in = self.wire_out = 0
        super().__init__(port, tls=tls, timeout=timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def send_raw(self, data):
        self.wire_out += len(data)
        self.sock.sendall(data)

    def _fill(self):
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; buffered {self.buf[:300]!r}")
            self.wire_in += len(chunk)
            if self.inflate:
                chunk = self.inflate.decompress(chunk)
            if chunk:
                self.buf += chunk
                return

    def starttls(self):
        self.ok("STARTTLS")
        self.sock = tls_context().wrap_socket(self.sock)

    def compress(self):
        """COMPRESS DEFLATE; returns the tagged response (read uncompressed)."""
        _, tagged = self.cmd("COMPRESS DEFLATE")
        if re.match(rb"t\d+ OK\b", tagged):
            self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.inflate = zlib.decompressobj(-15)
            # RFC 4978 3: the server compresses from the octet after the OK's CRLF.
            self.buf = self.inflate.decompress(self.buf)
        return tagged


def server_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Compress(ImapCase):
    def client(self, how):
        """A logged-in ZImap over `how`: plain, starttls or imaps."""
        c = ZImap(self.imaps_port if how == "imaps" else self.imap_port, tls=how == "imaps", timeout=20)
        self.addCleanup(c.close)
        if how == "starttls":
            c.starttls()
        return c

    def session(self, how):
        big = words_message(1 << 20, seed=len(how))
        c = self.client(how)
        # RFC 4978 3: not before login, and not advertised there.
        untagged, _ = c.ok("CAPABILITY")
        self.assertNotIn(b"COMPRESS", untagged[0])
        _, tagged = c.cmd("COMPRESS DEFLATE")
        self.assertRegex(tagged, rb"^t\d+ BAD ")
        _, tagged = c.login()
        self.assertIn(b" COMPRESS=DEFLATE", tagged)
        self.assertRegex(c.compress(), rb"^t\d+ OK ")
        self.assertIsNotNone(c.inflate)
        # Everything from here on is compressed both ways.
        untagged, tagged = c.cmd("COMPRESS DEFLATE")
        self.assertRegex(tagged, rb"^t\d+ NO \[COMPRESSIONACTIVE\] ")
        untagged, _ = c.ok("SELECT INBOX")
        self.assertIn(b"* 0 EXISTS", untagged)
        # APPEND of 1 MiB with a synchronizing literal, its octets compressed.
        tag = c.tag()
        c.send(f"{tag} APPEND INBOX {{{len(big)}}}\r\n")
        self.assertTrue(c.response().startswith(b"+"))
        c.send(big + b"\r\n")
        _, tagged = c.until(tag)
        self.assertRegex(tagged, rb"^t\d+ OK ")
        c.ok("NOOP")
        before = c.wire_in
        untagged, _ = c.ok("FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
        got = fetch_map(untagged)[1]
        self.assertEqual(got["BODY[]"], big, "the 1 MiB message comes back whole")
        self.assertLess(c.wire_in - before, len(big) * 2 // 3, "the FETCH was compressed")
        # IDLE, woken by a delivery over SMTP while compressed.
        tag = c.tag()
        c.send(f"{tag} IDLE\r\n")
        self.assertTrue(c.response().startswith(b"+"))
        with smtplib.SMTP(HOST, self.server.port, timeout=20) as s:
            s.sendmail("pepe@remote.test", [ALICE[0]], b"Subject: during idle\r\n\r\nhello\r\n")
        c.sock.settimeout(10)
        seen = []
        while b"* 2 EXISTS" not in seen:
            seen.append(c.response())
        c.send("DONE\r\n")
        _, tagged = c.until(tag)
        self.assertRegex(tagged, rb"^t\d+ OK ")
        untagged, _ = c.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"during idle", untagged[0])
        untagged, _ = c.ok("LOGOUT")
        self.assertTrue(untagged[0].startswith(b"* BYE"))
        self.assertIn("event=imap_compress", self.server.read_log())

    def test_plain(self):
        self.session("plain")

    def test_starttls(self):
        self.session("starttls")

    def test_implicit_tls(self):
        self.session("imaps")

    def test_garbage_after_compress_closes_with_a_log_line_and_the_server_goes_on(self):
        c = self.client("plain")
        c.login()
        self.assertRegex(c.compress(), rb"^t\d+ OK ")
        c.ok("NOOP")
        c.send_raw(b"\xfe\xff" * 64)
        with self.assertRaises((EOFError, ConnectionResetError)):
            c.response()
        deadline = time.time() + 5
        while "compressed input" not in self.server.read_log() and time.time() < deadline:
            time.sleep(0.05)
        self.assertRegex(self.server.read_log(), r"event=disconnect .*error=\"compressed input: ")
        # The server goes on: a new session compresses and works.
        d = self.client("plain")
        d.login()
        self.assertRegex(d.compress(), rb"^t\d+ OK ")
        d.ok("SELECT INBOX")
        d.ok("LOGOUT")

    def test_a_decompression_bomb_meets_the_line_limit_and_memory_stays_flat(self):
        c = self.client("plain")
        c.login()
        self.assertRegex(c.compress(), rb"^t\d+ OK ")
        c.ok("NOOP")
        pid = self.server.proc.pid
        rss0 = server_rss_kib(pid)
        # 256 MiB of one line (no line end), about 250 KiB on the wire, then the line's end.
        z = c.deflate
        chunk = b"A" * (1 << 20)
        sent = 0
        c.sock.sendall(z.compress(b"t50 NOOP "))
        for _ in range(256):
            data = z.compress(chunk) + z.flush(zlib.Z_SYNC_FLUSH)
            sent += len(data)
            c.sock.sendall(data)
        self.assertLess(sent, 1 << 20)
        c.send("\r\nt51 NOOP\r\n")
        _, tagged = c.until("t50")
        self.assertRegex(tagged, rb"^t50 BAD .*too long")
        _, tagged = c.until("t51")
        self.assertRegex(tagged, rb"^t51 OK ")
        grown = server_rss_kib(pid) - rss0
        self.assertLess(grown, 8 * 1024, f"the server grew by {grown} KiB for a 256 MiB line")
        # A literal counts as uncompressed octets too: one over the limit is refused.
        _, tagged = c.cmd("LOGIN {100000}")
        self.assertRegex(tagged, rb"^t\d+ (BAD|NO) ")
        c.ok("NOOP")


@requires(shutil.which("offlineimap"), "offlineimap3")
class OfflineImapCompressed(ClientCase):
    """offlineimap3 (imaplib2) with usecompression = yes: COMPRESS DEFLATE right after login, then
    a sync down and up (APPEND), over implicit TLS and plain. The messages are small: imaplib2
    inflates at most 32 KiB per socket read and leaves the rest until the socket is readable
    again, so a compressed answer whose last read inflates to more than that waits forever in the
    client whatever the server does."""

    def test_sync_both_ways_compressed(self):
        small = [words_message(4000 + 500 * i, seed=20 + i) for i in range(3)]
        for m in small:
            self.deliver(m)
        with open(self.cert(), "rb") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read().decode())
        fingerprint = hashlib.sha512(der).hexdigest()
        for name, port, tls in (("tls", self.imaps_port, "yes"), ("plain", self.imap_port, "no")):
            with self.subTest(name):
                local = os.path.join(self.server.tmp, f"oi-{name}")
                rc = os.path.join(self.server.tmp, f"offlineimaprc-{name}")
                with open(rc, "w") as f:
                    f.write(f"[general]\naccounts = buzon\nmetadata = {self.server.tmp}/oi-meta-{name}\n"
                            "ui = basic\n\n[Account buzon]\nlocalrepository = local\nremoterepository = remote\n\n"
                            f"[Repository local]\ntype = Maildir\nlocalfolders = {local}\nsep = /\n\n"
                            f"[Repository remote]\ntype = IMAP\nremotehost = {HOST}\nremoteport = {port}\n"
                            f"ssl = {tls}\nstarttls = no\ncert_fingerprint = {fingerprint}\n"
                            f"remoteuser = {ALICE[0]}\nremotepass = {ALICE[1]}\nusecompression = yes\n"
                            "folderfilter = lambda f: f == 'INBOX'\n")
                before = self.server.read_log().count("event=imap_compress")
                self.run_tool(["offlineimap", "-c", rc, "-o", "-u", "basic"], timeout=60)
                self.assertGreater(self.server.read_log().count("event=imap_compress"), before,
                                   "offlineimap turned COMPRESS on")
                inbox = maildir_files(os.path.join(local, "INBOX"))
                got = sorted(b.replace(b"\r\n", b"\n") for b in inbox.values())
                for m in small:
                    body = m.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
                    self.assertTrue(any(g.endswith(body) for g in got), "each message came down whole")
                # Up: a message written locally is APPENDed through the compressed stream.
                with open(os.path.join(local, "INBOX", "new", f"1700000009.{name}.local"), "wb") as f:
                    f.write(f"Subject: up {name}\n\nwritten locally\n".encode())
                self.run_tool(["offlineimap", "-c", rc, "-o", "-u", "basic"], timeout=60)
                subjects = [re.search(rb"Subject: ([^\r\n]*)", b).group(1) for _, b in self.server_view()["INBOX"]]
                self.assertIn(f"up {name}".encode(), subjects)


@unittest.skipUnless(test_mailproc.ROOT, "needs root and useradd (CI runs as root)")
class CompressRelayed(unittest.TestCase):
    """A system user's session runs in its mail process; the server relays the (TLS) connection.
    COMPRESS is answered there and the relay copies the compressed octets unchanged."""

    setUp = test_mailproc.SystemUsers.setUp
    user = test_mailproc.SystemUsers.user
    send = test_mailproc.SystemUsers.send
    mail_processes = test_mailproc.SystemUsers.mail_processes

    def test_compress_in_the_mail_process_through_the_relay(self):
        big = words_message(1 << 20, seed=7)
        for how in ("imaps", "starttls"):
            with self.subTest(how=how):
                c = ZImap(self.ports["imaps" if how == "imaps" else "imap"], tls=how == "imaps", timeout=20)
                self.addCleanup(c.close)
                if how == "starttls":
                    c.starttls()
                _, tagged = c.ok(f'LOGIN "{self.user("a")}" "pw-a"')
                self.assertIn(b" COMPRESS=DEFLATE", tagged)
                self.assertRegex(c.compress(), rb"^t\d+ OK ")
                _, tagged = c.cmd("COMPRESS DEFLATE")
                self.assertRegex(tagged, rb"^t\d+ NO \[COMPRESSIONACTIVE\] ")
                c.ok("SELECT INBOX")
                tag = c.tag()
                c.send(f"{tag} APPEND INBOX {{{len(big)}}}\r\n")
                self.assertTrue(c.response().startswith(b"+"))
                c.send(big + b"\r\n")
                untagged, tagged = c.until(tag)
                self.assertRegex(tagged, rb"^t\d+ OK ")
                untagged += c.ok("NOOP")[0]
                n = max(int(m.group(1)) for u in untagged for m in [re.match(rb"\* (\d+) EXISTS", u)] if m)
                before = c.wire_in
                untagged, _ = c.ok(f"FETCH {n} (BODY.PEEK[])")
                self.assertEqual(fetch_map(untagged)[n]["BODY[]"], big)
                self.assertLess(c.wire_in - before, len(big) * 2 // 3)
                tag = c.tag()
                c.send(f"{tag} IDLE\r\n")
                self.assertTrue(c.response().startswith(b"+"))
                self.send("a", "during idle")
                seen = []
                while not any(re.match(rb"\* %d EXISTS" % (n + 1), s) for s in seen):
                    seen.append(c.response())
                c.send("DONE\r\n")
                c.until(tag)
                untagged, _ = c.ok("LOGOUT")
                self.assertTrue(untagged[0].startswith(b"* BYE"))
        # The mail process answered COMPRESS (its session's log line), not the relaying server.
        log = self.server.read_log()
        self.assertRegex(log, r"event=mailproc_session service=imap")
        self.assertIn("event=imap_compress", log)


if __name__ == "__main__":
    unittest.main()
