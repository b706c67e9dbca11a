"""The content scanner clients (src/filters/scan/) against the real daemons: a private clamd
(a tiny signature database that detects the EICAR test file, no freshclam, no network), a
private spamd (Debian's shipped rules, local tests only; GTUBE is built in) and a private rspamd
(Debian's configuration, DNS pointed at a closed loopback port), each on a unix socket or a
loopback port picked at run time. The checks themselves are Rust (tests/scan_daemons.rs, run with
`cargo test --release --test scan_daemons`), given the addresses in environment variables."""

import base64
import io
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import zipfile
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, free_port, requires  # noqa: E402

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
SPAMD = shutil.which("spamd") or "/usr/sbin/spamd"
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
CARGO = os.environ.get("CARGO") or shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")

# The EICAR anti-virus test file (68 bytes), kept split so that this file itself is no test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*" + b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def write_messages(d):
    """The test messages: EICAR raw, base64 in a MIME attachment, zipped in a MIME attachment; a
    clean message; GTUBE; an ordinary message."""
    head = (b"From: Alice <a@example.org>\r\nTo: Bob <b@example.org>\r\n"
            b"Date: Mon, 7 Dec 2026 12:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n")

    def mime(n, filename, payload, subtype):
        m = EmailMessage()
        m["From"] = "Alice <a@example.org>"
        m["To"] = "Bob <b@example.org>"
        m["Subject"] = "the report"
        m["Date"] = "Mon, 7 Dec 2026 12:00:00 +0000"
        m["Message-ID"] = f"<{n}@example.org>"
        m.set_content("The file is attached.\n")
        m.add_attachment(payload, maintype="application", subtype=subtype, filename=filename)
        return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))

    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("eicar.com", EICAR)
    msgs = {
        "eicar-raw.eml": head % b"1" + b"Subject: test\r\n\r\n" + EICAR + b"\r\n",
        "eicar-base64.eml": mime(2, "eicar.com", EICAR, "octet-stream"),
        "eicar-zip.eml": mime(3, "eicar.zip", z.getvalue(), "zip"),
        "clean.eml": mime(4, "notes.txt", b"Nothing to see here.\n" * 50, "octet-stream"),
        "gtube.eml": head % b"5" + b"Subject: test\r\n\r\n" + GTUBE + b"\r\n",
        "ham.eml": head % b"6" + b"Subject: lunch\r\n\r\nShall we meet at noon on Friday?\r\n\r\nBob\r\n",
    }
    # The attachments really are encoded: no EICAR string in the clear for clamd to find.
    assert EICAR not in msgs["eicar-base64.eml"] and EICAR not in msgs["eicar-zip.eml"]
    assert base64.b64encode(EICAR)[:40] in msgs["eicar-base64.eml"].replace(b"\r\n", b"")
    for name, data in msgs.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def wait_for(what, proc, ready, seconds):
    """Polls `ready` until it holds; fails if `proc` exits or `seconds` pass. Returns the time
    since `proc` started."""
    while time.monotonic() - proc.t0 < seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail(proc)}")
        try:
            if ready():
                return time.monotonic() - proc.t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {seconds} s: {tail(proc)}")


def daemon(args, out):
    """Starts a daemon in the foreground with its output in the file `out`."""
    t0 = time.monotonic()
    with open(out, "wb") as f:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    p.out = out
    p.t0 = t0
    return p


def tail(proc):
    try:
        with open(proc.out, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")
    except OSError:
        return ""


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def clamd_ready(sock):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b"zPING\0")
        return s.recv(16) == b"PONG\0"


def spamd_ready(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"PING SPAMC/1.5\r\n\r\n")
        return s.recv(64).startswith(b"SPAMD/")


