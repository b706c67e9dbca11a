"""buzon as a Unix citizen: systemd socket activation (systemd-socket-activate
passes the listening sockets), and what a service manager relies on."""

import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
import unittest

from harness import BINARY, Server, SpawningInetd, free_port, requires
from test_aliases import Sink, wait_for

ACTIVATE = shutil.which("systemd-socket-activate")


@requires(ACTIVATE, "systemd-socket-activate (package systemd)")
class SocketActivation(unittest.TestCase):
    def test_passed_sockets_are_used_by_name(self):
        s = Server()
        self.addCleanup(s.cleanup)
        smtp, sub = free_port(), free_port()
        # The config's own smtp.listen port stays unbound: the passed sockets replace it.
        p = subprocess.Popen([ACTIVATE, "-l", f"127.0.0.1:{smtp}", "-l", f"127.0.0.1:{sub}",
                              "--fdname=smtp:submission", os.path.join(os.path.dirname(__file__), "..",
                                                                         "target", "release", "buzon"),
                              "serve", "-c", s.config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        def stop():
            pid_file = os.path.join(s.tmp, "buzon.pid")
            if os.path.exists(pid_file):
                with open(pid_file) as f:
                    os.kill(int(f.read()), 15)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        deadline = time.time() + 10
        while True:
            try:
                c = smtplib.SMTP("127.0.0.1", smtp, timeout=10)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        with c:
            c.sendmail("x@remote.test", ["alice@example.test"], b"Subject: activated\r\n\r\nhi\r\n")
        # The second socket is the submission service: it wants AUTH before mail.
        with smtplib.SMTP("127.0.0.1", sub, timeout=10) as c:
            code, _ = c.ehlo()
            self.assertEqual(code, 250)
            self.assertEqual(c.docmd("MAIL FROM:<alice@example.test>")[0], 530)
        self.assertEqual(len(s.new_messages("alice")), 1)
        with self.assertRaises(OSError):
            smtplib.SMTP("127.0.0.1", s.port, timeout=2)
        stop()
        out = p.stdout.read().decode()
        self.assertIn("service=submission", out)
        self.assertIn("source=socket-activation", out)


class Reload(unittest.TestCase):
    """SIGHUP reads the configuration again: session settings apply to new connections, what needs
    a restart is logged and kept, a broken file changes nothing."""

    def test_sighup_reloads_the_configuration(self):
        s = Server()
        self.addCleanup(s.cleanup)
        s.start()
        def rcpt(addr):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
                c.ehlo()
                c.mail("x@remote.test")
                return c.rcpt(addr)[0]
        self.assertEqual(rcpt("alice@new.test"), 554)
        with open(s.passwd, "a") as f:
            f.write("alice@new.test:{PLAIN}x\n")
        with open(s.config) as f:
            conf = f.read()
        def hup_and_wait(text):
            n = s.read_log().count("event=sighup action=config")
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while s.read_log().count("event=sighup action=config") == n and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn(text, s.read_log().split("event=sighup action=config")[-1])
        with open(s.config, "w") as f:
            f.write(conf.replace("local_domains = example.test", "local_domains = example.test new.test")
                    + f"imap.listen = 127.0.0.1:{free_port()}\n")
        hup_and_wait('_reloaded applied="local_domains" need_restart="imap.listen"')
        self.assertEqual(rcpt("alice@new.test"), 250)
        with open(s.config, "a") as f:
            f.write("no_such_key = 1\n")
        hup_and_wait("_unchanged")
        self.assertEqual(rcpt("alice@new.test"), 250, "a broken file changes nothing")
        self.assertEqual(s.stop(), 0)


@unittest.skipUnless(os.geteuid() == 0 and not os.path.exists("/dev/log"),
                     "needs root and no system log daemon on /dev/log (the test plays that daemon)")
class Syslog(unittest.TestCase):
    def test_log_lines_go_to_dev_log_with_facility_mail(self):
        import socket
        daemon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        daemon.bind("/dev/log")
        self.addCleanup(os.unlink, "/dev/log")
        self.addCleanup(daemon.close)
        daemon.settimeout(10)
        s = Server(extra="log = syslog\n")
        self.addCleanup(s.cleanup)
        s.start()
        lines = []
        deadline = time.time() + 10
        while not any("event=start" in l for l in lines) and time.time() < deadline:
            lines.append(daemon.recv(4096).decode())
        start = [l for l in lines if "event=start" in l]
        self.assertTrue(start, lines)
        # <22>: facility mail (2) * 8 + severity info (6), then syslog(3)'s timestamp and tag.
        self.assertRegex(start[0], r"^<22>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d buzon\[\d+\]: info event=start")
        self.assertNotIn("event=start", s.read_log(), "nothing on standard error")


INETD = shutil.which("inetd")
BUZON = os.path.abspath(BINARY)


@requires(INETD, "inetd (package openbsd-inetd)")
class Inetd(unittest.TestCase):
    """A real inetd runs `buzon smtpd|imapd|pop3d --inetd` per connection."""

    def test_smtp_imap_pop3_one_process_per_connection(self):
        s = Server(extra="auth.cleartext_networks = 127.0.0.0/8\n")
        self.addCleanup(s.cleanup)
        smtp, imap, pop = free_port(), free_port(), free_port()
        conf = os.path.join(s.tmp, "inetd.conf")
        with open(conf, "w") as f:
            for port, cmd in ((smtp, "smtpd"), (imap, "imapd"), (pop, "pop3d")):
                f.write(f"127.0.0.1:{port} stream tcp nowait root {BUZON} buzon {cmd} --inetd -c {s.config}\n")
        p = subprocess.Popen([INETD, "-d", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def stop():
            p.terminate()
            p.wait(10)
        self.addCleanup(stop)
        deadline = time.time() + 10
        while True:
            try:
                c = smtplib.SMTP("127.0.0.1", smtp, timeout=10)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        with c:
            c.sendmail("x@remote.test", ["alice@example.test"], b"Subject: via inetd\r\n\r\nhello\r\n")
        m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
        m.login("alice@example.test", "secret-alice")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(data[0][1], b"Subject: via inetd\r\n\r\n")
        m.logout()
        # Nothing but protocol on the connection: the greeting is the first line.
        pc = poplib.POP3("127.0.0.1", pop, timeout=10)
        self.assertTrue(pc.getwelcome().startswith(b"+OK"), pc.getwelcome())
        pc.user("alice@example.test")
        pc.pass_("secret-alice")
        self.assertEqual(pc.stat()[0], 1)
        pc.quit()
        # Usage errors are not written to a connection either: the exit status says it.
        r = subprocess.run([BUZON, "imapd", "-c", s.config], capture_output=True)
        self.assertEqual(r.returncode, 64)


class InetdStreams(unittest.TestCase):
    """`--inetd` serves whatever stream is on descriptors 0 and 1: a unix socketpair (socat EXEC,
    s6), a pipe pair for a try by hand; and says on standard error what is wrong otherwise."""

    def setUp(self):
        self.s = Server()
        self.addCleanup(self.s.cleanup)
        os.makedirs(os.path.join(self.s.tmp, "data"), exist_ok=True)

    def maildir_new(self):
        new = os.path.join(self.s.tmp, "mail", "example.test", "alice", "Maildir", "new")
        return os.listdir(new) if os.path.isdir(new) else []

    def test_a_pipe_pair(self):
        script = (b"EHLO by.hand\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
                  b"DATA\r\nSubject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        r = subprocess.run([BUZON, "smtpd", "--inetd", "-c", self.s.config], input=script,
                           capture_output=True, timeout=30, env={**os.environ, "TCPREMOTEIP": "192.0.2.9"})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"220 "), r.stdout)
        self.assertIn(b"221 2.0.0 Bye", r.stdout)
        self.assertEqual(len(self.maildir_new()), 1)
        with open(os.path.join(self.s.tmp, "mail", "example.test", "alice", "Maildir", "new",
                               self.maildir_new()[0]), "rb") as f:
            self.assertIn(b"192.0.2.9", f.read(), "the peer from TCPREMOTEIP is in the Received header")

    def test_a_unix_socketpair(self):
        ours, theirs = socket.socketpair()
        p = subprocess.Popen([BUZON, "pop3d", "--inetd", "-c", self.s.config], stdin=theirs, stdout=theirs,
                             stderr=subprocess.PIPE)
        theirs.close()
        ours.settimeout(10)
        f = ours.makefile("rb")
        self.assertTrue(f.readline().startswith(b"+OK"))
        ours.sendall(b"CAPA\r\n")
        caps = []
        while True:
            line = f.readline()
            caps.append(line)
            if line == b".\r\n":
                break
        self.assertIn(b"UIDL\r\n", caps)
        ours.sendall(b"QUIT\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        f.close()
        ours.close()
        self.assertEqual(p.wait(10), 0, p.stderr.read())

    def test_a_listening_socket_is_refused_with_a_reason(self):
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen()
        r = subprocess.run([BUZON, "smtpd", "--inetd", "-c", self.s.config], stdin=l, capture_output=True,
                           timeout=30)
        l.close()
        self.assertEqual(r.returncode, 66)
        self.assertIn(b"listening socket", r.stderr)
        self.assertIn(b"nowait", r.stderr)

    def test_a_broken_config_is_said_on_standard_error(self):
        bad = os.path.join(self.s.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("no_such_key = 1\n")
        r = subprocess.run([BUZON, "smtpd", "--inetd", "-c", bad], input=b"", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"no_such_key", r.stderr)


class InetdBesideTheServer(unittest.TestCase):
    """inetd-mode sessions (each its own process) and a running server share one data_dir and queue
    at the same time. A session's start must not remove the message file another process has just
    queued but not yet given its envelope: every message answered 250 is delivered."""

    def test_concurrent_enqueues_from_inetd_and_the_server_lose_nothing(self):
        sink_port = free_port()
        s = Server(extra=f"relay.networks = 127.0.0.0/8\nrelay.smarthost = 127.0.0.1:{sink_port}\n"
                         "relay.smarthost_tls = none\nqueue.min_backoff = 1s\n")
        self.addCleanup(s.cleanup)
        sink = Sink(sink_port)
        self.addCleanup(sink.stop)
        s.start()
        inetd = SpawningInetd(s.config, "smtpd")
        self.addCleanup(inetd.stop)
        accepted, errors, lock = set(), [], threading.Lock()

        def client(n, port):
            for i in range(25):
                subject = f"msg-{n}-{i}"
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                        c.sendmail("x@other.test", [f"r{n}@remote.test"],
                                   f"Subject: {subject}\r\n\r\nbody {subject}\r\n".encode())
                    with lock:
                        accepted.add(subject)  # answered 250
                except (OSError, smtplib.SMTPException) as e:
                    with lock:
                        errors.append(f"{subject}: {e!r}")

        # Three clients through inetd (a new process, and so a new queue open, per message) and two
        # through the server, all at once.
        threads = [threading.Thread(target=client, args=(n, inetd.port if n < 3 else s.port)) for n in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        def delivered():
            got = set()
            for _, _, data in list(sink.got):
                for line in data.decode("utf-8", "replace").splitlines():
                    if line.startswith("Subject: "):
                        got.add(line[len("Subject: "):].strip())
            return got

        try:
            wait_for(lambda: accepted <= delivered(), "every accepted message at the smarthost", timeout=60)
        except AssertionError:
            missing = sorted(accepted - delivered())
            self.fail(f"{len(missing)} messages answered 250 were lost: {missing[:10]}\n"
                      + "\n".join(l for l in s.read_log().splitlines() if "queue" in l and "error" in l)[-3000:])
        # Nor does one session's start break another's enqueue (a 451 for a message it was writing).
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted), 125)


if __name__ == "__main__":
    unittest.main()
