"""buzon as a Unix citizen: systemd socket activation (systemd-socket-activate
passes the listening sockets), and what a service manager relies on."""

import os
import shutil
import smtplib
import subprocess
import time
import unittest

from harness import Server, free_port

ACTIVATE = shutil.which("systemd-socket-activate")


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed")
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


if __name__ == "__main__":
    unittest.main()
