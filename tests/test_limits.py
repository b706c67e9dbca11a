"""Memory bounds against hostile or careless clients: with a 30 MiB message in the mailbox, one
command must not raise the server's peak RSS (VmHWM in /proc/<pid>/status) by 16 MiB or more,
however it repeats items or ranges, or stops reading, and the data it returns must be exact. Run
against the real server with imaplib, as a Raspberry Pi user's client would.

The other hostile cases have their tests beside the code they break: a stalled helper
(test_privsep.PrivilegedHelper.test_a_slow_delivery_does_not_hold_up_logins) and a stalled mail
process (test_mailproc.SystemUsers.test_a_stalled_mail_process_is_replaced); inetd sessions racing
the server's queue (test_unix.InetdBesideTheServer); brute force across reloads and inetd processes
(test_auth_limit)."""

import base64
import imaplib
import os
import re
import time
import unittest

from harness import Server, free_port
from imap.client import ALICE, HOST

MIB = 1024 * 1024
BUDGET = 16 * MIB  # the most one command may add to the server's peak RSS


def big_message(size=30 * MIB):
    """A message of exactly `size` octets with CRLF line ends, every line different (so a reply
    that is shifted, cut or repeated does not compare equal)."""
    head = (b"From: Pepe <pepe@remote.test>\r\nTo: alice@example.test\r\nSubject: big one\r\n"
            b"Message-ID: <big@remote.test>\r\n\r\n")
    lines = []
    n = len(head)
    i = 0
    while n < size:
        line = b"%08d " % i + b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" + b"\r\n"
        lines.append(line)
        n += len(line)
        i += 1
    body = b"".join(lines)
    return (head + body)[:size - 2] + b"\r\n"


