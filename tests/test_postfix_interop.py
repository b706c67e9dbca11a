"""Interoperability with a real Postfix: buzon relays to a private Postfix
(found by MX through dnsmasq), and a private Postfix relays to buzon.

Each Postfix instance is private: its own config directory, queue, data and
mail directories under a temp dir in /var/tmp (Postfix's maillog_file must
live under /var), loopback addresses only, never /etc/postfix's config. It is
started with `postfix -c DIR start` and always stopped with
`postfix -c DIR stop` when the test ends. Starting Postfix needs root: the
tests skip when not running as root (CI is root); they fail when Postfix or
dnsmasq is missing (.ci/run installs both)."""

import email
import email.policy
import os
import pwd
import re
import shlex
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import Server, requires
from test_relay import DNSMASQ, Dns, free_port_on, wait_for

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SCRIPT = shutil.which("script")


def postfix_missing():
    """What of Postfix is missing here (the tests then fail), or None."""
    if not os.path.exists(POSTFIX):
        return "postfix (Debian package postfix, debconf 'No configuration')"
    for user in ("postfix", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user!r} (the postfix package creates it)"
    return None


MISSING = postfix_missing()
SKIP = None if os.geteuid() == 0 else "a private Postfix instance must be started as root"

# Debian's services without chroot (the queue is private) and without the
# pipe(8) transports; smtpd is added on one loopback address:port only.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix on HOST:PORT. `mailboxes` maps address -> user for
    virtual(8) Maildir delivery under self.mail; `extra` is appended to main.cf."""

    def __init__(self, host, port, hostname, domains=(), mailboxes=(), extra=""):
        self.host, self.port = host, port
        # maillog_file must start with one of maillog_file_prefixes (/var).
        self.tmp = tempfile.mkdtemp(prefix="buzon-postfix-", dir="/var/tmp")
        os.chmod(self.tmp, 0o755)  # Postfix daemons run as user postfix
        self.etc, self.spool = os.path.join(self.tmp, "etc"), os.path.join(self.tmp, "spool")
        self.data, self.mail = os.path.join(self.tmp, "data"), os.path.join(self.tmp, "mail")
        self.maillog = os.path.join(self.tmp, "maillog")
        for d in (self.etc, self.spool, self.data, self.mail):
            os.mkdir(d)
        pf, nobody = pwd.getpwnam("postfix"), pwd.getpwnam("nobody")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        vmailbox = os.path.join(self.etc, "vmailbox")
        with open(vmailbox, "w") as f:
            for addr, user in mailboxes:
                f.write(f"{addr} {user}/Maildir/\n")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""# written by tests/test_postfix_interop.py: a private, loopback-only instance
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
meta_directory = /etc/postfix
maillog_file = {self.maillog}
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = {hostname}
myorigin = {hostname}
mydestination =
# smtpd binds {host}:{port} itself (master.cf); Postfix refuses an
# inet_interfaces address that no interface carries explicitly.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# No reverse lookups of 127.0.0.x clients through the machine's resolver.
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {" ".join(domains)}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{vmailbox}
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
smtpd_tls_security_level = none
smtp_tls_security_level = none
# A deferred message is retried within seconds, not minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
{extra}
""")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(f"{host}:{port} inet n  -       n       -       -       smtpd\n" + MASTER_CF)
        self.started = False

    def postfix(self, *args, timeout=60):
        """Runs `postfix -c ETC ARGS`; under script(1) so Postfix prints its errors (tty only)."""
        cmd = [POSTFIX, "-c", self.etc, *args]
        if SCRIPT:
            cmd = [SCRIPT, "-qec", shlex.join(cmd), "/dev/null"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self):
        self.started = True  # from here on, stop() runs `postfix stop` even if start fails half-way
        r = self.postfix("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix -c {self.etc} start failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}\n{self.read_log()}")
        # Ready when smtpd answers with its 220 greeting (master spawns it on connect).
        deadline, last = time.time() + 15, None
        while time.time() < deadline:
            try:
                with smtplib.SMTP(self.host, self.port, timeout=5) as c:
                    c.noop()
                return self
            except (OSError, smtplib.SMTPException) as e:
                last = e
                time.sleep(0.1)
        raise RuntimeError(f"postfix does not answer on {self.host}:{self.port}: {last}\n{self.read_log()}")

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def daemons(self):
        """Pids of the processes working in this instance's queue directory (master and its children)."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    cwd = os.readlink(f"/proc/{p}/cwd")
                except OSError:
                    continue
                if cwd == self.spool or cwd.startswith(self.spool + "/"):
                    out.append(int(p))
        return out

    def stop(self):
        if self.started:
            pid = self.master_pid()
            self.postfix("stop")
            # `postfix stop` signals the master and returns; wait (bounded) for the
            # whole instance to be gone, then kill what this instance left, by pid.
            deadline = time.time() + 10
            while time.time() < deadline and (self.daemons() or (pid and os.path.exists(f"/proc/{pid}"))):
                time.sleep(0.05)
            for p in self.daemons():
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
            self.started = False

    def cleanup(self):
        try:
            self.stop()
        finally:
            if os.environ.get("KEEP_POSTFIX"):
                print(f"kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def read_log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no maillog)"

    def new_messages(self, user):
        d = os.path.join(self.mail, user, "Maildir", "new")
        if not os.path.isdir(d):
            return []
        out = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
        return out


def wait_or_explain(pred, what, *logs, timeout=30):
    """wait_for, but a timeout shows the logs of every server involved."""
    try:
        return wait_for(pred, timeout=timeout, what=what)
    except AssertionError as e:
        shown = "".join(f"\n---- {name} ----\n{read()}" for name, read in logs)
        raise AssertionError(f"{e}{shown}") from None


@unittest.skipIf(SKIP, SKIP)
@requires(not MISSING, MISSING)
@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
class BuzonToPostfix(unittest.TestCase):
    """buzon finds pf.test's MX through dnsmasq and hands the message to Postfix."""

    def setUp(self):
        # buzon delivers to outbound.port = its own port number, so Postfix listens on the same one.
        self.port = free_port_on("127.0.0.2", "127.0.0.4")
        self.dns = Dns(["--mx-host=pf.test,mx.pf.test,10", "--host-record=mx.pf.test,127.0.0.4"])
        self.addCleanup(self.dns.stop)
        self.pf = Postfix("127.0.0.4", self.port, "mx.pf.test", domains=("pf.test",),
                          mailboxes=(("someone@pf.test", "someone"),),
                          extra="default_transport = error\nrelay_transport = error\n")
        self.addCleanup(self.pf.cleanup)
        self.pf.start()
        # Postfix without TLS keys offers no STARTTLS: `may` must then go on in plain text.
        self.a = Server(host="127.0.0.2", port=self.port, domain="a.test", users=("pepe",),
                        extra=f"dns.servers = 127.0.0.1:{self.dns.port}\noutbound.port = {self.port}\n"
                              "relay.networks = 127.0.0.0/8\nqueue.min_backoff = 1s\nqueue.max_backoff = 2s\n"
                              "outbound.tls = may\n")
        self.addCleanup(self.a.cleanup)
        self.a.start()

    def test_buzon_relays_to_postfix(self):
        body = (b"From: pepe@a.test\r\nTo: someone@pf.test\r\nSubject: to postfix\r\n"
                b"Message-ID: <pf1@a.test>\r\n\r\nHola Postfix.\r\n.dot-stuffed line\r\n")
        with smtplib.SMTP("127.0.0.2", self.port) as c:
            c.sendmail("pepe@a.test", ["someone@pf.test"], body)
        logs = (("buzon", self.a.read_log), ("postfix", self.pf.read_log))
        [m] = wait_or_explain(lambda: self.pf.new_messages("someone"), "delivery into Postfix's Maildir",
                              *logs)
        msg = email.message_from_bytes(m, policy=email.policy.default)
        self.assertEqual(msg["Return-Path"], "<pepe@a.test>")  # added by virtual(8)
        self.assertEqual(msg["Delivered-To"], "someone@pf.test")
        self.assertEqual(msg["Message-ID"], "<pf1@a.test>")
        received = msg.get_all("Received")
        self.assertEqual(len(received), 2, received)
        self.assertRegex(received[0],
                         r"^from mx\.a\.test \(unknown \[127\.0\.0\.\d+\]\)\s+by mx\.pf\.test \(Postfix\)")
        self.assertIn("by mx.a.test (buzon)", received[1])
        self.assertEqual(msg.get_content(), "Hola Postfix.\n.dot-stuffed line\n")
        self.assertEqual(m.count(b"Return-Path:"), 1, "buzon leaves Return-Path out when relaying")

        log = wait_or_explain(lambda: "status=sent" in self.a.read_log() and self.a.read_log(),
                              "buzon's status=sent line", *logs)
        sent = re.search(rf"to=<someone@pf\.test> relay=mx\.pf\.test\[127\.0\.0\.4\]:{self.port} "
                         r"delay=[\d.]+ status=sent \(250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)\)", log)
        self.assertIsNotNone(sent, log)
        # The queue id Postfix gave buzon is the one Postfix delivered.
        pflog = wait_or_explain(lambda: "status=sent (delivered to maildir)" in self.pf.read_log()
                                and self.pf.read_log(), "Postfix's delivery log line", *logs)
        self.assertRegex(pflog, rf"{sent.group(1)}: to=<someone@pf\.test>, relay=virtual, .*"
                                r"status=sent \(delivered to maildir\)")
        self.assertRegex(pflog, rf"{sent.group(1)}: client=unknown\[127\.0\.0\.\d+\]")


