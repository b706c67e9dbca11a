"""mbox delivery read back by Python's mailbox and s-nail; aliases; the
command line (check-config errors, passwd, the embedded default)."""

import mailbox
import os
import re
import shutil
import smtplib
import subprocess
import unittest

from harness import BINARY, Server, ServerTest, free_port, missing, run_buzon


class Mbox(ServerTest):
    mailbox = "mbox:{tmp}/spool/%n"

    def path(self, user):
        return os.path.join(self.server.tmp, "spool", user)

    def test_mbox_byte_for_byte_and_real_readers(self):
        msgs = [b"Subject: first\r\n\r\nFrom here on\r\n>From quoted already\r\nend\r\n",
                b"Subject: second\r\n\r\nno trailing newline"]
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            for m in msgs:
                s.sendmail("pepe@remote.test", ["alice@example.test"], m)
        data = open(self.path("alice"), "rb").read()
        parts = re.split(rb"(?m)^(?=From pepe@remote\.test \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n)", data)
        parts = [p for p in parts if p]
        self.assertEqual(len(parts), 2, data)
        self.assertTrue(parts[0].endswith(b"Subject: first\n\n>From here on\n>>From quoted already\nend\n\n"),
                        parts[0])
        self.assertTrue(parts[1].endswith(b"Subject: second\n\nno trailing newline\n\n"), parts[1])
        self.assertIn(b"\nReturn-Path: <pepe@remote.test>\n", parts[0])
        self.assertEqual(os.stat(self.path("alice")).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(self.path("alice") + ".lock"), "dotlock released")
        box = mailbox.mbox(self.path("alice"), create=False)
        self.assertEqual([m["Subject"] for m in box], ["first", "second"])
        box.close()
        snail = shutil.which("s-nail") or shutil.which("mailx")
        if not snail:
            self.fail(missing("s-nail"))
        r = subprocess.run([snail, "-N", "-R", "-f", "-H", self.path("alice")], capture_output=True, text=True,
                           env={**os.environ, "HOME": self.server.tmp, "MAILRC": "/dev/null", "LC_ALL": "C"},
                           timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertIn("first", lines[0])
        self.assertIn("second", lines[1])

    def test_locked_mbox_is_queued_and_nothing_is_half_written(self):
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.sendmail("pepe@remote.test", ["bob@example.test"], b"Subject: one\r\n\r\nx\r\n")
        before = open(self.path("bob"), "rb").read()
        self.server.cleanup()
        self.server = Server(extra="mbox.lock_timeout = 1s", mailbox=self.mailbox)
        self.addCleanup(self.server.cleanup)
        os.makedirs(os.path.dirname(self.path("bob")), exist_ok=True)
        with open(self.path("bob"), "wb") as f:
            f.write(before)
        self.server.start()
        with open(self.path("bob") + ".lock", "w") as f:
            f.write("held by another mailer\n")
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.sendmail("pepe@remote.test", ["alice@example.test", "bob@example.test"], b"Subject: two\r\n\r\ny\r\n")
        self.assertEqual(open(self.path("bob"), "rb").read(), before, "nothing half-written")
        self.assertFalse(os.path.exists(self.path("alice")) and os.path.getsize(self.path("alice")) > 0,
                         "all or nothing: alice got no copy yet either; both wait in the queue")
        os.remove(self.path("bob") + ".lock")
        r = run_buzon("queue", "flush", "-c", self.server.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        import time
        deadline = time.time() + 10
        while time.time() < deadline and "event=removed" not in self.server.read_log():
            time.sleep(0.05)
        self.assertEqual(len(mailbox.mbox(self.path("bob"))), 2)
        self.assertEqual(len(mailbox.mbox(self.path("alice"))), 1)


class Aliases(ServerTest):
    users = ("alice", "bob", "carol")

    def setUp(self):
        import tempfile
        self.aliases = tempfile.NamedTemporaryFile("w", suffix=".aliases", delete=False)
        self.aliases.write("# test aliases\n"
                           "team: alice,\n  bob\n"
                           "Everyone: team, :include:" + self.aliases.name + ".inc\n"
                           "loop1: loop2\nloop2: loop1\n"
                           "outside: someone@elsewhere.test\n")
        self.aliases.close()
        with open(self.aliases.name + ".inc", "w") as f:
            f.write("carol\nalice\n")
        self.addCleanup(os.remove, self.aliases.name)
        self.addCleanup(os.remove, self.aliases.name + ".inc")
        self.extra = f"aliases = {self.aliases.name}"
        super().setUp()

    def test_expansion_dedup_and_loops(self):
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            s.sendmail("pepe@remote.test", ["everyone@example.test"], b"Subject: all\r\n\r\nhi\r\n")
            s.mail("a@b.test")
            code, text = s.rcpt("loop1@example.test")
            self.assertEqual(code // 100, 5, text)
            # An alias to a remote address is accepted: the copy goes through the queue.
            code, text = s.rcpt("outside@example.test")
            self.assertEqual(code // 100, 2, text)
        for u in ("alice", "bob", "carol"):
            self.assertEqual(len(self.server.new_messages(u)), 1, u)


@unittest.skipUnless(os.geteuid() == 0, "needs root (CI runs as root)")
class SystemUsers(unittest.TestCase):
    """users = system as root: mail is written as the recipient, not as root."""

    def test_delivery_belongs_to_the_recipient(self):
        import grp
        import pwd
        nobody = pwd.getpwnam("nobody")
        mail_gid = grp.getgrnam("mail").gr_gid
        for mailbox_spec, check in (("maildir:{tmp}/homes/%u/Maildir", "maildir"), ("mbox:{tmp}/spool/%u", "mbox")):
            s = Server(mailbox=mailbox_spec, extra="")
            self.addCleanup(s.cleanup)
            with open(s.config) as f:
                conf = f.read().replace(f"users = file:{s.passwd}", "users = system")
            with open(s.config, "w") as f:
                f.write(conf)
            os.chmod(s.tmp, 0o755)
            os.makedirs(os.path.join(s.tmp, "homes"), mode=0o1777)
            os.chmod(os.path.join(s.tmp, "homes"), 0o1777)
            spool = os.path.join(s.tmp, "spool")
            os.makedirs(spool)
            os.chown(spool, 0, mail_gid)
            os.chmod(spool, 0o2775)
            s.start()
            with smtplib.SMTP("127.0.0.1", s.port) as c:
                c.sendmail("a@b.test", ["nobody@example.test"], b"Subject: owned\r\n\r\nx\r\n")
            if check == "maildir":
                new = os.path.join(s.tmp, "homes", "nobody", "Maildir", "new")
                [name] = os.listdir(new)
                st = os.stat(os.path.join(new, name))
                self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid))
                self.assertEqual(os.stat(os.path.dirname(new)).st_uid, nobody.pw_uid)
            else:
                st = os.stat(os.path.join(spool, "nobody"))
                self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, mail_gid))
                self.assertEqual(st.st_mode & 0o777, 0o660, "user:mail 0660 in a mail spool, as Debian makes it")
            s.cleanup()


