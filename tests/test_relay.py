"""The post office: buzon instances on 127.0.0.2 and 127.0.0.3 find each
other through a real DNS server (dnsmasq) and relay mail between them, with
MX fallback, retries, bounces (RFC 3464 DSNs read back with Python's email
package) and a kill -9 in the middle. Every address is loopback."""

import email
import email.policy
import os
import shutil
import signal
import smtplib
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BINARY, Server, free_port, requires, run_buzon

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def free_port_on(*hosts):
    """A port number free on every host (UDP and TCP), for instances that reach each other by MX."""
    for _ in range(50):
        p = free_port(hosts[0])
        ok = True
        for h in hosts:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((h, p))
                    except OSError:
                        ok = False
        if ok:
            return p
    raise RuntimeError("no common free port")


class Dns:
    """dnsmasq on 127.0.0.1:<port>, authoritative for *.test (unknown names: NXDOMAIN)."""

    def __init__(self, records):
        self.port = free_port_on("127.0.0.1")
        args = [DNSMASQ, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--local=/test/", "--log-facility=-",
                "--user=root" if os.geteuid() == 0 else "--user=" + os.environ.get("USER", "nobody"),
                "--pid-file=", *records]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq failed: " + self.proc.stderr.read().decode())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stderr.close()


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
class Relay(unittest.TestCase):

    def setUp(self):
        self.port = free_port_on("127.0.0.2", "127.0.0.3")
        self.dns = Dns([
            "--mx-host=a.test,mx.a.test,10", "--host-record=mx.a.test,127.0.0.2",
            "--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3",
            # fallback.test: the preferred MX is down (nothing listens on 127.0.0.4)
            "--mx-host=fallback.test,down.fallback.test,10", "--host-record=down.fallback.test,127.0.0.4",
            "--mx-host=fallback.test,mx.b.test,20",
            # implicit.test has no MX, only an address
            "--host-record=implicit.test,127.0.0.3",
            "--mx-host=nullmx.test,.,0",
            # loop.test names this very host (mx.a.test) as its only exchanger
            "--mx-host=loop.test,mx.a.test,10",
        ])
        self.addCleanup(self.dns.stop)
        common = (f"dns.servers = 127.0.0.1:{self.dns.port}\noutbound.port = {self.port}\n"
                  "relay.networks = 127.0.0.0/8\nqueue.min_backoff = 1s\nqueue.max_backoff = 2s\n"
                  "outbound.tls = none\n")
        self.a = Server(host="127.0.0.2", port=self.port, domain="a.test", users=("pepe",), extra=common)
        self.b = Server(host="127.0.0.3", port=self.port, domain="b.test", users=("maria",),
                        also=("fallback.test", "implicit.test"), extra=common)
        for s in (self.a, self.b):
            self.addCleanup(s.cleanup)
        self.b.start()
        self.a.start()

    def send(self, to, body=b"Subject: hola\r\n\r\nHola Maria.\r\n", sender="pepe@a.test"):
        with smtplib.SMTP("127.0.0.2", self.port) as c:
            return c.sendmail(sender, to, body)

    def dsn_for_pepe(self):
        msgs = self.a.new_messages("pepe")
        return msgs[0] if msgs else None

    def test_pepe_to_maria_end_to_end(self):
        self.send(["maria@b.test"])
        [m] = wait_for(lambda: self.b.new_messages("maria"), what="delivery at b")
        msg = email.message_from_bytes(m, policy=email.policy.default)
        self.assertEqual(msg["Return-Path"], "<pepe@a.test>")
        received = msg.get_all("Received")
        self.assertEqual(len(received), 2, received)
        self.assertIn("by mx.b.test (buzon)", received[0])
        self.assertIn("by mx.a.test (buzon)", received[1])
        self.assertEqual(msg.get_content().strip(), "Hola Maria.")
        self.assertEqual(m.count(b"Return-Path:"), 1, "relaying leaves Return-Path out")
        log = wait_for(lambda: "status=sent" in self.a.read_log() and self.a.read_log(), what="sent log line")
        self.assertRegex(log, rf"to=<maria@b\.test> relay=mx\.b\.test\[127\.0\.0\.3\]:{self.port} delay=[\d.]+ "
                              r"status=sent \(250 2\.0\.0 Ok: queued as [0-9A-F]{16}\)")
        wait_for(lambda: "event=removed" in self.a.read_log(), what="queue entry removed")
        self.assertEqual(run_buzon("queue", "list", "-c", self.a.config).stdout.strip(), "Mail queue is empty")

    def test_mx_fallback_and_implicit_mx(self):
        self.send(["maria@fallback.test", "maria@implicit.test"])
        wait_for(lambda: len(self.b.new_messages("maria", "fallback.test")) == 1, what="fallback delivery")
        wait_for(lambda: len(self.b.new_messages("maria", "implicit.test")) == 1, what="implicit MX delivery")
        log = self.a.read_log()
        self.assertIn("relay=down.fallback.test[127.0.0.4]", log)
        self.assertIn("event=try_next", log)

    def test_unknown_user_bounces_with_a_dsn(self):
        self.send(["nobody@b.test"], body=b"Subject: to nobody\r\nMessage-ID: <x1@a.test>\r\n\r\nlost\r\n")
        dsn = wait_for(self.dsn_for_pepe, what="a DSN for pepe")
        msg = email.message_from_bytes(dsn, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["Return-Path"], "<>")
        self.assertIn("MAILER-DAEMON@mx.a.test", msg["From"])
        parts = [p.get_content_type() for p in msg.iter_parts()]
        self.assertEqual(parts[:2], ["text/plain", "message/delivery-status"])
        status = dsn.decode("utf-8", "replace")
        self.assertIn("Final-Recipient: rfc822; nobody@b.test", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertIn("Action: failed", status)
        self.assertIn("Subject: to nobody", status, "the original headers come back")
        self.assertNotIn("lost", status.split("Subject: to nobody", 1)[1], "but not the body")

    def test_nxdomain_and_null_mx_bounce_at_once(self):
        self.send(["x@nowhere.test", "y@nullmx.test"])
        dsn = wait_for(self.dsn_for_pepe, what="a DSN").decode()
        self.assertIn("Final-Recipient: rfc822; x@nowhere.test", dsn)
        self.assertIn("Status: 5.1.2", dsn)
        self.assertIn("Final-Recipient: rfc822; y@nullmx.test", dsn)
        self.assertIn("Status: 5.1.10", dsn)
        self.assertEqual(len(self.a.new_messages("pepe")), 1, "one DSN lists every failed recipient")

    def test_mx_pointing_back_here_is_not_looped_to(self):
        self.send(["x@loop.test"])
        dsn = wait_for(self.dsn_for_pepe, what="a DSN").decode()
        self.assertIn("Status: 5.4.6", dsn)
        self.assertIn("loops back to myself", dsn)

    def test_no_bounce_for_a_bounce(self):
        self.send(["nobody@b.test"], sender="")
        wait_for(lambda: "event=removed" in self.a.read_log(), what="entry finished")
        time.sleep(0.5)
        self.assertEqual(self.a.new_messages("pepe"), [])

    def test_kill_9_with_mail_queued_loses_nothing(self):
        self.b.stop()
        self.send(["maria@b.test"], body=b"Subject: survive\r\n\r\nsurvive a crash\r\n")
        wait_for(lambda: "status=deferred" in self.a.read_log(), what="a deferral")
        listing = run_buzon("queue", "list", "-c", self.a.config).stdout
        self.assertIn("maria@b.test", listing)
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait()
        self.b.start()
        self.a.start()
        [m] = wait_for(lambda: self.b.new_messages("maria"), what="delivery after restart")
        self.assertIn(b"survive a crash", m)
        time.sleep(1)
        self.assertEqual(len(self.b.new_messages("maria")), 1, "delivered once")

    def test_flush_and_delete(self):
        self.b.stop()
        self.send(["maria@b.test"])
        wait_for(lambda: "status=deferred" in self.a.read_log(), what="a deferral")
        listing = run_buzon("queue", "list", "-c", self.a.config).stdout
        import re
        qid = re.search(r"^([0-9A-F]{16})\b", listing, re.M).group(1)
        r = run_buzon("queue", "delete", qid, "-c", self.a.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run_buzon("queue", "list", "-c", self.a.config).stdout.strip(), "Mail queue is empty")
        r = run_buzon("queue", "delete", "../../etc/passwd", "-c", self.a.config)
        self.assertNotEqual(r.returncode, 0)


@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
class SmarthostAndWarnings(unittest.TestCase):

    def setUp(self):
        self.port = free_port_on("127.0.0.2", "127.0.0.3")
        self.dns = Dns(["--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3"])
        self.addCleanup(self.dns.stop)

    def server(self, host, domain, user, extra):
        s = Server(host=host, port=self.port, domain=domain, users=(user,),
                   extra=f"dns.servers = 127.0.0.1:{self.dns.port}\noutbound.port = {self.port}\n"
                         f"relay.networks = 127.0.0.0/8\noutbound.tls = none\n{extra}")
        self.addCleanup(s.cleanup)
        return s

    def test_everything_through_the_smarthost(self):
        # other.test has no DNS at all: only the smarthost can take it.
        b = self.server("127.0.0.3", "other.test", "maria", "")
        b.start()
        a = self.server("127.0.0.2", "a.test", "pepe",
                        f"relay.smarthost = 127.0.0.3:{self.port}\nrelay.smarthost_tls = none\n")
        a.start()
        with smtplib.SMTP("127.0.0.2", self.port) as c:
            c.sendmail("pepe@a.test", ["maria@other.test"], b"Subject: via relay\r\n\r\nhi\r\n")
        wait_for(lambda: b.new_messages("maria", "other.test"), what="delivery through the smarthost")
        self.assertIn(f"relay=127.0.0.3[127.0.0.3]:{self.port}", a.read_log())

    def test_password_without_tls_is_refused_at_start(self):
        auth = os.path.join(tempfile.mkdtemp(), "auth")
        self.addCleanup(shutil.rmtree, os.path.dirname(auth), True)
        with open(auth, "w") as f:
            f.write("user:secret\n")
        a = self.server("127.0.0.2", "a.test", "pepe",
                        f"relay.smarthost = 127.0.0.3:{self.port}\nrelay.smarthost_tls = none\n"
                        f"relay.smarthost_auth = {auth}\n")
        for cmd in ("check-config", "serve"):
            r = run_buzon(cmd, "-c", a.config)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("never sent without TLS", r.stderr)

    def test_delay_warning_then_delivery(self):
        a = self.server("127.0.0.2", "a.test", "pepe",
                        "queue.min_backoff = 1s\nqueue.max_backoff = 1s\nqueue.delay_warning = 1s\n")
        a.start()
        with smtplib.SMTP("127.0.0.2", self.port) as c:
            c.sendmail("pepe@a.test", ["maria@b.test"], b"Subject: slow\r\n\r\nslow\r\n")
        [warning] = wait_for(lambda: a.new_messages("pepe"), what="a delay warning")
        msg = email.message_from_bytes(warning, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertIn("Action: delayed", warning.decode())
        self.assertIn("maria@b.test", warning.decode())
        b = self.server("127.0.0.3", "b.test", "maria", "")
        b.start()
        wait_for(lambda: b.new_messages("maria"), what="delivery once b is up")
        time.sleep(0.5)
        self.assertEqual(len(a.new_messages("pepe")), 1, "one warning, no bounce")


class DnsDown(unittest.TestCase):

    def test_dns_failure_defers(self):
        dead = free_port_on("127.0.0.1")  # nothing answers there
        a = Server(host="127.0.0.2", domain="a.test", users=("pepe",),
                   extra=f"dns.servers = 127.0.0.1:{dead}\nrelay.networks = 127.0.0.0/8\n")
        self.addCleanup(a.cleanup)
        a.start()
        with smtplib.SMTP("127.0.0.2", a.port) as c:
            c.sendmail("pepe@a.test", ["x@b.test"], b"Subject: later\r\n\r\nx\r\n")
        log = wait_for(lambda: "status=deferred" in a.read_log() and a.read_log(), timeout=30, what="a deferral")
        self.assertIn("4.4.3 MX lookup of b.test failed", log)
        self.assertEqual(a.new_messages("pepe"), [], "a DNS failure is never a bounce")
        self.assertIn("x@b.test", run_buzon("queue", "list", "-c", a.config).stdout)


class Flaky(socketserver.StreamRequestHandler):
    """A receiving server that answers 451 to the first RCPT it ever sees, then accepts."""
    seen = []

    def handle(self):
        w = lambda s: self.wfile.write(s.encode() + b"\r\n")
        w("220 flaky.test ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            verb = cmd.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                w("250 flaky.test")
            elif verb == "MAIL":
                w("250 2.1.0 Ok")
            elif verb == "RCPT":
                Flaky.seen.append(cmd)
                w("451 4.3.0 try again later" if len(Flaky.seen) == 1 else "250 2.1.5 Ok")
            elif verb == "DATA":
                w("354 go ahead")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    chunk = self.rfile.readline()
                    if not chunk:
                        return
                    data += chunk
                Flaky.seen.append(data)
                w("250 2.0.0 Ok: queued")
            elif verb == "QUIT":
                w("221 2.0.0 Bye")
                return
            else:
                w("502 5.5.2 no")


@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
class Retry(unittest.TestCase):

    def test_451_then_delivered_on_retry(self):
        port = free_port_on("127.0.0.2", "127.0.0.5")
        srv = socketserver.ThreadingTCPServer(("127.0.0.5", port), Flaky)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        dns = Dns(["--mx-host=flaky.test,mx.flaky.test,10", "--host-record=mx.flaky.test,127.0.0.5"])
        self.addCleanup(dns.stop)
        a = Server(host="127.0.0.2", port=port, domain="a.test", users=("pepe",),
                   extra=f"dns.servers = 127.0.0.1:{dns.port}\noutbound.port = {port}\nrelay.networks = 127.0.0.0/8\n"
                         "queue.min_backoff = 1s\nqueue.max_backoff = 1s\noutbound.tls = none\n")
        self.addCleanup(a.cleanup)
        a.start()
        with smtplib.SMTP("127.0.0.2", port) as c:
            c.sendmail("pepe@a.test", ["x@flaky.test"], b"Subject: retry\r\n\r\nsecond time lucky\r\n")
        wait_for(lambda: any(isinstance(s, bytes) for s in Flaky.seen), what="delivery on retry")
        log = a.read_log()
        self.assertIn("status=deferred (host mx.flaky.test[127.0.0.5]", log)
        self.assertIn("451 4.3.0 try again later", log)
        data = [s for s in Flaky.seen if isinstance(s, bytes)][0]
        self.assertIn(b"second time lucky\r\n", data)
        self.assertNotIn(b"Return-Path", data)


if __name__ == "__main__":
    unittest.main()
