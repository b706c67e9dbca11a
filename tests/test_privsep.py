"""Privilege separation, as root: the server drops to `user =` and a small root
helper delivers into system users' mailboxes with their ownership (Maildir in
the home, 0600; mbox in a root:mail 2775 spool, user:mail 0660), and checks
their passwords; names cannot lead outside the mail root."""

import grp
import imaplib
import poplib
import threading
import os
import pwd
import shutil
import smtplib
import stat
import subprocess
import tempfile
import time
import unittest

from harness import Server, free_port

ROOT = os.geteuid() == 0 and shutil.which("useradd") is not None


def useradd(name, home):
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    os.makedirs(home, exist_ok=True)
    pw = pwd.getpwnam(name)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)
    return pw


def userdel(name):
    """userdel refuses a user who still has a process: a mail process ends a moment after the
    server; wait for it (and end it if it lingers), then delete."""
    for _ in range(50):
        if subprocess.run(["userdel", name], capture_output=True).returncode in (0, 6):
            return
        time.sleep(0.1)
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    time.sleep(0.2)
    subprocess.run(["userdel", name], capture_output=True)


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(p))
            except OSError:
                pass
    return out


@unittest.skipUnless(ROOT, "needs root and useradd")
class PrivilegedHelper(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="buzon-privsep-")
        os.chmod(self.base, 0o755)
        tag = str(os.getpid())[-5:]
        self.names = {"srv": f"bzsrv{tag}", "a": f"bza{tag}", "b": f"bzb{tag}"}
        self.pw = {}
        for k, n in self.names.items():
            self.addCleanup(userdel, n)
            self.pw[k] = useradd(n, os.path.join(self.base, "home", n))
        self.addCleanup(shutil.rmtree, self.base, True)

    def serve(self, mailbox, extra=""):
        s = Server(users=(), mailbox=mailbox, domain="example.test",
                   extra=f"users = system\nuser = {self.names['srv']}\n{extra}")
        # Server() writes `users = file:`; the later `users = system` would be a duplicate key.
        with open(s.config) as f:
            conf = "".join(l for l in f if not l.startswith("users = file:"))
        with open(s.config, "w") as f:
            f.write(conf)
        os.chmod(s.tmp, 0o755)  # the server's user reaches data_dir through it, as through /var/lib
        self.addCleanup(s.cleanup)
        s.start()
        return s

    def send(self, s, *users):
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail("x@remote.test", [f"{self.names[u]}@example.test" for u in users],
                       b"Subject: privsep\r\n\r\nhello\r\n")

    def check_dropped(self, s):
        # The port answers from the bind on, a moment before the drop: wait for it.
        deadline = time.time() + 10
        while "event=start " not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)
        uids = proc_uid(s.proc.pid)
        self.assertEqual(set(uids), {self.pw["srv"].pw_uid}, "the server runs as `user`, all four uids")
        helpers = [p for p in children(s.proc.pid) if proc_uid(p) and proc_uid(p)[1] == 0]
        self.assertEqual(len(helpers), 1, "one root helper")
        self.assertIn("event=privileges_dropped", s.read_log())

    def test_maildir_in_homes(self):
        s = self.serve("maildir:~/Maildir")
        self.check_dropped(s)
        self.send(s, "a", "b")
        for u in ("a", "b"):
            new = os.path.join(self.pw[u].pw_dir, "Maildir", "new")
            files = os.listdir(new)
            self.assertEqual(len(files), 1, u)
            st = os.stat(os.path.join(new, files[0]))
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (self.pw[u].pw_uid, 0o600), u)
            d = os.stat(os.path.join(self.pw[u].pw_dir, "Maildir"))
            self.assertEqual((d.st_uid, stat.S_IMODE(d.st_mode)), (self.pw[u].pw_uid, 0o700), u)

    def test_mbox_in_a_mail_spool(self):
        spool = os.path.join(self.base, "spool")
        os.mkdir(spool)
        mail = grp.getgrnam("mail").gr_gid
        os.chown(spool, 0, mail)
        os.chmod(spool, 0o2775)
        s = self.serve(f"mbox:{spool}/%n")
        self.check_dropped(s)
        self.send(s, "a")
        self.send(s, "a", "b")
        for u, n in (("a", 2), ("b", 1)):
            path = os.path.join(spool, self.names[u])
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (self.pw[u].pw_uid, mail, 0o660), u)
            with open(path, "rb") as f:
                self.assertEqual(f.read().count(b"\nSubject: privsep"), n, u)

    def test_the_helper_writes_with_the_owners_rights_only(self):
        # A home its owner cannot write stays untouched: the helper is root, but it writes as the
        # owner, so the message is refused, not written with root's rights.
        os.chmod(self.pw["a"].pw_dir, 0o500)
        s = self.serve("maildir:~/Maildir")
        with self.assertRaises(smtplib.SMTPDataError) as e:
            self.send(s, "a")
        self.assertIn(b"mailbox unavailable", e.exception.smtp_error)
        self.assertFalse(os.path.exists(os.path.join(self.pw["a"].pw_dir, "Maildir")))
        self.assertIn("Permission denied", s.read_log())


    def test_a_slow_delivery_does_not_hold_up_logins(self):
        # The helper checks passwords and delivers on separate workers and channels, and every
        # answer carries its request's id: while a delivery waits on a held mbox lock, a wrong
        # password is refused and a right one accepted, at once and in that order.
        spool = os.path.join(self.base, "spool")
        os.mkdir(spool)
        os.chown(spool, 0, grp.getgrnam("mail").gr_gid)
        os.chmod(spool, 0o2775)
        for u in ("a", "b"):
            subprocess.run(["chpasswd"], input=f"{self.names[u]}:pw-{u}\n", text=True, check=True)
        imap_port = free_port()
        s = self.serve(f"mbox:{spool}/%n", extra=f"imap.listen = 127.0.0.1:{imap_port}\n"
                       "auth.cleartext_networks = 127.0.0.0/8\nmbox.lock_timeout = 60s\n")
        lock = os.path.join(spool, self.names["a"]) + ".lock"
        open(lock, "w").close()
        result = {}

        def send():
            try:
                self.send(s, "a")
                result["sent"] = True
            except Exception as e:  # reported below
                result["sent"] = e
        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(1)  # the delivery is now waiting on the lock, inside the helper
            self.assertNotIn("sent", result, "the delivery waits for the lock")
            for _ in range(2):
                with imaplib.IMAP4("127.0.0.1", imap_port, timeout=20) as m:
                    with self.assertRaises(imaplib.IMAP4.error):
                        m.login(self.names["b"], "pw-a")
                with imaplib.IMAP4("127.0.0.1", imap_port, timeout=20) as m:
                    self.assertEqual(m.login(self.names["b"], "pw-b")[0], "OK")
            self.assertNotIn("sent", result, "the logins were answered while the delivery waited")
        finally:
            os.unlink(lock)
            sender.join(60)
        self.assertIs(result.get("sent"), True, result)
        with open(os.path.join(spool, self.names["a"]), "rb") as f:
            self.assertEqual(f.read().count(b"\nSubject: privsep"), 1)


    def test_pop3_reads_only_the_listed_files_when_cur_is_swapped(self):
        # As root without `user`: a user who lists a file named "shadow" in their cur/, then swaps
        # cur/ for a symlink to /etc, must get their own file from RETR, never /etc/shadow.
        subprocess.run(["chpasswd"], input=f"{self.names['a']}:pw-a\n", text=True, check=True)
        home = self.pw["a"].pw_dir
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(home, "Maildir", d))
        mine = os.path.join(home, "Maildir", "cur", "shadow")
        with open(mine, "wb") as f:
            f.write(b"Subject: mine\n\nmy own file\n")
        for root, dirs, files in os.walk(os.path.join(home, "Maildir")):
            for n in dirs + files + [""]:
                os.lchown(os.path.join(root, n), self.pw["a"].pw_uid, self.pw["a"].pw_gid)
        pop_port = free_port()
        s = Server(users=(), mailbox="maildir:~/Maildir", domain="example.test",
                   extra=f"users = system\npop3.listen = 127.0.0.1:{pop_port}\n"
                   "auth.cleartext_networks = 127.0.0.0/8\n")
        with open(s.config) as f:
            conf = "".join(l for l in f if not l.startswith("users = file:"))
        with open(s.config, "w") as f:
            f.write(conf)
        self.addCleanup(s.cleanup)
        s.start()
        p = poplib.POP3("127.0.0.1", pop_port, timeout=20)
        try:
            p.user(self.names["a"])
            p.pass_("pw-a")
            self.assertEqual(p.stat()[0], 1)
            maildir = os.path.join(home, "Maildir")
            os.rename(os.path.join(maildir, "cur"), os.path.join(maildir, "cur.real"))
            os.symlink("/etc", os.path.join(maildir, "cur"))
            lines = p.retr(1)[1]
            self.assertIn(b"my own file", lines)
            self.assertFalse(any(l.startswith(b"root:") for l in lines), lines)
            p.dele(1)
            p.quit()
        finally:
            p.close()
        self.assertTrue(os.path.exists("/etc/shadow"))
        self.assertEqual(os.listdir(os.path.join(home, "Maildir", "cur.real")), [])


class Traversal(unittest.TestCase):
    def test_names_cannot_leave_the_mail_root(self):
        # Accounts whose names would make a path: quoted local parts reach the resolver, which
        # refuses to put such a name into a mailbox template.
        s = Server(users=("alice", "../../evil", ".hidden", "a/b"), mailbox="maildir:{tmp}/mail/%d/%n/Maildir")
        self.addCleanup(s.cleanup)
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.ehlo()
            c.mail("x@remote.test")
            for bad in ('"../../evil"@example.test', '".hidden"@example.test', '"a/b"@example.test'):
                code, text = c.docmd(f"RCPT TO:<{bad}>")
                self.assertEqual(code, 550, (bad, text))
                self.assertIn(b"cannot be used in a mailbox path", text)
            self.assertEqual(c.rcpt("alice@example.test")[0], 250)
            self.assertEqual(c.data(b"Subject: x\r\n\r\nx\r\n")[0], 250)
        found = []
        for p, dirs, files in os.walk(s.tmp):
            found += [os.path.join(p, d) for d in dirs if "evil" in d or d == ".hidden"]
        self.assertEqual(found, [])


if __name__ == "__main__":
    unittest.main()
