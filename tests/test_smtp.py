"""SMTP in, Maildir out: the real binary driven by Python's smtplib, swaks and
raw sockets; stored files checked byte for byte and with Python's mailbox."""

import mailbox
import os
import re
import shutil
import smtplib
import subprocess
import time
import unittest

from harness import Raw, Server, ServerTest, missing

MSG = (b"From: Pepe <pepe@remote.test>\r\n"
       b"To: Alice <alice@example.test>\r\n"
       b"Subject: hello\r\n"
       b"Message-ID: <1@remote.test>\r\n"
       b"\r\n"
       b"First line.\r\n"
       b".a line that began with a dot\r\n"
       b"From the middle\r\n")

STORED_BODY = (b"From: Pepe <pepe@remote.test>\n"
               b"To: Alice <alice@example.test>\n"
               b"Subject: hello\n"
               b"Message-ID: <1@remote.test>\n"
               b"\n"
               b"First line.\n"
               b".a line that began with a dot\n"
               b"From the middle\n")


def split_trace(stored):
    """Returns (Return-Path line, Received header, rest) of a stored message."""
    rp, rest = stored.split(b"\n", 1)
    m = re.match(rb"(Received: [^\n]*\n(?:\t[^\n]*\n)*)", rest)
    assert m, stored[:300]
    return rp, m.group(1), rest[m.end():]