def peak_rss(pid):
    """VmHWM (peak resident set) of the process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


class LimitsCase(unittest.TestCase):
    """A fresh server per test (VmHWM only grows), IMAP on a free port, 64 MiB messages allowed."""

    mailbox = "maildir:{tmp}/mail/%d/%n/Maildir"
    extra = ""

    def setUp(self):
        s = Server(extra="message_size_limit = 64M\n", mailbox=self.mailbox)
        self.server = s
        self.addCleanup(s.cleanup)
        self.port = free_port()
        with open(s.config, "a") as f:
            f.write(f"imap.listen = {HOST}:{self.port}\nauth.cleartext_networks = 127.0.0.0/8\n"
                    + self.extra.format(tmp=s.tmp))
        s.start()
        self.maildir = s.maildir("alice")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)

    def put(self, name, data):
        """Delivers a message file into Maildir/cur (LF line ends, as buzon stores mail)."""
        with open(os.path.join(self.maildir, "cur", name + ":2,"), "wb") as f:
            f.write(data.replace(b"\r\n", b"\n"))

    def login(self):
        c = imaplib.IMAP4(HOST, self.port, timeout=120)
        self.addCleanup(self.logout, c)
        c.login(*ALICE)
        return c

    @staticmethod
    def logout(c):
        try:
            c.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):
            pass

    def rss(self):
        return peak_rss(self.server.proc.pid)

    def assert_bounded(self, before, what):
        after = self.rss()
        print(f"\n{what}: peak RSS {before / MIB:.1f} MiB -> {after / MIB:.1f} MiB "
              f"(+{(after - before) / MIB:.1f} MiB)")
        self.assertLess(after - before, BUDGET, f"{what} raised peak RSS by {(after - before) / MIB:.1f} MiB")


class FetchMemory(LimitsCase):

    def test_repeated_body_items_are_streamed_once(self):
        data = big_message()
        self.put("1700000000.M1P1.host", data)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        items = " ".join(["BODY.PEEK[]"] * 200)
        typ, resp = c.fetch("1", f"(UID {items})")
        self.assert_bounded(before, "FETCH 1 (UID BODY.PEEK[] x200) of 30 MiB")
        self.assertEqual(typ, "OK")
        literals = [r for r in resp if isinstance(r, tuple)]
        self.assertEqual(len(literals), 1, "the repeated item is answered once")
        self.assertRegex(literals[0][0], rb"^1 \(UID 1 BODY\[\] \{31457280\}$")
        self.assertTrue(literals[0][1] == data, "BODY[] differs from the message")
        # Not \Seen: every item was a PEEK.
        self.assertNotIn(b"Seen", b"".join(r for r in resp if isinstance(r, bytes)))

    def test_partial_and_text_of_a_big_message(self):
        data = big_message()
        self.put("1700000000.M1P1.host", data)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        typ, resp = c.fetch("1", "(BODY.PEEK[TEXT] BODY.PEEK[]<20000000.5000000> BODY.PEEK[HEADER])")
        self.assert_bounded(before, "FETCH 1 (BODY.PEEK[TEXT] BODY.PEEK[]<o.n> BODY.PEEK[HEADER])")
        self.assertEqual(typ, "OK")
        got = {re.search(rb"(BODY\[[^\]]*\](<\d+>)?) \{\d+\}$", r[0]).group(1): r[1]
               for r in resp if isinstance(r, tuple)}
        header_end = data.index(b"\r\n\r\n") + 4
        self.assertTrue(got[b"BODY[TEXT]"] == data[header_end:])
        self.assertTrue(got[b"BODY[]<20000000>"] == data[20000000:25000000])
        self.assertEqual(got[b"BODY[HEADER]"], data[:header_end])

    def test_thousands_of_overlapping_ranges(self):
        self.put("1700000000.M1P1.host", big_message())
        for i in range(2, 2001):
            self.put(f"1700000000.M{i}P1.host", b"Subject: small %d\r\n\r\nhello\r\n" % i)
        c = self.login()
        typ, data = c.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"2000"]))
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        # As many as one command line holds (8 KiB); before the ranges were merged, each was
        # expanded into a list of every message it names (here 1900 x 2000 numbers).
        typ, resp = c.fetch(",".join(["1:*"] * 1900), "(UID RFC822.SIZE)")
        self.assert_bounded(before, "FETCH 1:*,1:*,...(x1900) (UID RFC822.SIZE)")
        self.assertEqual(typ, "OK")
        nums = [int(r.split()[0]) for r in resp]
        self.assertEqual(nums, list(range(1, 2001)), "each message once, in order")
        self.assertIn(b"RFC822.SIZE 31457280", resp[0])


def big_multipart(size=30 * MIB):
    """A multipart/mixed message of about `size` octets: a short text part and a base64 attachment
    of random bytes (NULs included). Returns (message, text part body, attachment body as stored,
    attachment decoded)."""
    import base64
    import random
    rnd = random.Random(7)
    raw = bytes(rnd.getrandbits(8) for _ in range(64 * 1024)) * ((size * 3 // 4) // (64 * 1024))
    raw += b"tail\x00end"
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    text = b"Hello,\r\nthe file is attached.\r\n"
    msg = (b"From: Pepe <pepe@remote.test>\r\nTo: alice@example.test\r\nSubject: big file\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
           b"This is MIME.\r\n--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
           b"\r\n--=_b\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
           b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=big.bin\r\n"
           b"\r\n" + b64 + b"\r\n--=_b--\r\n")
    return msg, text, b64, raw


class StructureMemory(LimitsCase):
    """BODYSTRUCTURE, a body part, BINARY and BINARY.SIZE of a 30 MiB multipart message: each
    within the budget, each exact (checked against Python's own decoding of what was built)."""

    def setUp(self):
        super().setUp()
        self.msg, self.text, self.b64, self.raw = big_multipart()
        self.put("1700000000.M1P1.host", self.msg)
        self.c = self.login()
        self.assertEqual(self.c.select("INBOX")[0], "OK")
        self.assertEqual(self.c.fetch("1", "(RFC822.SIZE)")[0], "OK")

    def fetch(self, items):
        before = self.rss()
        typ, resp = self.c.fetch("1", items)
        self.assert_bounded(before, f"FETCH 1 {items} of {len(self.msg) / MIB:.0f} MiB")
        self.assertEqual(typ, "OK")
        return resp

    def test_bodystructure(self):
        resp = self.fetch("(BODYSTRUCTURE)")
        lines = self.b64.count(b"\n")
        want = (b'1 (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" %d 2 NIL NIL NIL NIL)'
                b'("application" "octet-stream" ("name" "big.bin") NIL NIL "base64" %d NIL '
                b'("attachment" ("filename" "big.bin")) NIL NIL) "mixed" ("boundary" "=_b") NIL NIL NIL))'
                % (len(self.text), len(self.b64)))
        self.assertEqual(resp[0], want)
        self.assertGreater(lines, 0)

    def test_body_part(self):
        resp = self.fetch("(BODY.PEEK[2])")
        self.assertRegex(resp[0][0], rb"^1 \(BODY\[2\] \{%d\}$" % len(self.b64))
        self.assertTrue(resp[0][1] == self.b64, "BODY[2] differs from the part")

    def test_binary_part(self):
        resp = self.fetch("(BINARY.PEEK[2])")
        self.assertRegex(resp[0][0], rb"^1 \(BINARY\[2\] ~\{%d\}$" % len(self.raw))
        self.assertTrue(resp[0][1] == self.raw, "BINARY[2] differs from the decoded part")

    def test_binary_size(self):
        resp = self.fetch("(BINARY.SIZE[2])")
        self.assertEqual(resp[0], b"1 (BINARY.SIZE[2] %d)" % len(self.raw))

    def test_body_mime_and_text_part(self):
        resp = self.fetch("(BODY BODY.PEEK[2.MIME] BODY.PEEK[1])")
        self.assertEqual(resp[0][0], b'1 (BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" %d 2)'
                         b'("application" "octet-stream" ("name" "big.bin") NIL NIL "base64" %d) "mixed") '
                         b'BODY[2.MIME] {%d}' % (len(self.text), len(self.b64), len(self.mime2())))
        self.assertEqual(resp[0][1], self.mime2())
        self.assertEqual(resp[1], (b" BODY[1] {%d}" % len(self.text), self.text))

    def mime2(self):
        start = self.msg.index(b"Content-Type: application/octet-stream")
        return self.msg[start:self.msg.index(b"\r\n\r\n", start) + 4]


class QuotedPrintableMemory(LimitsCase):

    def test_binary_of_a_big_quoted_printable_part(self):
        """A 30 MiB quoted-printable part (soft breaks, =XX, NULs, tabs): BINARY[2] and
        BINARY.SIZE[2] are within the budget and equal to Python's decoding."""
        import binascii
        import random
        rnd = random.Random(3)
        words = [b"caf\xc3\xa9", b"na\xc3\xafve", b"tab\there", b"x=y", b"plain", b"\x00nul", b"end  "]
        block = b"\r\n".join(b" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 40)))
                              for _ in range(2000)) + b"\r\n"
        raw = b"".join(b"%06d " % i + block for i in range(90))
        qp = binascii.b2a_qp(raw).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.assertEqual(binascii.a2b_qp(qp), raw)
        msg = (b"From: a@remote.test\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nhi\r\n--q\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
               b"\r\n" + qp + b"\r\n--q--\r\n")
        self.put("1700000000.M1P1.host", msg)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        typ, resp = c.fetch("1", "(BINARY.SIZE[2] BINARY.PEEK[2])")
        self.assert_bounded(before, f"FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2]) of {len(msg) / MIB:.0f} MiB QP")
        self.assertEqual(typ, "OK")
        self.assertEqual(resp[0][0], b"1 (BINARY.SIZE[2] %d BINARY[2] ~{%d}" % (len(raw), len(raw)))
        self.assertTrue(resp[0][1] == raw, "BINARY[2] differs from the decoded part")


class HeaderMemory(LimitsCase):

    def test_header_of_a_message_without_a_blank_line(self):
        """30 MiB of header fields and no body: BODY[HEADER] is all of it, streamed; TEXT is
        empty; ENVELOPE comes from its first fields."""
        lines = [b"From: Pepe <pepe@remote.test>\r\nSubject: all header\r\n"]
        n, i = len(lines[0]), 0
        while n < 30 * MIB:
            line = b"X-Line-%08d: abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i
            lines.append(line)
            n += len(line)
            i += 1
        data = b"".join(lines)
        self.put("1700000000.M1P1.host", data)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        typ, resp = c.fetch("1", "(BODY.PEEK[HEADER] BODY.PEEK[TEXT] ENVELOPE)")
        self.assert_bounded(before, "FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] ENVELOPE) of 30 MiB")
        self.assertEqual(typ, "OK")
        self.assertRegex(resp[0][0], rb"^1 \(BODY\[HEADER\] \{%d\}$" % len(data))
        self.assertTrue(resp[0][1] == data, "BODY[HEADER] differs from the message")
        self.assertEqual(resp[1], (b" BODY[TEXT] {0}", b""))
        self.assertIn(b'"all header"', resp[2])


class SlowReader(LimitsCase):
    """A client that asks for a big message and then does not read: the server waits on its
    socket with the reply in pieces, never the whole reply in memory, and the reply is exact when
    the client reads at last."""

    def test_a_client_that_stops_reading(self):
        data = big_message()
        self.put("1700000000.M1P1.host", data)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        tag = c._new_tag()
        c.send(tag + b" FETCH 1:* (BODY.PEEK[] RFC822 BODY.PEEK[TEXT])\r\n")
        time.sleep(3)  # nothing read: the server's writes block with the socket buffers full
        self.assert_bounded(before, "FETCH of 90 MiB to a client that does not read")
        got = b""
        while not got.endswith(tag + b" OK FETCH completed\r\n") and len(got) < 100 * MIB:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        self.assertEqual(got.count(data), 2, "BODY[] and RFC822 each carry the message exactly")
        self.assertTrue(got.endswith(b" OK FETCH completed\r\n"), got[-200:])


class AppendMemory(LimitsCase):

    def test_append_of_30_mib_is_streamed_to_disk(self):
        data = big_message()
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        before = self.rss()
        typ, resp = c.append("INBOX", r"(\Seen)", None, data)
        self.assert_bounded(before, "APPEND of 30 MiB")
        self.assertEqual(typ, "OK", resp)
        self.assertRegex(resp[0], rb"\[APPENDUID \d+ 1\]")
        self.assertEqual(c.noop()[0], "OK")
        typ, resp = c.fetch("1", "(FLAGS BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertIn(b"\\Seen", resp[0][0])
        self.assertTrue(resp[0][1] == data, "the appended message differs")
        files = os.listdir(os.path.join(self.maildir, "cur"))
        self.assertEqual(len(files), 1)
        self.assertEqual(os.listdir(os.path.join(self.maildir, "tmp")), [])

    def test_refused_append_wants_no_literal_or_drops_it(self):
        c = self.login()
        tmp = os.path.join(self.maildir, "tmp")
        # Synchronizing: answered before the client sends the message (RFC 3501 7.5).
        tag = c._new_tag()
        c.send(tag + b" APPEND NoSuch {31457280}\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(tag + b" NO [TRYCREATE]"), line)
        tag = c._new_tag()
        c.send(tag + b" APPEND INBOX {70000000}\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(tag + b" NO [TOOBIG]"), line)
        # LITERAL+ (RFC 7888): the message comes anyway and is dropped, then the session goes on.
        tag = c._new_tag()
        c.send(tag + b" APPEND NoSuch {200000+}\r\n" + b"x" * 200000 + b"\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(tag + b" NO [TRYCREATE]"), line)
        self.assertEqual(c.noop()[0], "OK")
        self.assertEqual(os.listdir(tmp), [])
        # A LITERAL+ APPEND that is taken is streamed like the synchronizing one.
        data = big_message(3 * MIB)
        tag = c._new_tag()
        c.send(tag + b" APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(tag + b" OK [APPENDUID "), line)
        self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
        typ, resp = c.fetch("1", "(BODY.PEEK[])")
        self.assertTrue(resp[0][1] == data)
        self.assertEqual(os.listdir(tmp), [])


class SearchMemory(LimitsCase):
    """SEARCH BODY/TEXT of a 30 MiB multipart: its text parts are decoded (quoted-printable,
    base64) and matched as they are read, never held whole."""

    def setUp(self):
        super().setUp()
        line = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\r\n"
        # Part 1: quoted-printable, a word cut by a soft line break in its middle.
        qp = line * (200 * 1024) + b"una beren=\r\njena caf=C3=A9\r\n" + line * 1000
        # Part 2: base64, a word near the end that the encoded octets do not show.
        text = line * (180 * 1024) + b"la zanahoria final\r\n" + line * 10
        b64 = base64.encodebytes(text).replace(b"\n", b"\r\n")
        data = (b"From: Pepe <pepe@remote.test>\r\nTo: alice@example.test\r\nSubject: big search\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp +
                b"\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"\r\n--b--\r\n")
        self.assertGreater(len(data), 29 * MIB)
        self.put("1700000000.M1P1.host", data)
        self.c = self.login()
        self.assertEqual(self.c.select("INBOX")[0], "OK")
        self.assertEqual(self.c.fetch("1", "(RFC822.SIZE)")[0], "OK")

    def search(self, *criteria):
        before = self.rss()
        typ, resp = self.c.search(None, *criteria)
        self.assert_bounded(before, "SEARCH " + " ".join(criteria) + " of 30 MiB")
        self.assertEqual(typ, "OK")
        return resp[0].split()

    def test_body_word_near_the_end(self):
        self.assertEqual(self.search("BODY", "ZANAHORIA"), [b"1"])

    def test_text_word_across_a_soft_break(self):
        self.assertEqual(self.search("TEXT", "berenjena"), [b"1"])

    def test_no_match(self):
        self.assertEqual(self.search("OR", "BODY", "nowhere-xyzzy", "TEXT", "zanahorias"), [])


class HugeHeaderField(LimitsCase):
    """One header field of 20 MiB: SEARCH HEADER holds at most 4 MiB of it."""

    def test_search_in_a_20_mib_header_field(self):
        field = b"X-Big: " + b" ".join(b"w%07d" % i for i in range(2_500_000)) + b"\r\n"
        data = b"Subject: huge field\r\n" + field + b"\r\n" + big_message(10 * MIB)
        self.put("1700000000.M1P1.host", data)
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        typ, found = c.search(None, "HEADER", "X-Big", "w0000123")
        self.assert_bounded(before, "SEARCH HEADER in a 20 MiB field")
        self.assertEqual((typ, found), ("OK", [b"1"]))
        typ, found = c.search(None, "HEADER", "Subject", "huge")
        self.assertEqual((typ, found), ("OK", [b"1"]))


class MboxFetch(LimitsCase):
    """An mbox INBOX: a 30 MiB message is streamed from the mbox file for FETCH and SEARCH."""

    mailbox = "mbox:{tmp}/spool/%n"
    extra = "imap.folders = {tmp}/folders/%d/%n\n"

    def test_fetch_and_search_of_a_big_message_in_an_mbox(self):
        spool = os.path.join(self.server.tmp, "spool")
        os.makedirs(spool, exist_ok=True)
        data = big_message()
        with open(os.path.join(spool, "alice"), "wb") as f:
            f.write(b"From pepe@remote.test Thu Jan  1 00:00:00 2026\n" + data.replace(b"\r\n", b"\n") + b"\n")
        c = self.login()
        self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        before = self.rss()
        typ, resp = c.fetch("1", "(BODY.PEEK[] BODYSTRUCTURE)")
        self.assert_bounded(before, "FETCH 1 (BODY.PEEK[] BODYSTRUCTURE) of 30 MiB in an mbox")
        self.assertEqual(typ, "OK")
        self.assertTrue(resp[0][1] == data, "BODY[] differs from the message")
        last_word = data[-70:-2].split()[-1].decode()
        typ, found = c.search(None, "BODY", last_word)
        self.assert_bounded(before, "SEARCH BODY in a 30 MiB mbox message")
        self.assertEqual((typ, found), ("OK", [b"1"]))


class MboxAppend(LimitsCase):
    """An mbox INBOX: a large APPEND is staged in the folders' tmp/ and then added to the mbox."""

    mailbox = "mbox:{tmp}/spool/%n"
    extra = "imap.folders = {tmp}/folders/%d/%n\n"

    def test_staged_append_reaches_the_mbox(self):
        os.makedirs(os.path.join(self.server.tmp, "spool"), exist_ok=True)
        data = big_message(MIB)
        c = self.login()
        typ, resp = c.append("INBOX", None, None, data)
        self.assertEqual(typ, "OK", resp)
        self.assertEqual(c.select("INBOX"), ("OK", [b"1"]))
        typ, resp = c.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
        self.assertIn(b"RFC822.SIZE %d" % len(data), resp[0][0])
        self.assertTrue(resp[0][1] == data)
        tmp = os.path.join(self.server.tmp, "folders", "example.test", "alice", "tmp")
        self.assertEqual(os.listdir(tmp), [])

    def test_append_of_30_mib_to_an_mbox_inbox(self):
        os.makedirs(os.path.join(self.server.tmp, "spool"), exist_ok=True)
        data = big_message()
        c = self.login()
        self.assertEqual(c.select("INBOX")[0], "OK")
        before = self.rss()
        typ, resp = c.append("INBOX", None, None, data)
        self.assert_bounded(before, "APPEND of 30 MiB to an mbox INBOX")
        self.assertEqual(typ, "OK", resp)
        self.assertEqual(c.noop()[0], "OK")
        typ, resp = c.fetch("1", "(BODY.PEEK[])")
        self.assertTrue(resp[0][1] == data, "the appended message differs")


if __name__ == "__main__":
    unittest.main()