def rspamd_ready(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
        return r.read().strip() == b"pong"


@requires(os.path.exists(CLAMD), "clamd (package clamav-daemon)")
@requires(os.path.exists(SPAMD), "spamd (package spamd)")
@requires(os.path.exists(RSPAMD), "rspamd (package rspamd)")
class RealScanners(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="buzon-scan-")
        # spamd started as root drops to nobody, which must read its configuration here.
        os.chmod(cls.tmp, 0o755)
        cls.procs = []
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        t = cls.tmp
        cls.msgs = os.path.join(t, "messages")
        os.mkdir(cls.msgs)
        write_messages(cls.msgs)

        # clamd: one body signature (the EICAR string, any file type); clamd decodes the MIME
        # parts (ScanMail) and unpacks the zip (ScanArchive) before matching.
        os.mkdir(os.path.join(t, "clamdb"))
        with open(os.path.join(t, "clamdb", "buzon-test.ndb"), "w") as f:
            f.write(f"Buzon.Test.EICAR:0:*:{EICAR.hex()}\n")
        cls.clamd_sock = os.path.join(t, "clamd.sock")
        cls.clamd_port = free_port()
        with open(os.path.join(t, "clamd.conf"), "w") as f:
            f.write(f"""LocalSocket {cls.clamd_sock}
TCPSocket {cls.clamd_port}
TCPAddr 127.0.0.1
DatabaseDirectory {t}/clamdb
TemporaryDirectory {t}
PidFile {t}/clamd.pid
LogFile {t}/clamd.log
Foreground yes
ScanMail yes
ScanArchive yes
StreamMaxLength 1M
SelfCheck 0
""")
        clamd = daemon([CLAMD, "-c", os.path.join(t, "clamd.conf")], os.path.join(t, "clamd.out"))
        cls.procs.append(clamd)

        # spamd: Debian's shipped rules (/usr/share/spamassassin), local tests only, no Bayes.
        site = os.path.join(t, "spamassassin")
        os.mkdir(site)
        for pre in os.listdir("/etc/spamassassin"):
            if pre.endswith(".pre"):
                shutil.copy(os.path.join("/etc/spamassassin", pre), site)
        with open(os.path.join(site, "local.cf"), "w") as f:
            f.write("use_bayes 0\nskip_rbl_checks 1\n")
        os.mkdir(os.path.join(t, "spamd-home"))
        cls.spamd_port = free_port()
        spamd = daemon(
            [SPAMD, "--listen", "127.0.0.1", "--port", str(cls.spamd_port), "-x", "-L",
             "--siteconfigpath", site, "--helper-home-dir", os.path.join(t, "spamd-home"),
             "--pidfile", os.path.join(t, "spamd.pid"), "-m", "2", "-s", "stderr"],
            os.path.join(t, "spamd.out"))
        cls.procs.append(spamd)

        # rspamd: Debian's configuration with one normal worker on a loopback port, its DNS pointed
        # at a closed loopback port (no query leaves the machine), a short TLD list (the full one
        # takes the best part of a minute to compile) and the modules that name remote servers off.
        cls.rspamd_port = free_port()
        for d in ("local/local.d", "local/override.d", "db", "run", "log"):
            os.makedirs(os.path.join(t, "rspamd", d))
        r = os.path.join(t, "rspamd")
        with open(os.path.join(r, "tld.dat"), "w") as f:
            f.write("com\norg\nnet\n")
        for module in ("fuzzy_check", "rbl", "surbl", "emails", "asn"):
            with open(os.path.join(r, "local/override.d", module + ".conf"), "w") as f:
                f.write("enabled = false;\n")
        with open(os.path.join(r, "rspamd.conf"), "w") as f:
            f.write(f"""# generated by tests/test_scan.py
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
}}
options {{
    url_tld = "{r}/tld.dat";
    dns {{ nameserver = ["127.0.0.1:{free_port()}"]; timeout = 0.1s; retransmits = 0; }}
}}
logging {{ type = "file"; filename = "$LOGDIR/rspamd.log"; level = "info"; }}
worker "normal" {{
    bind_socket = "127.0.0.1:{cls.rspamd_port}";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}}
""")
        rspamd = daemon(
            [RSPAMD, "-f", "-i", "-c", os.path.join(r, "rspamd.conf"), f"--var=LOCAL_CONFDIR={r}/local",
             f"--var=DBDIR={r}/db", f"--var=RUNDIR={r}/run", f"--var=LOGDIR={r}/log"],
            os.path.join(t, "rspamd.out"))
        cls.procs.append(rspamd)

        cls.started = {
            "clamd": wait_for("clamd", clamd, lambda: clamd_ready(cls.clamd_sock), 120),
            "spamd": wait_for("spamd", spamd, lambda: spamd_ready(cls.spamd_port), 120),
            "rspamd": wait_for("rspamd", rspamd, lambda: rspamd_ready(cls.rspamd_port), 180),
        }
        print("\nscanners ready after (s, started at once): "
              + ", ".join(f"{k} {v:.1f}" for k, v in cls.started.items()), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            stop(p)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_clients_against_real_daemons(self):
        env = dict(os.environ,
                   CLAMD_SOCKET=f"unix:{self.clamd_sock}",
                   CLAMD_TCP=f"127.0.0.1:{self.clamd_port}",
                   SPAMD_ADDR=f"127.0.0.1:{self.spamd_port}",
                   RSPAMD_URL=f"http://127.0.0.1:{self.rspamd_port}",
                   SCAN_MESSAGES=self.msgs)
        r = subprocess.run([CARGO, "test", "--release", "--test", "scan_daemons", "--",
                            "--nocapture", "--test-threads=1"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out[-6000:])
        self.assertNotIn("is not set", out)
        self.assertIn("test result: ok. 6 passed", out)
        for line in out.splitlines():
            if "scan: " in line:
                print(line[line.index("scan: "):], file=sys.stderr)

    def server(self, extra):
        s = Server(extra="checks.skip_networks =\nsmtp.greet_pause = 0\nspf = off\ndmarc = off\n"
                         "dkim.verify = no\n" + extra)
        self.addCleanup(s.cleanup)
        s.start()
        return s

    def send(self, s, name, src="127.0.0.12"):
        """Sends one of the test messages with smtplib; the reply to its end of DATA."""
        with open(os.path.join(self.msgs, name), "rb") as f:
            msg = f.read()
        with smtplib.SMTP(s.host, s.port, source_address=(src, 0), timeout=60) as c:
            try:
                c.sendmail("sender@remote.test", ["alice@example.test"], msg)
                return 250, b""
            except smtplib.SMTPDataError as e:
                return e.smtp_code, e.smtp_error

    def inbox(self, s):
        d = os.path.join(s.tmp, "mail", s.domain, "alice", "Maildir")
        return {sub: sorted(os.listdir(os.path.join(d, sub))) if os.path.isdir(os.path.join(d, sub)) else []
                for sub in ("new", ".Junk/new")}

    def test_server_refuses_viruses_and_spam(self):
        """A buzon with clamd and spamd configured: EICAR (raw, base64 and zipped in MIME) is
        refused at the end of DATA with `554 5.7.1` and never stored; GTUBE (score 1000) with
        `550 5.7.1`; the clean message is delivered with `X-Spam: No` and its score."""
        s = self.server(f"clamd = unix:{self.clamd_sock}\nspamd = 127.0.0.1:{self.spamd_port}\n")
        for name in ("eicar-raw.eml", "eicar-base64.eml", "eicar-zip.eml"):
            code, text = self.send(s, name)
            self.assertEqual(code, 554, (name, text))
            self.assertIn(b"5.7.1 Message refused: infected with Buzon.Test.EICAR", text)
        code, text = self.send(s, "gtube.eml")
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.7.1 Message refused as spam (score 1000", text)
        self.assertEqual(self.send(s, "clean.eml")[0], 250)
        box = self.inbox(s)
        self.assertEqual(len(box["new"]), 1, box)
        with open(os.path.join(s.tmp, "mail", s.domain, "alice", "Maildir", "new", box["new"][0]), "rb") as f:
            head = f.read().split(b"\n\n", 1)[0]
        self.assertIn(b"X-Spam: No", head)
        self.assertRegex(head, rb"X-Spam-Score: -?\d+\.\d \(spamd")
        self.assertEqual(s.read_log().count("reason=virus"), 3)

    def test_rspamd_junk_and_a_scanner_that_is_down(self):
        """rspamd: GTUBE is refused (score over spam.reject_score); with spam.junk_score = -100
        every message lands in Junk (`X-Spam: Yes`). A clamd that is not running defers the
        message with `451 4.7.1` (scan.on_failure = tempfail) and nothing is stored; with
        scan.on_failure = accept it is delivered unscanned."""
        s = self.server(f"rspamd = http://127.0.0.1:{self.rspamd_port}\nspam.junk_score = -100\n")
        self.assertEqual(self.send(s, "gtube.eml")[0], 550)
        self.assertEqual(self.send(s, "clean.eml")[0], 250)
        self.assertEqual(len(self.inbox(s)[".Junk/new"]), 1, self.inbox(s))
        down = os.path.join(self.tmp, "no-such-clamd.sock")
        s = self.server(f"clamd = unix:{down}\n")
        code, text = self.send(s, "clean.eml")
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.7.1", text)
        self.assertEqual(self.inbox(s), {"new": [], ".Junk/new": []})
        s = self.server(f"clamd = unix:{down}\nscan.on_failure = accept\n")
        self.assertEqual(self.send(s, "clean.eml")[0], 250)
        self.assertIn("event=scan_failed", s.read_log())


if __name__ == "__main__":
    unittest.main()
