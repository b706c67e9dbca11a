"""System users over IMAP and POP3 in the shipped configuration (users = system, user = <service
user>, mailbox = maildir:~/Maildir), as root with users made by useradd: the server drops root and
each user's sessions run in a mail process of that user's own, started by the root helper, while
the server keeps the TLS connection and relays. Real clients: imaplib, poplib, mbsync, fetchmail;
~/.forward read as its owner."""

import imaplib
import os
import poplib
import pwd
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import Server, free_port, run_buzon
from test_privsep import children, proc_uid, useradd, userdel

ROOT = os.geteuid() == 0 and shutil.which("useradd") is not None
CTX = ssl._create_unverified_context()


def proc_groups(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Groups:"):
                return {int(x) for x in line.split()[1:]}
    return set()


SEQ = iter(range(1000))


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


@unittest.skipUnless(ROOT, "needs root and useradd (CI runs as root)")
class SystemUsers(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="buzon-mailproc-")
        os.chmod(self.base, 0o755)
        tag = f"{str(os.getpid())[-5:]}x{next(SEQ)}"
        self.names = {"srv": f"bmsrv{tag}", "a": f"bma{tag}", "b": f"bmb{tag}"}
        self.pw = {}
        for k, n in self.names.items():
            self.addCleanup(userdel, n)
            self.pw[k] = useradd(n, os.path.join(self.base, "home", n))
        self.addCleanup(shutil.rmtree, self.base, True)
        for u in ("a", "b"):
            subprocess.run(["chpasswd"], input=f"{self.names[u]}:pw-{u}\n", text=True, check=True)
        self.ports = {k: free_port() for k in ("imap", "imaps", "pop3", "pop3s")}
        s = Server(users=(), mailbox="maildir:~/Maildir", domain="example.test",
                   extra=f"users = system\nuser = {self.names['srv']}\n"
                   + "".join(f"{k}.listen = 127.0.0.1:{p}\n" for k, p in self.ports.items()))
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config) as f:
            conf = "".join(l for l in f if not l.startswith("users = file:"))
        with open(s.config, "w") as f:
            f.write(conf + f"tls.cert = {cert}\ntls.key = {key}\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.cert = cert
        os.chmod(s.tmp, 0o755)
        self.addCleanup(s.cleanup)
        self.server = s
        s.start()
        deadline = time.time() + 10
        while "event=start " not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)

    def user(self, u):
        return self.names[u]

    def send(self, u, subject, body=b"hello\r\n"):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=30) as c:
            c.sendmail("x@remote.test", [f"{self.user(u)}@example.test"],
                       b"Subject: " + subject.encode() + b"\r\n\r\n" + body)

    def imap(self, u, implicit):
        if implicit:
            m = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=CTX, timeout=20)
        else:
            m = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=20)
            m.starttls(ssl_context=CTX)
        m.login(self.user(u), f"pw-{u}")
        return m

    def pop(self, u, implicit):
        if implicit:
            p = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=CTX, timeout=20)
        else:
            p = poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=20)
            p.stls(context=CTX)
        p.user(self.user(u))
        p.pass_(f"pw-{u}")
        return p

    def mail_processes(self, u):
        uid = self.pw[u].pw_uid
        return [p for p in descendants(self.server.proc.pid) if proc_uid(p) == [uid] * 4]

    def maildir(self, u, sub):
        return os.path.join(self.pw[u].pw_dir, "Maildir", sub)

    def test_imap_read_flag_expunge_append_over_starttls_and_imaps(self):
        self.send("a", "one")
        self.send("a", "two")
        for implicit in (False, True):
            with self.subTest(imaps=implicit):
                m = self.imap("a", implicit)
                typ, data = m.select("INBOX")
                self.assertEqual(typ, "OK")
                n = int(data[0])
                self.assertEqual(n, 2 if not implicit else 2)
                typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertIn(b"Subject: one", data[0][1])
                self.assertEqual(m.store("1", "+FLAGS", "(\\Flagged)")[0], "OK")
                typ, data = m.fetch("1", "(FLAGS)")
                self.assertIn(b"\\Flagged", data[0])
                typ, data = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nmine\r\n")
                self.assertEqual(typ, "OK", data)
                m.store("3", "+FLAGS", "(\\Deleted)")
                typ, data = m.expunge()
                self.assertEqual((typ, data), ("OK", [b"3"]))
                m.logout()
        # The flag is in the file name, written by the user's own process: the file is the user's.
        files = os.listdir(self.maildir("a", "cur")) + os.listdir(self.maildir("a", "new"))
        self.assertEqual(len(files), 2, files)
        for d in ("cur", "new"):
            for f in os.listdir(self.maildir("a", d)):
                self.assertEqual(os.stat(os.path.join(self.maildir("a", d), f)).st_uid, self.pw["a"].pw_uid)
        self.assertTrue(any(f.endswith("F") or ",F" in f for f in os.listdir(self.maildir("a", "cur"))))
        self.assertIn("in=mailproc", self.server.read_log())

    def test_pop3_over_stls_and_pop3s(self):
        for i in range(3):
            self.send("b", f"pop {i}")
        p = self.pop("b", implicit=False)
        self.assertEqual(p.stat()[0], 3)
        self.assertIn(b"Subject: pop 0", b"\n".join(p.retr(1)[1]))
        self.assertIn(b"Subject: pop 1", b"\n".join(p.top(2, 0)[1]))
        p.dele(1)
        p.quit()
        p = self.pop("b", implicit=True)
        self.assertEqual(p.stat()[0], 2)
        p.dele(1)
        p.quit()
        p = self.pop("b", implicit=True)
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        # A second login while the maildrop is locked: [IN-USE], and the session may try again.
        p1 = self.pop("b", implicit=True)
        p2 = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=CTX, timeout=20)
        p2.user(self.user("b"))
        with self.assertRaises(poplib.error_proto) as e:
            p2.pass_("pw-b")
        self.assertIn(b"IN-USE", e.exception.args[0])
        p2.quit()
        p1.quit()

    def test_sessions_run_as_the_user_in_one_process_per_user(self):
        self.send("a", "x")
        m1, m2 = self.imap("a", True), self.imap("a", False)
        mb = self.imap("b", True)
        for m in (m1, m2, mb):
            m.select("INBOX")
        procs_a, procs_b = self.mail_processes("a"), self.mail_processes("b")
        self.assertEqual(len(procs_a), 1, "both of a's sessions in one process")
        self.assertEqual(len(procs_b), 1)
        groups = proc_groups(procs_a[0])
        self.assertEqual(groups, {self.pw["a"].pw_gid}, "a's own groups, nothing of root's or b's")
        self.assertEqual(os.readlink(f"/proc/{procs_a[0]}/cwd"), self.pw["a"].pw_dir)
        # A fresh image (nothing of the helper's memory), holding no listener and no client socket
        # of its own: its control socket on 3, the sessions' socket pairs, /dev/null on 0 and 1.
        with open(f"/proc/{procs_a[0]}/cmdline", "rb") as f:
            self.assertEqual(f.read().split(b"\0")[1:3], [b"mail-process", self.user("a").encode()])
        fds = {int(n): os.readlink(f"/proc/{procs_a[0]}/fd/{n}") for n in os.listdir(f"/proc/{procs_a[0]}/fd")}
        self.assertEqual((fds[0], fds[1]), ("/dev/null", "/dev/null"))
        inodes = {v for k, v in fds.items() if v.startswith("socket:")}
        with open("/proc/net/tcp") as f:
            tcp = {"socket:[%s]" % line.split()[9] for line in f.readlines()[1:]}
        self.assertEqual(inodes & tcp, set(), "no TCP socket (listener or client) in the mail process")
        # The server itself still runs as the service user and cannot open a's mail.
        self.assertEqual(proc_uid(self.server.proc.pid), [self.pw["srv"].pw_uid] * 4)
        for m in (m1, m2, mb):
            m.logout()

    def test_idle_sessions_of_a_system_user_hold_no_threads_and_hear_of_mail(self):
        """Twelve IDLE sessions of one system user (their mail process's event loop, as the
        server's): no thread each in the mail process or the server, which relays them as parked
        connections; a delivery reaches every one as `* N EXISTS` (inotify in the mail process)."""
        self.send("a", "before")
        sessions = []
        for i in range(12):
            m = self.imap("a", i % 2 == 0)
            m.select("INBOX")
            tag = m._new_tag()
            m.send(tag + b" IDLE\r\n")
            self.assertTrue(m.readline().startswith(b"+"), "IDLE is running")
            sessions.append((m, tag))
        procs = self.mail_processes("a")
        self.assertEqual(len(procs), 1)
        threads = len(os.listdir(f"/proc/{procs[0]}/task"))
        self.assertLessEqual(threads, 6, f"the mail process runs {threads} threads for 12 IDLE sessions")
        server_threads = len(os.listdir(f"/proc/{self.server.proc.pid}/task"))
        self.send("a", "during")
        for m, tag in sessions:
            m.sock.settimeout(10)
            line = m.readline()
            while line.startswith(b"* OK") or b"RECENT" in line:
                line = m.readline()
            self.assertRegex(line, rb"^\* 2 EXISTS", "the delivery reached the IDLE session")
            m.send(b"DONE\r\n")
            while not m.readline().startswith(tag):
                pass
            m.logout()
        self.assertLessEqual(server_threads, 16, f"the server ran {server_threads} threads meanwhile")

    def test_imap_and_pop3_under_inetd(self):
        # inetd mode, as root with `user`: the session process drops root, the helper it forked
        # starts the mail process, which must not keep the client's socket (descriptors 0-2 there).
        from harness import SpawningInetd
        self.send("a", "via inetd")
        imapd = SpawningInetd(self.server.config, "imapd")
        self.addCleanup(imapd.stop)
        m = imaplib.IMAP4("127.0.0.1", imapd.port, timeout=20)
        m.starttls(ssl_context=CTX)
        m.login(self.user("a"), "pw-a")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"Subject: via inetd", data[0][1])
        m.logout()
        pop3d = SpawningInetd(self.server.config, "pop3d")
        self.addCleanup(pop3d.stop)
        p = poplib.POP3("127.0.0.1", pop3d.port, timeout=20)
        p.stls(context=CTX)
        p.user(self.user("a"))
        p.pass_("pw-a")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        # The connection ends with the session, though the mail process lingers a while.
        t0 = time.time()
        for proc in imapd.procs + pop3d.procs:
            proc.wait(10)
        self.assertLess(time.time() - t0, 5)

    def test_a_mail_process_is_only_started_by_the_helper(self):
        r = subprocess.run([self.server_binary(), "mail-process", self.user("a"), "--stderr"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 64)
        self.assertIn("never runs as root", r.stderr)

    def server_binary(self):
        from harness import BINARY
        return BINARY

    def test_a_stalled_mail_process_is_replaced(self):
        # A mail process that stops answering (here: SIGSTOP) does not take the user's mail with it:
        # the helper gives it a few seconds to take the next session, then kills it and starts another.
        self.send("a", "still here")
        m = self.imap("a", True)
        m.select("INBOX")
        [stalled] = self.mail_processes("a")
        os.kill(stalled, 19)  # SIGSTOP
        try:
            t0 = time.time()
            m2 = self.imap("a", True)
            typ, data = m2.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            self.assertLess(time.time() - t0, 15)
            m2.logout()
            self.assertNotIn(stalled, self.mail_processes("a"), "the stalled process was killed")
            self.assertIn("event=mailproc_replaced", self.server.read_log())
        finally:
            try:
                os.kill(stalled, 18)  # SIGCONT, should it still exist
            except ProcessLookupError:
                pass
        with self.assertRaises((imaplib.IMAP4.abort, OSError, EOFError)):
            m.noop()

    def test_a_user_can_never_reach_another_users_files(self):
        self.send("b", "secret of b")
        m = self.imap("a", True)
        b_home = self.pw["b"].pw_dir
        for name in (f"../{self.user('b')}/Maildir", f"{b_home}/Maildir", "../../.."):
            typ, _ = m.select(f'"{name}"')
            self.assertEqual(typ, "NO", name)
            typ, _ = m.create(f'"{name}/x"')
            self.assertEqual(typ, "NO", name)
        typ, data = m.list('""', '"*"')
        self.assertNotIn(self.user("b").encode(), b"".join(d for d in data if d))
        m.logout()
        self.assertEqual(len(os.listdir(os.path.join(b_home, "Maildir", "new"))), 1)
        self.assertEqual(sorted(os.listdir(b_home)), ["Maildir"])

    def test_mbsync_and_fetchmail(self):
        self.assertTrue(shutil.which("mbsync") and shutil.which("fetchmail"), ".ci/run installs isync and fetchmail")
        self.send("a", "for mbsync")
        near = os.path.join(self.server.tmp, "near")
        os.makedirs(near)
        rc = os.path.join(self.server.tmp, "mbsyncrc")
        with open(rc, "w") as f:
            f.write(f"IMAPAccount a\nHost 127.0.0.1\nPort {self.ports['imaps']}\nSSLType IMAPS\n"
                    f"CertificateFile {self.cert}\nUser {self.user('a')}\nPass pw-a\nAuthMechs LOGIN PLAIN\n"
                    "Timeout 20\n\nIMAPStore remote\nAccount a\n\n"
                    f"MaildirStore local\nPath {near}/\nInbox {near}/INBOX\nSubFolders Verbatim\n\n"
                    "Channel a\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nSyncState *\n")
        r = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = b""
        for d in ("cur", "new"):
            for name in os.listdir(os.path.join(near, "INBOX", d)):
                with open(os.path.join(near, "INBOX", d, name), "rb") as f:
                    got += f.read()
        self.assertIn(b"Subject: for mbsync", got)

        self.send("b", "for fetchmail")
        out = os.path.join(self.server.tmp, "fetched.mbox")
        mda = os.path.join(self.server.tmp, "mda.sh")
        with open(mda, "w") as f:
            f.write(f"#!/bin/sh\ncat >> {out}\n")
        os.chmod(mda, 0o755)
        frc = os.path.join(self.server.tmp, "fetchmailrc")
        with open(frc, "w") as f:
            f.write(f"poll 127.0.0.1 protocol pop3 service {self.ports['pop3s']} user '{self.user('b')}' "
                    f"password 'pw-b' ssl no sslcertck mda '{mda}'\n")
        os.chmod(frc, 0o600)
        env = {**os.environ, "HOME": self.server.tmp, "FETCHMAILHOME": self.server.tmp}
        r = subprocess.run(["fetchmail", "-f", frc, "--nodetach", "--nosyslog", "--nokeep", "--all"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out, "rb") as f:
            self.assertIn(b"Subject: for fetchmail", f.read())
        self.assertEqual(os.listdir(self.maildir("b", "new")) + os.listdir(self.maildir("b", "cur")), [])

    def test_forward_is_read_as_its_owner(self):
        # a's home is 0700: only a (and the helper acting as a) can read a's .forward.
        fwd = os.path.join(self.pw["a"].pw_dir, ".forward")
        with open(fwd, "w") as f:
            f.write(f"{self.user('b')}@example.test\n")
        os.chown(fwd, self.pw["a"].pw_uid, self.pw["a"].pw_gid)
        os.chmod(fwd, 0o600)
        self.send("a", "forwarded")
        files = os.listdir(self.maildir("b", "new"))
        self.assertEqual(len(files), 1, "a's mail went where a's .forward says")
        self.assertFalse(os.path.exists(self.maildir("a", "new")) and os.listdir(self.maildir("a", "new")))
        self.assertNotIn("forward_ignored", self.server.read_log())


if __name__ == "__main__":
    unittest.main()
