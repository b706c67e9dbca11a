"""The inbound checks on the real binary, with a real DNS server (dnsmasq) for the DNS answers:
DNS blocklists at MAIL (554 5.7.1 with the zone's reason), greylisting at RCPT (450 4.7.1, then
accepted after the delay, never for logged-in clients), and what the checks leave in the message
(Authentication-Results). Clients are Python's smtplib, connecting from chosen loopback addresses
(checks.skip_networks is emptied, since loopback is skipped by default)."""

import imaplib
import os
import re
import shutil
import smtplib
import socket
import tempfile
import time
import unittest

from harness import Server, free_port, run_buzon
from test_relay import Dns, free_port_on, wait_for

MSG = (b"From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\nSubject: checks\r\n"
       b"Message-ID: <checks-%d@remote.test>\r\n\r\nhello\r\n")


def client(s, src):
    return smtplib.SMTP(s.host, s.port, source_address=(src, 0), timeout=20)


def delivered(s, user="alice", folder=""):
    """The messages in a user's Maildir folder ("" for INBOX, ".Junk" for Junk)."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(s.tmp, "mail", s.domain, user, "Maildir", folder, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
    return out


class Checks(unittest.TestCase):
    def server(self, extra, records=()):
        dns = Dns(list(records))
        self.addCleanup(dns.stop)
        s = Server(extra=f"dns.servers = 127.0.0.1:{dns.port}\nchecks.skip_networks =\n{extra}")
        self.addCleanup(s.cleanup)
        s.start()
        return s

    def test_dnsbl_refuses_a_listed_client_at_mail(self):
        """dnsbl = bl.test, where 127.0.0.2 is listed (A 127.0.0.2, TXT reason) and 127.0.0.3 is
        not: the first gets `554 5.7.1 ... blocked using bl.test; <reason>` at MAIL and the log
        says what the answer means; the second delivers."""
        s = self.server("dnsbl = bl.test\nspf = off\ndmarc = off\ndkim.verify = no\n", [
            "--address=/2.0.0.127.bl.test/127.0.0.2",
            "--txt-record=2.0.0.127.bl.test,listed for testing: see https://bl.test/127.0.0.2",
        ])
        with client(s, "127.0.0.2") as c:
            c.ehlo("listed.test")
            code, text = c.mail("carol@remote.test")
            self.assertEqual(code, 554, text)
            self.assertIn(b"5.7.1", text)
            self.assertIn(b"blocked using bl.test", text)
            self.assertIn(b"listed for testing", text)
        with client(s, "127.0.0.3") as c:
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 1)
        self.assertEqual(len(delivered(s)), 1)
        log = s.read_log()
        self.assertIn("reason=dnsbl client=127.0.0.2 zone=bl.test", log)
        self.assertIn('answer="127.0.0.2 listed"', log)

    def test_greylisting_defers_then_accepts(self):
        """greylist = on, greylist.delay = 2s: a new (client, sender, recipient) is answered
        `450 4.7.1` at RCPT; the same retried too soon is deferred again; after the delay it is
        accepted and delivered; a logged-in client is never greylisted."""
        sub = free_port()
        s = self.server("greylist = on\ngreylist.delay = 2s\nspf = off\ndmarc = off\ndkim.verify = no\n"
                        f"submission.listen = 127.0.0.1:{sub}\nauth.cleartext_networks = 127.0.0.0/8\n")
        with client(s, "127.0.0.4") as c:
            c.ehlo("sender.test")
            self.assertEqual(c.mail("carol@remote.test")[0], 250)
            code, text = c.rcpt("alice@example.test")
            self.assertEqual(code, 450, text)
            self.assertIn(b"4.7.1", text)
            self.assertIn(b"greylisted", text)
            c.rset()
            self.assertEqual(c.mail("carol@remote.test")[0], 250)
            self.assertEqual(c.rcpt("alice@example.test")[0], 450, "retried too soon")
        time.sleep(2.2)
        with client(s, "127.0.0.4") as c:
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 2)
        self.assertEqual(len(delivered(s)), 1)
        self.assertTrue(os.path.exists(os.path.join(s.tmp, "data", "greylist")), "triplets kept in data_dir")
        self.assertIn("event=greylisted client=127.0.0.4", s.read_log())
        with smtplib.SMTP("127.0.0.1", sub, source_address=("127.0.0.5", 0), timeout=20) as c:
            c.login("bob@example.test", "secret-bob")
            c.sendmail("bob@example.test", ["alice@example.test"], MSG % 3)
        self.assertEqual(len(delivered(s)), 2, "a logged-in client is not greylisted")

    def test_talking_before_the_greeting_is_refused(self):
        """smtp.greet_pause = 2s: a client that sends EHLO before the greeting gets
        `554 5.5.1 ... talking before the greeting` and is disconnected (logged as pregreet); a
        client that waits gets the 220 after the pause and delivers."""
        s = self.server("smtp.greet_pause = 2s\nspf = off\ndmarc = off\ndkim.verify = no\n")
        sock = socket.create_connection((s.host, s.port), source_address=("127.0.0.6", 0), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(b"EHLO eager.test\r\n")
        got = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertTrue(got.startswith(b"554 5.5.1"), got)
        self.assertIn(b"talking before the greeting", got)
        self.assertNotIn(b"220", got)
        t0 = time.monotonic()
        with client(s, "127.0.0.7") as c:
            self.assertGreaterEqual(time.monotonic() - t0, 1.5, "the greeting waited for the pause")
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 4)
        self.assertEqual(len(delivered(s)), 1)
        self.assertIn("reason=pregreet client=127.0.0.6", s.read_log())

    def test_spf_reject_and_tag(self):
        """spf = reject, with dnsmasq serving `v=spf1 -all` for forged.test and
        `v=spf1 ip4:127.0.0.0/8 -all` for good.test: MAIL FROM a forged.test address is refused
        with `550 5.7.23`; a good.test sender is accepted and its message carries
        `Received-SPF: pass` and `Authentication-Results: <hostname>; spf=pass
        smtp.mailfrom=...`; a sender whose domain has no SPF record gets `spf=none`."""
        s = self.server("spf = reject\ndmarc = off\ndkim.verify = no\nsmtp.greet_pause = 0\n", [
            "--txt-record=forged.test,v=spf1 -all",
            "--txt-record=good.test,v=spf1 ip4:127.0.0.0/8 -all",
        ])
        with client(s, "127.0.0.8") as c:
            c.ehlo("client.test")
            code, text = c.mail("ceo@forged.test")
            self.assertEqual(code, 550, text)
            self.assertIn(b"5.7.23", text)
            c.rset()
            c.sendmail("news@good.test", ["alice@example.test"], MSG % 5)
            c.sendmail("someone@nospf.test", ["alice@example.test"], MSG % 6)
        got = sorted(delivered(s), key=lambda m: b"checks-6" in m)
        self.assertEqual(len(got), 2)
        head = got[0].split(b"\n\n", 1)[0]
        self.assertIn(b"Received-SPF: pass", head)
        self.assertRegex(head, rb"Authentication-Results: mx\.example\.test;\s+spf=pass smtp\.mailfrom=news@good\.test")
        self.assertTrue(head.startswith(b"Return-Path: <news@good.test>\n"), head[:200])
        self.assertLess(head.index(b"Authentication-Results:"), head.index(b"Received: from"))
        head = got[1].split(b"\n\n", 1)[0]
        self.assertRegex(head, rb"spf=none smtp\.mailfrom=someone@nospf\.test")
        self.assertIn("event=spf result=fail", s.read_log())

    def test_rate_limits_per_address(self):
        """smtp.connection_rate = 3 and smtp.message_rate = 2: the 4th connection within a minute
        from one address gets `421 4.7.0 ... too many connections` at once; the 3rd MAIL within a
        minute gets `452 4.3.2 ... too much mail`; another address is not held back."""
        s = self.server("smtp.connection_rate = 3\nsmtp.message_rate = 2\nsmtp.greet_pause = 0\n"
                        "spf = off\ndmarc = off\ndkim.verify = no\n")
        with client(s, "127.0.0.10") as c:
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 8)
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 9)
            code, text = c.mail("carol@remote.test")
            self.assertEqual(code, 452, text)
            self.assertIn(b"4.3.2 Error: too much mail from 127.0.0.10", text)
        for _ in range(2):
            client(s, "127.0.0.10").quit()
        with self.assertRaises(smtplib.SMTPConnectError) as e:
            client(s, "127.0.0.10")
        self.assertEqual(e.exception.smtp_code, 421)
        self.assertIn(b"too many connections from 127.0.0.10", e.exception.smtp_error)
        with client(s, "127.0.0.11") as c:
            c.sendmail("carol@remote.test", ["alice@example.test"], MSG % 10)
        self.assertEqual(len(delivered(s)), 3)


class TwoServers(unittest.TestCase):
    """Two instances on loopback with dnsmasq: A (a.test) signs what its users send with a key made
    by `buzon dkim keygen`; B (b.test) checks what it receives with the shipped defaults (spf = tag
    here raised to reject, dkim.verify = yes, dmarc = enforce), loopback not skipped."""

    def setUp(self):
        self.port = free_port_on("127.0.0.2", "127.0.0.3")
        keys = tempfile.mkdtemp(prefix="buzon-keys-")
        self.addCleanup(shutil.rmtree, keys, True)
        conf = os.path.join(keys, "buzon.conf")
        with open(conf, "w") as f:
            f.write(f"data_dir = {keys}\nsmtp.listen = 127.0.0.1:{free_port()}\n")
        out = run_buzon("dkim", "-c", conf, "keygen", "a.test", "--selector", "s1").stdout
        line = [l for l in out.splitlines() if "IN TXT" in l][0]
        self.assertTrue(line.startswith("s1._domainkey.a.test. IN TXT ("), line)
        strings = re.findall(r'"([^"]*)"', line)
        self.assertTrue(len(strings) >= 2 and all(len(x) <= 255 for x in strings), line)
        self.dns = Dns([
            "--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3",
            "--txt-record=a.test,v=spf1 ip4:127.0.0.0/8 -all",
            "--txt-record=_dmarc.a.test,v=DMARC1; p=reject",
            "--txt-record=s1._domainkey.a.test," + ",".join(strings),
            "--txt-record=forged.test,v=spf1 -all",
            "--txt-record=_dmarc.q.test,v=DMARC1; p=quarantine",
        ])
        self.addCleanup(self.dns.stop)
        common = (f"dns.servers = 127.0.0.1:{self.dns.port}\noutbound.port = {self.port}\n"
                  "outbound.tls = none\nsmtp.greet_pause = 0\n")
        self.a = Server(host="127.0.0.2", port=self.port, domain="a.test", users=("pepe",),
                        extra=common + "relay.networks = 127.0.0.0/8\n")
        self.imap_port = free_port("127.0.0.3")
        self.b = Server(host="127.0.0.3", port=self.port, domain="b.test", users=("maria",),
                        extra=common + "checks.skip_networks =\nspf = reject\n"
                        f"imap.listen = 127.0.0.3:{self.imap_port}\nauth.cleartext_networks = 127.0.0.0/8\n")
        for srv in (self.a, self.b):
            self.addCleanup(srv.cleanup)
        os.makedirs(os.path.join(self.a.tmp, "data", "dkim"), mode=0o700)
        shutil.copy(os.path.join(keys, "dkim", "a.test.s1.rsa.pem"), os.path.join(self.a.tmp, "data", "dkim"))
        self.b.start()
        self.a.start()

    def maria(self, folder=""):
        return delivered(self.b, "maria", folder)

    def test_signed_at_a_verified_at_b(self):
        """pepe@a.test writes to maria@b.test through A: B's Authentication-Results says
        spf=pass, dkim=pass (header.d=a.test, header.s=s1) and dmarc=pass, and the message has
        A's DKIM-Signature; an Authentication-Results field that claims B's name and came with
        the message is removed."""
        body = (b"From: Pepe <pepe@a.test>\r\nTo: maria@b.test\r\nSubject: firmado\r\n"
                b"Authentication-Results: mx.b.test; dkim=pass header.d=bank.test\r\n"
                b"Message-ID: <e2e-1@a.test>\r\n\r\nHola Maria.\r\n")
        with smtplib.SMTP("127.0.0.2", self.port) as c:
            c.sendmail("pepe@a.test", ["maria@b.test"], body)
        [m] = wait_for(lambda: self.maria(), what="delivery at b")
        head = m.split(b"\n\n", 1)[0].decode()
        self.assertIn("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=a.test; s=s1;", head)
        ar = re.findall(r"^Authentication-Results:(.*(?:\n[ \t].*)*)", head, re.M)
        self.assertEqual(len(ar), 1, head)
        ar = " ".join(ar[0].split())
        self.assertTrue(ar.startswith("mx.b.test;"), ar)
        self.assertIn("spf=pass smtp.mailfrom=pepe@a.test", ar)
        self.assertRegex(ar, r"dkim=pass header\.d=a\.test header\.s=s1 header\.b=\S{8}")
        self.assertIn("dmarc=pass header.from=a.test", ar)
        self.assertNotIn("bank.test", head, "the forged Authentication-Results is gone")
        self.assertIn("event=dkim_signed domain=a.test signatures=1", self.a.read_log())

    def test_sendmail_mail_is_signed_too(self):
        """A message dropped with `buzon sendmail -t` on A (as mail(1) or cron would) is signed
        when picked up, and B finds dkim=pass and dmarc=pass."""
        text = ("From: pepe@a.test\nTo: maria@b.test\nSubject: from cron\n\nnightly report\n")
        r = run_buzon("sendmail", "-C", self.a.config, "-t", "-f", "pepe@a.test", stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        [m] = wait_for(lambda: self.maria(), what="delivery at b")
        head = " ".join(m.split(b"\n\n", 1)[0].decode().split())
        self.assertIn("d=a.test; s=s1;", head)
        self.assertRegex(head, r"dkim=pass header\.d=a\.test")
        self.assertIn("dmarc=pass header.from=a.test", head)

    def test_forged_from_under_reject_is_refused(self):
        """A client that is not A sends From: boss@a.test (p=reject) without A's signature and
        from an envelope domain without SPF: `550 5.7.1` at the end of DATA, nothing stored; a
        sender whose domain says `-all` is refused at MAIL with `550 5.7.23`; a p=quarantine
        failure is delivered into maria's Junk folder."""
        forged = (b"From: Boss <boss@a.test>\r\nTo: maria@b.test\r\nSubject: urgent wire transfer\r\n"
                  b"Message-ID: <e2e-2@evil.test>\r\n\r\nPay now.\r\n")
        with client(self.b, "127.0.0.9") as c:
            with self.assertRaises(smtplib.SMTPDataError) as e:
                c.sendmail("x@evil.test", ["maria@b.test"], forged)
            self.assertEqual(e.exception.smtp_code, 550)
            self.assertIn(b"5.7.1", e.exception.smtp_error)
            self.assertIn(b"DMARC", e.exception.smtp_error)
            with self.assertRaises(smtplib.SMTPSenderRefused) as e:
                c.sendmail("ceo@forged.test", ["maria@b.test"], MSG % 7)
            self.assertEqual(e.exception.smtp_code, 550)
            self.assertIn(b"5.7.23", e.exception.smtp_error)
            c.sendmail("x@evil.test", ["maria@b.test"],
                       b"From: q@q.test\r\nTo: maria@b.test\r\nSubject: maybe\r\n\r\nhm\r\n")
        [junk] = wait_for(lambda: self.maria(".Junk"), what="delivery into Junk")
        self.assertIn(b"dmarc=fail header.from=q.test", junk)
        self.assertIn(b"X-Spam: Yes", junk)
        # An IMAP client sees it in the \\Junk folder (RFC 6154).
        with imaplib.IMAP4("127.0.0.3", self.imap_port) as im:
            im.login("maria@b.test", "secret-maria")
            typ, lines = im.list()
            self.assertTrue(any(b"\\Junk" in l and l.endswith(b"\"Junk\"") for l in lines), lines)
            self.assertEqual(im.select("Junk"), ("OK", [b"1"]))
            typ, data = im.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"Subject: maybe", data[0][1])
        self.assertEqual(self.maria(), [], "nothing forged reached the inbox")
        log = self.b.read_log()
        self.assertIn("event=dmarc result=fail from=a.test policy=reject disposition=reject", log)


if __name__ == "__main__":
    unittest.main()
