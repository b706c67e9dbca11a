"""The inbound checks on the real binary, with a real DNS server (dnsmasq) for the DNS answers:
DNS blocklists at MAIL (554 5.7.1 with the zone's reason), greylisting at RCPT (450 4.7.1, then
accepted after the delay, never for logged-in clients), and what the checks leave in the message
(Authentication-Results). Clients are Python's smtplib, connecting from chosen loopback addresses
(checks.skip_networks is emptied, since loopback is skipped by default)."""

import os
import smtplib
import socket
import time
import unittest

from harness import Server, free_port
from test_relay import Dns

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


if __name__ == "__main__":
    unittest.main()