@unittest.skipIf(SKIP, SKIP)
@requires(not MISSING, MISSING)
class PostfixToBuzon(unittest.TestCase):
    """A private Postfix relays everything to [127.0.0.2]:<buzon port>; buzon stores it for maria@b.test."""

    def setUp(self):
        self.port = free_port_on("127.0.0.2", "127.0.0.4")
        self.b = Server(host="127.0.0.2", port=self.port, domain="b.test", users=("maria",))
        self.addCleanup(self.b.cleanup)
        self.b.start()
        # relayhost in brackets: no MX or address lookup, straight to buzon.
        self.pf = Postfix("127.0.0.4", self.port, "pf-send.test",
                          extra=f"relayhost = [127.0.0.2]:{self.port}\nsmtp_bind_address = 127.0.0.4\n"
                                "default_transport = smtp\nrelay_transport = error\n")
        self.addCleanup(self.pf.cleanup)
        self.pf.start()

    def test_postfix_relays_to_buzon(self):
        body = (b"From: juan@c.test\r\nTo: maria@b.test\r\nSubject: from postfix\r\n"
                b"Message-ID: <pf2@c.test>\r\n\r\nHola Maria, soy Postfix.\r\n")
        with smtplib.SMTP("127.0.0.4", self.port) as c:
            c.ehlo("client.c.test")
            c.sendmail("juan@c.test", ["maria@b.test"], body)
        logs = (("buzon", self.b.read_log), ("postfix", self.pf.read_log))
        [m] = wait_or_explain(lambda: self.b.new_messages("maria"), "delivery into maria's Maildir", *logs)
        msg = email.message_from_bytes(m, policy=email.policy.default)
        self.assertEqual(msg["Return-Path"], "<juan@c.test>")
        self.assertEqual(msg["Message-ID"], "<pf2@c.test>")
        received = msg.get_all("Received")
        self.assertEqual(len(received), 2, received)
        # Newest first: buzon received it from Postfix's smtp client (bound to 127.0.0.4) ...
        self.assertRegex(received[0], r"^from pf-send\.test \(\[127\.0\.0\.4\]\)\s+by mx\.b\.test \(buzon\) "
                                      r"with ESMTP id [0-9A-F]{16}\s+for <maria@b\.test>;")
        # ... which had received it from the smtplib client.
        self.assertRegex(received[1], r"^from client\.c\.test \(unknown \[127\.0\.0\.\d+\]\)\s+"
                                      r"by pf-send\.test \(Postfix\) with ESMTP id [0-9A-Za-z]+")
        self.assertEqual(msg.get_content(), "Hola Maria, soy Postfix.\n")

        pflog = wait_or_explain(lambda: "status=sent" in self.pf.read_log() and self.pf.read_log(),
                                "Postfix's status=sent line", *logs)
        sent = re.search(rf"to=<maria@b\.test>, relay=127\.0\.0\.2\[127\.0\.0\.2\]:{self.port}, .*"
                         r"status=sent \(250 2\.0\.0 Ok: queued as ([0-9A-F]{16})\)", pflog)
        self.assertIsNotNone(sent, pflog)
        # buzon's queue id, as told to Postfix, is the id in its own Received: line.
        self.assertIn(f"id {sent.group(1)}", received[0])


if __name__ == "__main__":
    unittest.main()
