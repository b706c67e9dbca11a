"""POP3 with Python's poplib: mail delivered over SMTP, fetched over STLS and
POP3S from Maildir and mbox, byte for byte, deleted only at QUIT."""

import os
import poplib
import smtplib
import ssl
import unittest

from harness import Server, free_port, missing, run_buzon

BODY = (b"Subject: pop me\r\nMessage-ID: <p1@remote.test>\r\n\r\n"
        b"first line\r\n.line starting with a dot\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n")


class Pop3(unittest.TestCase):
    mailbox = "maildir:{tmp}/mail/%d/%n/Maildir"

    def setUp(self):
        self.pop, self.pops = free_port(), free_port()
        s = Server(mailbox=self.mailbox)
        self.server = s
        self.addCleanup(s.cleanup)
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config, "a") as f:
            f.write(f"pop3.listen = 127.0.0.1:{self.pop}\npop3s.listen = 127.0.0.1:{self.pops}\n"
                    f"tls.cert = {cert}\ntls.key = {key}\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("pepe@remote.test", ["alice@example.test"], BODY)
            c.sendmail("pepe@remote.test", ["alice@example.test"], b"Subject: second\r\n\r\ntwo\r\n")

    def login(self, implicit=False):
        ctx = ssl._create_unverified_context()
        if implicit:
            p = poplib.POP3_SSL("127.0.0.1", self.pops, context=ctx, timeout=10)
        else:
            p = poplib.POP3("127.0.0.1", self.pop, timeout=10)
            self.assertIn("STLS", p.capa())
            p.stls(context=ctx)
        p.user("alice@example.test")
        p.pass_("secret-alice")
        return p

    def test_fetch_and_delete_at_quit_only(self):
        p = self.login()
        count, size = p.stat()
        self.assertEqual(count, 2)
        resp, lines, octets = p.retr(1)
        got = b"\r\n".join(lines) + b"\r\n"
        self.assertTrue(got.endswith(BODY), got)  # after Return-Path and Received
        self.assertEqual(int(p.list(1).split()[2]), len(got), "LIST gives the CRLF size the client receives")
        uid1 = p.uidl(1).split()[2]
        resp, top, _ = p.top(1, 0)
        self.assertIn(b"Subject: pop me", top)
        self.assertNotIn(b"first line", top)
        p.dele(1)
        # A second session on the same maildrop is refused while this one holds it.
        q = poplib.POP3("127.0.0.1", self.pop, timeout=10)
        q.stls(context=ssl._create_unverified_context())
        q.user("alice@example.test")
        with self.assertRaises(poplib.error_proto) as e:
            q.pass_("secret-alice")
        self.assertIn(b"[IN-USE]", e.exception.args[0])
        q.quit()
        p.quit()
        p = self.login(implicit=True)
        self.assertEqual(p.stat()[0], 1, "the deletion happened at QUIT")
        self.assertNotIn(uid1, b" ".join(p.uidl()[1]))
        # A dropped connection deletes nothing.
        p.dele(1)
        p.file.close()
        p.sock.close()
        p = self.login(implicit=True)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_wrong_password_and_plaintext_refused(self):
        p = poplib.POP3("127.0.0.1", self.pop, timeout=10)
        with self.assertRaises(poplib.error_proto) as e:
            p.user("alice@example.test")
            p.pass_("secret-alice")
        self.assertIn(b"TLS", e.exception.args[0])
        p.quit()
        p = poplib.POP3_SSL("127.0.0.1", self.pops, context=ssl._create_unverified_context(), timeout=10)
        p.user("alice@example.test")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("wrong")
        self.assertIn(b"[AUTH]", e.exception.args[0])


class Apop(unittest.TestCase):

    def test_poplib_apop(self):
        port = free_port()
        s = Server(extra=f"pop3.listen = 127.0.0.1:{port}\npop3.apop = yes\n")
        self.addCleanup(s.cleanup)
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("pepe@remote.test", ["bob@example.test"], BODY)
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        self.assertRegex(p.getwelcome(), rb"<\d+\.[0-9a-f]+@mx\.example\.test>")
        with self.assertRaises(poplib.error_proto):
            p.apop("bob@example.test", "wrong")
        p.apop("bob@example.test", "secret-bob")  # the password never crosses the wire
        self.assertEqual(p.stat()[0], 1)
        p.quit()


class Pop3Mbox(Pop3):
    mailbox = "mbox:{tmp}/spool/%n"


if __name__ == "__main__":
    unittest.main()


class RealClients(Pop3):
    mailbox = "maildir:{tmp}/mail/%d/%n/Maildir"

    def test_curl_pop3_over_stls_and_pop3s(self):
        import shutil
        import subprocess
        if not shutil.which("curl"):
            self.fail(missing("curl"))
        auth = ["-u", "alice@example.test:secret-alice", "-k", "-s", "-S", "--max-time", "20"]
        r = subprocess.run(["curl", "--ssl-reqd", f"pop3://127.0.0.1:{self.pop}/1", *auth],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith(BODY), r.stdout)
        r = subprocess.run(["curl", f"pop3s://127.0.0.1:{self.pops}/", *auth], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 2, r.stdout)

    def test_fetchmail_keep_and_no_keep(self):
        import shutil
        import subprocess
        if not shutil.which("fetchmail"):
            self.fail(missing("fetchmail"))
        out = os.path.join(self.server.tmp, "fetched.mbox")
        mda = os.path.join(self.server.tmp, "mda.sh")
        with open(mda, "w") as f:
            f.write(f"#!/bin/sh\n{{ echo 'From fetchmail Thu Jan  1 00:00:00 1970'; cat; echo; }} >> {out}\n")
        os.chmod(mda, 0o755)
        rc = os.path.join(self.server.tmp, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f"poll 127.0.0.1 protocol pop3 service {self.pops} user 'alice@example.test' "
                    f"password 'secret-alice' ssl no sslcertck mda '{mda}'\n")
        os.chmod(rc, 0o600)
        env = {**os.environ, "HOME": self.server.tmp, "FETCHMAILHOME": self.server.tmp}
        for keep, left in (("--keep", 2), ("--nokeep", 0)):
            r = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "--nosyslog", keep, "--all"],
                               capture_output=True, text=True, timeout=60, env=env)
            self.assertIn(r.returncode, (0, 1), r.stdout + r.stderr)
            p = self.login(implicit=True)
            self.assertEqual(p.stat()[0], left, keep)
            p.quit()
        with open(out, "rb") as f:
            fetched = f.read()
        self.assertEqual(fetched.count(b"Subject: pop me"), 2, "fetched once with --keep, once with --nokeep")
        self.assertIn(b".line starting with a dot\n", fetched)

    def test_getmail6_into_a_maildir(self):
        import shutil
        import subprocess
        if not shutil.which("getmail"):
            self.fail(missing("getmail6"))
        dest = os.path.join(self.server.tmp, "got") + "/"
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dest, sub))
            os.chmod(os.path.join(dest, sub), 0o777)
        # getmail will not deliver as root: as root, it writes as the user named here.
        os.chmod(self.server.tmp, 0o755)
        os.chmod(dest, 0o777)
        as_user = "user = nobody\n" if os.geteuid() == 0 else ""
        rcdir = os.path.join(self.server.tmp, "getmail")
        os.makedirs(rcdir)
        with open(os.path.join(rcdir, "getmailrc"), "w") as f:
            f.write(f"[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = {self.pops}\n"
                    "username = alice@example.test\npassword = secret-alice\n\n"
                    f"[destination]\ntype = Maildir\npath = {dest}\n{as_user}\n"
                    "[options]\ndelete = true\nread_all = true\n")
        r = subprocess.run(["getmail", "--getmaildir", rcdir, "--rcfile", "getmailrc"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = sorted(os.listdir(os.path.join(dest, "new")))
        self.assertEqual(len(got), 2, r.stdout)
        p = self.login(implicit=True)
        self.assertEqual(p.stat()[0], 0, "getmail deleted what it fetched")
        p.quit()

    def test_pipelined_commands_and_a_large_message(self):
        big = b"Subject: big\r\n\r\n" + (b"0123456789abcdef" * 4 + b"\r\n") * (10 * 1024 * 1024 // 66) + b".end\r\n"
        with smtplib.SMTP("127.0.0.1", self.server.port) as c:
            c.sendmail("pepe@remote.test", ["alice@example.test"], big)
        p = self.login()
        count, _ = p.stat()
        self.assertEqual(count, 3)
        sizes = {int(n): int(sz) for n, sz in (l.split() for l in p.list()[1])}
        n = max(sizes, key=sizes.get)
        resp, lines, _ = p.retr(n)
        got = b"\r\n".join(lines) + b"\r\n"
        self.assertTrue(got.endswith(big), "10 MiB round trip, byte for byte")
        self.assertEqual(sizes[n], len(got))
        # RFC 2449 6.6: several commands in one write, answered in order.
        p._putline(b"NOOP\r\nSTAT\r\nUIDL 1")
        self.assertTrue(p._getresp().startswith(b"+OK"))
        self.assertTrue(p._getresp().startswith(b"+OK 3 "))
        self.assertTrue(p._getresp().startswith(b"+OK 1 "))
        p.quit()