class CommandLine(unittest.TestCase):

    def test_check_config_errors_name_file_and_line(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.conf")
            with open(p, "w") as f:
                f.write("smtp.listen = 127.0.0.1:2525\n# comment\nmessage_size_limt = 10M\n")
            r = run_buzon("check-config", "-c", p)
            self.assertEqual(r.returncode, 78)
            self.assertIn(f"{p}:3: unknown key `message_size_limt` (did you mean `message_size_limit`?)", r.stderr)
            with open(p, "w") as f:
                f.write("smtp.listen = 127.0.0.1:2525\nmessage_size_limit = huge\n")
            r = run_buzon("check-config", "-c", p)
            self.assertEqual(r.returncode, 78)
            self.assertIn(f"{p}:2: `message_size_limit`", r.stderr)
            with open(p, "w") as f:
                f.write("smtp.listen = 127.0.0.1:2525\nhostname = mx.example.org\n")
            r = run_buzon("check-config", "-c", p)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("hostname = mx.example.org\n", r.stdout)
            self.assertIn("message_size_limit = 26214400\n", r.stdout)
            r = run_buzon("check-config", env={**os.environ, "BUZON_CONFIG": p})
            self.assertIn("hostname = mx.example.org\n", r.stdout)

    def test_mailq_by_its_classic_name(self):
        s = Server()
        self.addCleanup(s.cleanup)
        s.start()
        link = os.path.join(s.tmp, "mailq")
        os.symlink(BINARY, link)
        r = subprocess.run([link, "-C", s.config], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "Mail queue is empty")

    def test_serve_with_bad_config_exits_nonzero(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.conf")
            with open(p, "w") as f:
                f.write("smtp.listen = 127.0.0.1:99999\n")
            r = run_buzon("serve", "-c", p)
            self.assertEqual(r.returncode, 78)
            self.assertIn(":1:", r.stderr)

    def test_passwd_then_mail_to_the_new_user(self):
        s = Server(users=())
        self.addCleanup(s.cleanup)
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            with self.assertRaises(smtplib.SMTPRecipientsRefused):
                c.sendmail("a@b.test", ["dora@example.test"], b"Subject: x\r\n\r\nx\r\n")
        r = run_buzon("passwd", "-c", s.config, "dora@example.test", stdin="s3cret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        line = open(s.passwd).read()
        self.assertRegex(line, r"^dora@example\.test:\{SHA512-CRYPT\}\$6\$")
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            c.sendmail("a@b.test", ["dora@example.test"], b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(len(s.new_messages("dora")), 1)

    def test_embedded_default_check_config(self):
        import tempfile
        if os.path.exists("/etc/buzon/buzon.conf"):
            self.skipTest("/etc/buzon/buzon.conf exists on this machine")
        with tempfile.TemporaryDirectory() as d:
            env = {k: v for k, v in os.environ.items() if k != "BUZON_CONFIG"}
            r = run_buzon("check-config", env=env, cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("# effective configuration from embedded default", r.stdout)
            self.assertIn("smtp.listen = 127.0.0.1:2525\n", r.stdout)
            self.assertIn("submission.listen = 127.0.0.1:2587\n", r.stdout)
            self.assertIn("data_dir = buzon-data\n", r.stdout)

    def test_embedded_default_serves_and_delivers(self):
        """What `make run` does: no config at all, loopback ports 2525/2587, mail under ./buzon-data."""
        import socket
        import tempfile
        import time
        if os.path.exists("/etc/buzon/buzon.conf"):
            self.skipTest("/etc/buzon/buzon.conf exists on this machine")
        for port in (2525, 2587, 8080):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    self.skipTest(f"port {port} is in use")
        d = tempfile.mkdtemp(prefix="buzon-embedded-")
        self.addCleanup(shutil.rmtree, d, True)
        env = {k: v for k, v in os.environ.items() if k != "BUZON_CONFIG"}
        r = run_buzon("passwd", "alice@localhost", stdin="pw\n", env=env, cwd=d)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = subprocess.Popen([BINARY, "serve"], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", 2525), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.02)
            with smtplib.SMTP("127.0.0.1", 2525) as c:
                banner = c.ehlo()
                c.sendmail("me@localhost", ["alice@localhost"], b"Subject: tour\r\n\r\nhello\r\n")
            import ssl
            # Submission: STARTTLS with the self-signed certificate made on first start, then AUTH.
            with smtplib.SMTP("127.0.0.1", 2587) as c:
                c.starttls(context=ssl._create_unverified_context())
                c.login("alice@localhost", "pw")
                c.sendmail("alice@localhost", ["postmaster@localhost"], b"Subject: tour 2\r\n\r\nhello\r\n")
            # The webmail and Thunderbird's autoconfig on 8080, as the README's tour says.
            import urllib.request
            with urllib.request.urlopen("http://127.0.0.1:8080/login", timeout=10) as r:
                self.assertEqual(r.status, 200)
                self.assertIn(b'name="password"', r.read())
            with urllib.request.urlopen("http://127.0.0.1:8080/mail/config-v1.1.xml?emailaddress=alice@localhost",
                                        timeout=10) as r:
                self.assertIn(b"<port>1143</port>", r.read())
        finally:
            p.terminate()
            out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("embedded default", out)
        self.assertIn("buzon passwd alice@localhost", out)
        self.assertEqual(banner[0], 250)
        new = os.path.join(d, "buzon-data", "mail", "localhost", "alice", "Maildir", "new")
        self.assertEqual(len(os.listdir(new)), 1)
        self.assertTrue(os.path.exists(os.path.join(d, "buzon-data", "tls", "cert.pem")))
        pm = os.path.join(d, "buzon-data", "mail", "localhost", "postmaster", "Maildir", "new")
        [name] = os.listdir(pm)
        with open(os.path.join(pm, name), "rb") as f:
            self.assertIn(b"with ESMTPSA id", f.read())


if __name__ == "__main__":
    unittest.main()