class Delivery(ServerTest):

    def test_banner_and_ehlo_carry_hostname_and_extensions(self):
        c = Raw("127.0.0.1", self.server.port)
        code, text = c.reply()
        self.assertEqual((code, text), (220, "220 mx.example.test ESMTP buzon"))
        code, text = c.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        self.assertTrue(text.startswith("250-mx.example.test"), text)
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"):
            self.assertIn(ext, text)
        self.assertEqual(c.cmd("QUIT")[0], 221)

    def test_smtplib_message_is_stored_byte_for_byte(self):
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.ehlo("client.test")
            refused = s.sendmail("pepe@remote.test", ["alice@example.test"], MSG)
            self.assertEqual(refused, {})
        [stored] = self.server.new_messages("alice")
        rp, received, rest = split_trace(stored)
        self.assertEqual(rp, b"Return-Path: <pepe@remote.test>")
        self.assertRegex(received.decode(), r"^Received: from client\.test \(\[127\.0\.0\.1\]\)\n"
                         r"\tby mx\.example\.test \(buzon\) with ESMTP id [0-9A-F]{16}\n"
                         r"\tfor <alice@example\.test>;\n\t\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n$")
        self.assertEqual(rest, STORED_BODY)
        # A real reader agrees.
        md = mailbox.Maildir(self.server.maildir("alice"), create=False)
        [m] = list(md)
        self.assertEqual(m["Subject"], "hello")
        self.assertEqual(m["Return-Path"], "<pepe@remote.test>")
        # Maildir rules: tmp is empty, the file is private.
        self.assertEqual(os.listdir(os.path.join(self.server.maildir("alice"), "tmp")), [])
        self.assertEqual(os.stat(self.server.maildir("alice")).st_mode & 0o777, 0o700)
        # The log tells who, what and where.
        log = self.server.read_log()
        self.assertRegex(log, r"id=[0-9A-F]{16} event=accepted from=<pepe@remote\.test> size=\d+ nrcpt=1")
        self.assertRegex(log, r"to=<alice@example\.test> relay=local mailbox=\S+/new/\S+ status=delivered")

    def test_null_sender_and_several_recipients(self):
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.sendmail("<>", ["alice@example.test", "BOB@Example.Test"], MSG)
        a = self.server.new_messages("alice")
        b = self.server.new_messages("bob")
        self.assertEqual(len(a), 1)
        self.assertEqual(a, b)
        self.assertTrue(a[0].startswith(b"Return-Path: <>\n"))
        self.assertNotIn(b"\tfor <", a[0], "no 'for' clause with several recipients")
        # One file, two names: delivered by hard link.
        d = os.path.join(self.server.maildir("alice"), "new")
        self.assertEqual(os.stat(os.path.join(d, os.listdir(d)[0])).st_nlink, 2)

    def test_swaks(self):
        if not shutil.which("swaks"):
            self.fail(missing("swaks"))
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.server.port}", "--helo", "swaks.test",
                            "--from", "pepe@remote.test", "--to", "alice@example.test",
                            "--header", "Subject: via swaks", "--body", "Hello from swaks"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]{16}")
        [m] = self.server.new_messages("alice")
        self.assertIn(b"Subject: via swaks\n", m)
        self.assertIn(b"Hello from swaks\n", m)
        self.assertIn(b"Received: from swaks.test ([127.0.0.1])", m)

    def test_swaks_pipelining_two_recipients_one_unknown(self):
        if not shutil.which("swaks"):
            self.fail(missing("swaks"))
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.server.port}", "--pipeline",
                            "--from", "pepe@remote.test", "--to", "alice@example.test,nobody@example.test"],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("550 5.1.1 <nobody@example.test>: Recipient address rejected", r.stdout)
        self.assertRegex(r.stdout, r"250 2\.0\.0 Ok: queued as")
        self.assertEqual(len(self.server.new_messages("alice")), 1)

    def test_recipient_checks(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<pepe@remote.test>")[1], "250 2.1.0 Ok")
        code, text = c.cmd("RCPT TO:<nobody@example.test>")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith("550 5.1.1 <nobody@example.test>"), text)
        code, text = c.cmd("RCPT TO:<someone@elsewhere.test>")
        self.assertEqual(text, "554 5.7.1 <someone@elsewhere.test>: Relay access denied")
        for trick in ("<alice%elsewhere.test@example.test>", "<@example.test:someone@elsewhere.test>",
                      '<"someone@elsewhere.test"@example.test>', "<elsewhere.test!someone@example.test>"):
            code, text = c.cmd(f"RCPT TO:{trick}")
            self.assertGreaterEqual(code, 500, f"{trick}: {text}")
        self.assertEqual(c.cmd("RCPT TO:<Postmaster>")[1], "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<postmaster@EXAMPLE.test>")[1], "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<Alice@Example.Test>")[1], "250 2.1.5 Ok")
        self.assertEqual(c.cmd("VRFY alice")[0], 252)
        self.assertEqual(c.cmd("VRFY nobody")[0], 252)
        c.cmd("DATA")
        c.send("Subject: to postmaster\r\n\r\nhi\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(len(self.server.new_messages("alice")), 1)
        # postmaster has no account: it still gets its mail, in the mailbox the template gives.
        self.assertEqual(len(self.server.new_messages("postmaster")), 1)

    def test_sequencing_and_syntax_errors(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        self.assertTrue(c.cmd("MAIL FROM:<a@b.test>")[1].startswith("503 5.5.1"))
        self.assertTrue(c.cmd("EHLO")[1].startswith("501 5.5.4"))
        c.cmd("EHLO client.test")
        self.assertTrue(c.cmd("RCPT TO:<alice@example.test>")[1].startswith("503 5.5.1"))
        self.assertTrue(c.cmd("DATA")[1].startswith("503 5.5.1"))
        self.assertTrue(c.cmd("FROB")[1].startswith("500 5.5.2"))
        self.assertTrue(c.cmd("MAIL FROM:<not an address>")[1].startswith("501 5."))
        self.assertTrue(c.cmd("MAIL FROM:<a@b.test> FOO=BAR")[1].startswith("555 5.5.4"))
        c.cmd("MAIL FROM:<a@b.test>")
        self.assertTrue(c.cmd("MAIL FROM:<a@b.test>")[1].startswith("503 5.5.1"))
        self.assertTrue(c.cmd("DATA")[1].startswith("503 5.5.1"), "DATA without valid recipients")
        self.assertEqual(c.cmd("RSET")[1], "250 2.0.0 Ok")
        self.assertEqual(c.cmd("NOOP")[1], "250 2.0.0 Ok")
        self.assertEqual(c.cmd("QUIT")[1], "221 2.0.0 Bye")
        self.assertTrue(c.closed())

    def test_long_lines_and_error_limit(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        code, text = c.cmd("NOOP " + "x" * 600)
        self.assertEqual(code, 500, text)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250, "the session goes on after a long line")
        c.send("HELO " + "y" * 100000 + "\r\n")
        self.assertEqual(c.reply()[0], 500)
        codes = []
        for _ in range(20):
            try:
                code, text = c.cmd("BOGUS")
            except (EOFError, ConnectionResetError, BrokenPipeError):
                break
            codes.append((code, text))
            if code == 421:
                break
        self.assertEqual(codes[-1], (421, "421 4.7.0 mx.example.test Error: too many errors"))
        self.assertTrue(c.closed())

    def test_size_limits(self):
        self.server.cleanup()
        from harness import Server
        self.server = Server(extra="message_size_limit = 2000")
        self.addCleanup(self.server.cleanup)
        self.server.start()
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        self.assertIn("SIZE 2000", c.cmd("EHLO client.test")[1])
        self.assertTrue(c.cmd("MAIL FROM:<a@b.test> SIZE=5000")[1].startswith("552 5.3.4"))
        c.cmd("MAIL FROM:<a@b.test> SIZE=1000")
        c.cmd("RCPT TO:<alice@example.test>")
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send("Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 100 + ".\r\n")
        code, text = c.reply()
        self.assertEqual(code, 552)
        self.assertTrue(text.startswith("552 5.3.4"), text)
        self.assertEqual(c.cmd("NOOP")[0], 250, "read to the final dot; the session goes on")
        self.assertEqual(self.server.new_messages("alice"), [])
        self.assertEqual(os.listdir(os.path.join(self.server.tmp, "data", "incoming")), [])

    def test_bare_lf_cannot_smuggle_a_second_message(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@b.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        c.cmd("DATA")
        c.send("Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<bob@example.test>\r\n"
               "DATA\r\nSubject: smuggled\r\n\r\nx\r\n\r.\r\nmore\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        [m] = self.server.new_messages("alice")
        self.assertEqual(self.server.new_messages("bob"), [])
        self.assertTrue(m.endswith(b"Subject: one\n\nbody\n.\nMAIL FROM:<evil@b.test>\nRCPT TO:<bob@example.test>\n"
                                   b"DATA\nSubject: smuggled\n\nx\n\r.\nmore\n"), m)

    def test_bdat_split_at_every_octet(self):
        # RFC 3030: a chunk may end anywhere, also between the CR and the LF of a line end; the
        # stored message must be the same for every split (no stray CR where a chunk ended).
        body = b"Subject: split\r\n\r\nline one\r\nline two\r\n"
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        c.cmd("EHLO client.test")
        for i in range(1, len(body)):
            c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n"
                   + b"BDAT %d\r\n" % i + body[:i] + b"BDAT %d LAST\r\n" % (len(body) - i) + body[i:])
            codes = [c.reply()[0] for _ in range(4)]
            self.assertEqual(codes, [250, 250, 250, 250], f"split at {i}")
        got = self.server.new_messages("alice")
        self.assertEqual(len(got), len(body) - 1)
        for i, m in enumerate(got):
            self.assertNotIn(b"\r", m, f"message {i}")
            self.assertTrue(m.endswith(b"Subject: split\n\nline one\nline two\n"), m)

    def test_pipelined_transactions_and_bdat(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        c.cmd("EHLO client.test")
        body1 = b"Subject: chunked\r\n\r\nline one\r\n"
        body2 = b".starts with a dot\r\nlast\r\n"
        c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
               + b"BDAT %d\r\n" % len(body1) + body1 + b"BDAT %d LAST\r\n" % len(body2) + body2
               + b"MAIL FROM:<c@d.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        replies = [c.reply() for _ in range(7)]
        self.assertEqual([r[0] for r in replies], [250, 250, 250, 250, 250, 250, 250], replies)
        self.assertEqual(replies[3][1], f"250 2.0.0 {len(body1)} octets received")
        self.assertRegex(replies[4][1], r"^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$")
        self.assertEqual(c.reply()[0], 354)
        c.send("Subject: second\r\n\r\n..plain DATA\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertTrue(c.cmd("")[1].startswith("500 5.5.2"), "an empty line is an error, not a problem")
        [a] = self.server.new_messages("alice")
        self.assertTrue(a.endswith(b"Subject: chunked\n\nline one\n.starts with a dot\nlast\n"), a)
        self.assertEqual(len(self.server.new_messages("bob")), 2)

    def test_smtputf8(self):
        c = Raw("127.0.0.1", self.server.port)
        c.reply()
        c.cmd("EHLO client.test")
        code, text = c.cmd("MAIL FROM:<josé@remote.test>")
        self.assertTrue(text.startswith("553 5.6.7"), "a UTF-8 address needs SMTPUTF8 (RFC 6531): " + text)
        c.close()
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("smtputf8"))
            self.assertEqual(s.mail("josé@remote.test", ["SMTPUTF8", "BODY=8BITMIME"])[0], 250)
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            code, _ = s.data("Subject: ñandú\r\n\r\nÜnïcödé\r\n".encode())
            self.assertEqual(code, 250)
        [m] = self.server.new_messages("alice")
        self.assertTrue(m.startswith("Return-Path: <josé@remote.test>\n".encode()))
        self.assertIn(b"with UTF8SMTP id", m)
        self.assertTrue(m.endswith("Subject: ñandú\n\nÜnïcödé\n".encode()))

    def test_sigterm_lets_a_transaction_finish_then_exits_zero(self):
        busy = Raw("127.0.0.1", self.server.port)
        busy.reply()
        busy.cmd("EHLO client.test")
        busy.cmd("MAIL FROM:<a@b.test>")
        busy.cmd("RCPT TO:<alice@example.test>")
        idle = Raw("127.0.0.1", self.server.port)
        idle.reply()
        idle.cmd("EHLO idle.test")
        self.server.proc.send_signal(15)
        code, text = idle.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.3.2", text)
        self.assertEqual(busy.cmd("DATA")[0], 354)
        busy.send("Subject: in flight\r\n\r\nfinished after SIGTERM\r\n.\r\n")
        self.assertEqual(busy.reply()[0], 250)
        code, text = busy.reply()  # once the transaction is over the session is told to go
        self.assertEqual(code, 421, text)
        self.assertEqual(self.server.proc.wait(10), 0)
        self.assertEqual(len(self.server.new_messages("alice")), 1)


class Busy(ServerTest):
    extra = "max_connections = 1"

    def test_full_pool_answers_421_at_once(self):
        # The harness's start-up probe may still hold the only slot for a moment.
        for _ in range(100):
            first = Raw("127.0.0.1", self.server.port)
            if first.reply()[0] == 220:
                break
            first.close()
            time.sleep(0.05)
        second = Raw("127.0.0.1", self.server.port, timeout=5)
        start = time.time()
        code, text = second.reply()
        self.assertEqual(code, 421)
        self.assertIn("4.3.2", text)
        self.assertLess(time.time() - start, 3)
        self.assertTrue(second.closed())
        first.cmd("QUIT")
        # The slot is free again.
        for _ in range(50):
            c = Raw("127.0.0.1", self.server.port)
            code, _ = c.reply()
            c.close()
            if code == 220:
                break
            time.sleep(0.05)
        self.assertEqual(code, 220)


class PerIp(ServerTest):
    extra = "max_connections_per_ip = 1"

    def test_second_connection_from_one_address_is_refused(self):
        for _ in range(100):
            first = Raw("127.0.0.1", self.server.port)
            if first.reply()[0] == 220:
                break
            first.close()
            time.sleep(0.05)
        second = Raw("127.0.0.1", self.server.port)
        code, text = second.reply()
        self.assertEqual((code, text[:9]), (421, "421 4.7.0"), text)
        self.assertEqual(first.cmd("HELP")[0], 214)
        self.assertEqual(first.cmd("EXPN staff")[0], 502)


class Ipv6(unittest.TestCase):

    def test_ipv6_and_ipv4_listeners_side_by_side(self):
        import socket
        from harness import Server, free_port
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        s = Server()
        port6 = s.port  # the same port number on ::1 as on 127.0.0.1
        with open(s.config) as f:
            conf = f.read().replace(f"smtp.listen = 127.0.0.1:{port6}", f"smtp.listen = 127.0.0.1:{port6} [::1]:{port6}")
        with open(s.config, "w") as f:
            f.write(conf)
        self.addCleanup(s.cleanup)
        s.start()
        for host in ("::1", "127.0.0.1"):
            with smtplib.SMTP(host, port6) as c:
                c.sendmail("a@b.test", ["alice@example.test"], f"Subject: via {host}\r\n\r\nx\r\n".encode())
        msgs = s.new_messages("alice")
        self.assertEqual(len(msgs), 2)
        self.assertTrue(any(b"([::1])" in m for m in msgs), msgs)


class PartialFailure(ServerTest):

    def test_one_failing_mailbox_is_queued_and_delivered_once_later(self):
        from harness import run_buzon
        # bob's Maildir cannot be created: a regular file sits where its parent should be.
        bobdir = os.path.dirname(self.server.maildir("bob"))
        os.makedirs(os.path.dirname(bobdir), exist_ok=True)
        with open(bobdir, "w") as f:
            f.write("in the way")
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.sendmail("pepe@remote.test", ["alice@example.test", "bob@example.test"], MSG)
        self.assertEqual(self.server.new_messages("alice"), [], "all or nothing now; the queue retries both")
        listing = run_buzon("queue", "list", "-c", self.server.config).stdout
        self.assertIn("alice@example.test", listing)
        self.assertIn("bob@example.test", listing)
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            with self.assertRaises(smtplib.SMTPDataError) as e:
                s.sendmail("pepe@remote.test", ["bob@example.test"], MSG)
            self.assertEqual(e.exception.smtp_code, 554, "a permanent failure of the only recipient")
            self.assertNotIn(b"/", e.exception.smtp_error, "no server paths in replies")
        self.assertIn("event=delivery_failed permanent=true", self.server.read_log())
        os.remove(bobdir)
        r = run_buzon("queue", "flush", "-c", self.server.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.time() + 10
        while time.time() < deadline and not (self.server.new_messages("alice") and self.server.new_messages("bob")):
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertEqual(len(self.server.new_messages("alice")), 1)
        self.assertEqual(len(self.server.new_messages("bob")), 1)
        [m] = self.server.new_messages("bob")
        self.assertEqual(m.count(b"Return-Path:"), 1)
        self.assertTrue(m.endswith(STORED_BODY))

if __name__ == "__main__":
    unittest.main()


class SpoolFull(unittest.TestCase):
    def session(self, extra):
        s = Server(extra=extra)
        self.addCleanup(s.cleanup)
        s.start()
        c = smtplib.SMTP("127.0.0.1", s.port, timeout=10)
        self.addCleanup(c.close)
        c.ehlo("client.test")
        return s, c

    def test_mail_from_is_deferred_below_spool_min_free(self):
        # RFC 3463 4.3.1: with less free space than spool.min_free, MAIL FROM is answered 452
        # 4.3.1 before anything is acknowledged, and nothing is stored.
        s, c = self.session("spool.min_free = 1000000G\n")
        code, text = c.mail("a@b.test")
        self.assertEqual((code, text), (452, b"4.3.1 Insufficient system storage"))
        self.assertEqual(c.noop()[0], 250, "the session goes on")
        self.assertEqual(s.new_messages("alice"), [])

    def test_a_declared_size_counts_against_the_free_space(self):
        _, c = self.session("spool.min_free = 1M\nmessage_size_limit = 1000000G\n")
        self.assertEqual(c.mail("a@b.test", ["SIZE=900000000000000"])[0], 452)
        self.assertEqual(c.mail("a@b.test", ["SIZE=1000"])[0], 250)
