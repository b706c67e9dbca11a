"""sendmail(8) compatibility: local submission through data_dir/maildrop and the server's pickup,
driven by real mail programs (s-nail) and by sendmail invoked the way cron and scripts invoke it."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, Server


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


class SendmailBase(unittest.TestCase):
    mailbox = "maildir:{tmp}/mail/%d/%n/Maildir"
    extra = ""

    def setUp(self):
        self.server = Server(mailbox=self.mailbox, extra=self.extra)
        self.addCleanup(self.server.cleanup)
        self.server.start()
        # The listeners are bound before the pickup starts: wait for the maildrop it creates.
        self.assertTrue(wait_for(lambda: os.path.isdir(self.maildrop())), self.server.read_log())
        # The classic name, as mail(1) and cron run it.
        self.sendmail = os.path.join(self.server.tmp, "sendmail")
        os.symlink(BINARY, self.sendmail)
        self.env = {**os.environ, "BUZON_CONFIG": self.server.config}

    def run_sendmail(self, *args, stdin="", env=None, prefix=()):
        return subprocess.run([*prefix, self.sendmail, *args], input=stdin, capture_output=True, text=True,
                              env=env or self.env, timeout=30)

    def maildrop(self):
        return os.path.join(self.server.tmp, "data", "maildrop")

    def messages(self, user):
        return wait_for(lambda: self.server.new_messages(user))


class TestSendmail(SendmailBase):
    def test_snail_to_maildir(self):
        r = subprocess.run(
            ["s-nail", "-:/", "-S", f"mta={self.sendmail}", "-S", "mta-argv0=sendmail", "-S", "sendwait",
             "-s", "hello from s-nail", "alice@example.test"],
            input="body line one\n.\nafter a dot line\n", capture_output=True, text=True, env=self.env,
            timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        msgs = self.messages("alice")
        self.assertEqual(len(msgs), 1, self.server.read_log())
        m = msgs[0].decode()
        self.assertIn("Subject: hello from s-nail", m)
        self.assertIn("Received: by mx.example.test (buzon sendmail, uid 0)", m)
        # s-nail passes -i when it sends: a lone dot is data.
        self.assertIn("\n.\nafter a dot line\n", m)
        self.assertIn("Message-ID: <", m)
        self.assertIn("From: ", m)
        self.assertEqual(os.listdir(self.maildrop()), [])

    def test_missing_fields_are_added(self):
        r = self.run_sendmail("alice", stdin="just a body\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.messages("alice")[0].decode()
        head, _, body = m.partition("\n\n")
        self.assertEqual(body, "just a body\n")
        for field in ("Date: ", "From: root <root@example.test>", "Message-ID: <", "Return-Path: <root@example.test>"):
            self.assertIn("\n" + field if not field.startswith("Return") else field, head)
        self.assertIn("for <alice@example.test>", head)

    def test_dot_ends_input_without_i(self):
        r = self.run_sendmail("-f", "cron@example.test", "-F", "Cron Daemon", "alice@example.test",
                              stdin="Subject: dots\n\nfirst\n.\nnot sent\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.messages("alice")[0].decode()
        self.assertTrue(m.endswith("\n\nfirst\n"), m)
        self.assertIn("From: Cron Daemon <cron@example.test>", m)
        self.assertIn("Return-Path: <cron@example.test>", m)

    def test_cron_style_t(self):
        msg = ("To: alice\nCc: Bob <bob@example.test>\nBcc: bob@example.test, alice@example.test\n"
               "Subject: cron output\n\nhello\n")
        r = self.run_sendmail("-t", "-oi", stdin=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        for user in ("alice", "bob"):
            msgs = self.messages(user)
            self.assertEqual(len(msgs), 1, (user, self.server.read_log()))
            m = msgs[0].decode()
            self.assertNotIn("Bcc", m)
            self.assertIn("To: alice\n", m)
            self.assertIn("Subject: cron output", m)
            self.assertIn("\nDate: ", m)

    def test_t_without_recipients_is_refused(self):
        r = self.run_sendmail("-t", stdin="Subject: nobody\n\nx\n")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn("no recipient", r.stderr)
        self.assertEqual(os.listdir(self.maildrop()), [])
        r = self.run_sendmail(stdin="x\n")
        self.assertEqual(r.returncode, 64)
        r = self.run_sendmail("-k", "alice")
        self.assertEqual(r.returncode, 64)

    def test_submission_while_server_is_down(self):
        self.server.stop()
        r = self.run_sendmail("alice", stdin="Subject: queued while down\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(os.listdir(self.maildrop())), 1)
        self.assertEqual(self.server.new_messages("alice"), [])
        self.server.logf.close()
        self.server.start()
        m = self.messages("alice")
        self.assertEqual(len(m), 1, self.server.read_log())
        self.assertIn(b"Subject: queued while down", m[0])
        self.assertTrue(wait_for(lambda: os.listdir(self.maildrop()) == []))

    def test_no_maildrop_is_a_temporary_failure(self):
        # For a user who is not root, a server that never ran is a temporary failure (EX_TEMPFAIL).
        as_nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        if os.geteuid() != 0 or subprocess.run([*as_nobody, "test", "-x", BINARY]).returncode != 0:
            self.skipTest("needs root and a binary nobody can run")
        os.chmod(self.server.tmp, 0o711)
        conf = os.path.join(self.server.tmp, "other.conf")
        with open(self.server.config) as f, open(conf, "w") as g:
            g.write(f.read().replace(f"data_dir = {self.server.tmp}/data", f"data_dir = {self.server.tmp}/never"))
        os.chmod(conf, 0o644)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        r = self.run_sendmail("-C", conf, "alice", stdin="x\n", env=env, prefix=as_nobody)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("maildrop", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.server.tmp, "never")))

    def test_root_before_the_server_ever_ran(self):
        # Root (cron at boot, a fresh install) makes the maildrop as the server would; the message
        # waits there and is delivered once the server runs.
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.server.stop()
        data = os.path.join(self.server.tmp, "fresh")
        conf = os.path.join(self.server.tmp, "fresh.conf")
        with open(self.server.config) as f, open(conf, "w") as g:
            g.write(f.read().replace(f"data_dir = {self.server.tmp}/data", f"data_dir = {data}"))
        r = self.run_sendmail("-C", conf, "alice", stdin="Subject: before the server\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        md = os.path.join(data, "maildrop")
        self.assertEqual(os.stat(md).st_mode & 0o7777, 0o1733)
        self.assertEqual(len(os.listdir(md)), 1)
        self.server.config = conf
        self.server.logf.close()
        self.server.start()
        m = self.messages("alice")
        self.assertEqual(len(m), 1, self.server.read_log())
        self.assertIn(b"Subject: before the server", m[0])
        self.assertTrue(wait_for(lambda: os.listdir(md) == []))

    def test_bad_file_is_set_aside(self):
        tmp = os.path.join(self.maildrop(), "tmp.junk")
        with open(tmp, "w") as f:
            f.write("not a maildrop file\n")
        os.rename(tmp, os.path.join(self.maildrop(), "0000000000000000.junk"))
        corrupt = os.path.join(self.server.tmp, "data", "corrupt")
        self.assertTrue(wait_for(lambda: os.listdir(corrupt) == ["maildrop.0000000000000000.junk"]))
        self.assertIn("event=maildrop_corrupt", self.server.read_log())

    def test_bp_bv_and_q(self):
        r = self.run_sendmail("-bp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Mail queue is empty", r.stdout)
        r = self.run_sendmail("-bv", "alice", "nosuch@example.test", "x@elsewhere.test")
        self.assertEqual(r.returncode, 67, r.stdout + r.stderr)
        self.assertIn("alice@example.test... deliverable: mailbox", r.stdout)
        self.assertIn("nosuch@example.test... User unknown", r.stdout)
        self.assertIn("x@elsewhere.test... deliverable: remote", r.stdout)
        r = self.run_sendmail("-q")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bs_smtp_on_stdin(self):
        r = self.run_sendmail("-bs", stdin="EHLO me\r\nMAIL FROM:<joe@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                                           "DATA\r\nSubject: via -bs\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", r.stdout)
        m = self.messages("bob")[0].decode()
        self.assertIn("Subject: via -bs", m)
        self.assertTrue(m.endswith("\n.leading dot\n"), m)

    def test_bi_checks_the_aliases_file(self):
        aliases = os.path.join(self.server.tmp, "aliases")
        conf = os.path.join(self.server.tmp, "aliases.conf")
        with open(self.server.config) as f, open(conf, "w") as g:
            g.write(f.read() + f"aliases = {aliases}\n")
        with open(aliases, "w") as f:
            f.write("# test\npostmaster: alice\nstaff: alice,\n  bob\n")
        newaliases = os.path.join(self.server.tmp, "newaliases")
        os.symlink(BINARY, newaliases)
        r = subprocess.run([newaliases, "-C", conf], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{aliases}: 2 aliases", r.stdout)
        with open(aliases, "a") as f:
            f.write("broken line without colon\n")
        r = self.run_sendmail("-bi", "-C", conf)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(":5:", r.stderr)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_unprivileged_user(self):
        as_nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        if subprocess.run([*as_nobody, "test", "-x", BINARY]).returncode != 0:
            self.skipTest(f"nobody cannot run {BINARY}")
        os.chmod(self.server.tmp, 0o711)
        os.chmod(self.server.config, 0o644)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BUZON_CONFIG": self.server.config}
        r = self.run_sendmail("bob", stdin="Subject: from nobody\n\nhi\n", env=env, prefix=as_nobody)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.messages("bob")[0].decode()
        self.assertIn("(buzon sendmail, uid 65534)", m)
        self.assertIn("Return-Path: <nobody@example.test>", m)
        self.assertRegex(m, r"\nFrom: (.* <)?nobody@example.test>?\n")
        # Nobody may list the maildrop or read what others left there.
        st = os.stat(self.maildrop())
        self.assertEqual(st.st_mode & 0o7777, 0o1733)
        ls = subprocess.run([*as_nobody, "ls", self.maildrop()], capture_output=True, text=True)
        self.assertNotEqual(ls.returncode, 0)
        self.server.stop()
        r = self.run_sendmail("alice", stdin="secret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        [name] = os.listdir(self.maildrop())
        cat = subprocess.run([*as_nobody, "cat", os.path.join(self.maildrop(), name)], capture_output=True)
        # 0644 in a directory nobody can list: the random name is the secret.
        self.assertEqual(cat.returncode, 0)
        ls = subprocess.run([*as_nobody, "ls", self.maildrop()], capture_output=True, text=True)
        self.assertNotEqual(ls.returncode, 0)
        self.assertNotIn(name, ls.stdout)


class TestSendmailMbox(SendmailBase):
    mailbox = "mbox:{tmp}/spool/%n"

    def test_snail_reads_the_mbox(self):
        os.makedirs(os.path.join(self.server.tmp, "spool"), exist_ok=True)
        for i in (1, 2):
            r = self.run_sendmail("-i", "alice", stdin=f"Subject: mbox test {i}\n\nFrom the start of a line {i}\n")
            self.assertEqual(r.returncode, 0, r.stderr)
        mbox = os.path.join(self.server.tmp, "spool", "alice")
        def both_delivered():
            if not os.path.exists(mbox):
                return False
            with open(mbox, "rb") as f:
                return f.read().count(b"Subject: mbox test") == 2
        self.assertTrue(wait_for(both_delivered), self.server.read_log())
        env = {**os.environ, "HOME": self.server.tmp, "MAILRC": "/dev/null"}
        r = subprocess.run(["s-nail", "-:/", "-R", "-e", "-f", mbox], capture_output=True, text=True, env=env,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(["s-nail", "-:/", "-N", "-R", "-f", mbox], input="headers\np 2\nquit\n",
                           capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("mbox test 1", r.stdout)
        self.assertIn("mbox test 2", r.stdout)
        self.assertIn("From the start of a line 2", r.stdout)


if __name__ == "__main__":
    unittest.main()
