"""ManageSieve (RFC 5804) against the real server on a loopback port picked at run time: a small
client written here drives the wire (greeting, STARTTLS with the ssl module, AUTHENTICATE "PLAIN"
with an initial response, {n+} literals, every script command and its response codes, the
bad-command limit, SCRAM-SHA-256 through scramp), and the `managesieve` library and its
`sieveshell` command (Debian's python3-managesieve upstream, from PyPI) do the same as real
clients nobody here wrote. Scripts are
checked on disk in Dovecot Pigeonhole's layout: data_dir/sieve/<domain>/<user>/sieve/<name>.sieve
and the .dovecot.sieve symlink for a virtual user."""

import base64
import itertools
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import Server, free_port, requires, run_buzon
from test_privsep import useradd, userdel

ROOT = os.geteuid() == 0 and shutil.which("useradd") is not None
SEQ = itertools.count()

try:
    import managesieve
except ImportError:  # the test that needs it fails, never skips (harness.requires)
    managesieve = None
try:
    import scramp
except ImportError:
    scramp = None

HOST = "127.0.0.1"
ALICE = ("alice@example.test", "secret-alice")
VACATION = (b'require ["vacation"];\r\n'
            b'vacation :days 7 :subject "Away" "I am away until Monday.";\r\n')


def tls_context():
    return ssl._create_unverified_context()


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def literal(data):
    return b"{%d+}\r\n" % len(data) + data


class Sieve:
    """A minimal ManageSieve client: sends a command, reads the response lines up to OK/NO/BYE,
    with any {n} literal the server sends kept in place."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.f = self.sock.makefile("rb")

    def line(self):
        line = self.f.readline()
        if not line:
            raise EOFError("connection closed")
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            line += self.f.read(int(m.group(1)))
            line += self.line()
        return line

    def response(self):
        """(lines before the status, the status line)."""
        lines = []
        while True:
            line = self.line()
            if re.match(rb"(?i)(OK|NO|BYE)\b", line):
                return lines, line
            lines.append(line)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, data):
        self.send(data + (b"\r\n" if isinstance(data, bytes) else "\r\n"))
        return self.response()

    def starttls(self):
        _, status = self.cmd("STARTTLS")
        assert status.startswith(b"OK"), status
        self.sock = tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")
        return self.response()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def caps(lines):
    out = {}
    for line in lines:
        m = re.match(rb'"([^"]+)"(?: "([^"]*)")?\r\n$', line)
        assert m, line
        out[m.group(1).decode()] = (m.group(2) or b"").decode()
    return out


class ManageSieveCase(unittest.TestCase):
    extra = ""

    def setUp(self):
        s = Server()
        self.server = s
        self.addCleanup(s.cleanup)
        self.port = free_port()
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config, "a") as f:
            f.write(f"managesieve.listen = {HOST}:{self.port}\ntls.cert = {cert}\ntls.key = {key}\n"
                    f"managesieve.max_errors = 5\n{self.extra}")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.home = os.path.join(s.tmp, "data", "sieve", "example.test", "alice")

    def client(self):
        c = Sieve(self.port)
        self.addCleanup(c.close)
        return c

    def logged_in(self):
        c = self.client()
        c.response()
        c.starttls()
        _, st = c.cmd(f'AUTHENTICATE "PLAIN" "{plain(*ALICE)}"')
        self.assertTrue(st.startswith(b"OK"), st)
        return c


class TestWire(ManageSieveCase):

    def test_greeting_starttls_and_plain_login(self):
        c = self.client()
        lines, st = c.response()
        self.assertTrue(st.startswith(b"OK"), st)
        before = caps(lines)
        self.assertEqual(before["IMPLEMENTATION"], "buzon")
        self.assertEqual(before["VERSION"], "1.0")
        self.assertIn("STARTTLS", before)
        self.assertIn("fileinto", before["SIEVE"].split())
        self.assertIn("vacation", before["SIEVE"].split())
        self.assertIn("MAXREDIRECTS", before)
        self.assertNotIn("PLAIN", before["SASL"].split(), "no cleartext password before TLS")
        # PLAIN is refused before TLS too, whatever the client tries.
        _, st = c.cmd(f'AUTHENTICATE "PLAIN" "{plain(*ALICE)}"')
        self.assertTrue(st.startswith(b"NO"), st)
        lines, st = c.starttls()
        self.assertTrue(st.startswith(b"OK"), st)
        after = caps(lines)
        self.assertIn("PLAIN", after["SASL"].split())
        self.assertNotIn("STARTTLS", after)
        _, st = c.cmd(f'AUTHENTICATE "PLAIN" "{plain(ALICE[0], "wrong")}"')
        self.assertTrue(st.startswith(b"NO"), st)
        # The initial response as a literal.
        _, st = c.cmd(b'AUTHENTICATE "PLAIN" ' + literal(plain(*ALICE).encode()))
        self.assertTrue(st.startswith(b"OK"), st)
        lines, st = c.cmd("CAPABILITY")
        self.assertEqual(caps(lines)["OWNER"], ALICE[0])
        _, st = c.cmd("LOGOUT")
        self.assertTrue(st.startswith(b"OK"), st)
        self.assertEqual(c.f.read(), b"", "the server closes after LOGOUT")

    @requires(scramp is not None, "scramp (a SCRAM client library)")
    def test_scram_sha_256_with_server_final_in_the_ok(self):
        client = scramp.ScramClient(["SCRAM-SHA-256"], *ALICE)
        c = self.client()
        c.response()
        first = base64.b64encode(client.get_client_first().encode()).decode()
        c.send(f'AUTHENTICATE "SCRAM-SHA-256" "{first}"\r\n')
        challenge = c.line()
        self.assertTrue(re.match(rb'^"[A-Za-z0-9+/=]+"\r\n$', challenge), challenge)
        client.set_server_first(base64.b64decode(challenge[1:-3]).decode())
        final = base64.b64encode(client.get_client_final().encode()).decode()
        _, st = c.cmd(f'"{final}"')
        # RFC 5804 2.1: the server-final message comes in the OK's SASL response code.
        m = re.match(rb'^OK \(SASL "([A-Za-z0-9+/=]+)"\) "Logged in"\r\n$', st)
        self.assertTrue(m, st)
        client.set_server_final(base64.b64decode(m.group(1)).decode())  # raises if the server lied
        lines, st = c.cmd("LISTSCRIPTS")
        self.assertEqual((lines, st[:2]), ([], b"OK"))

    def test_scripts_on_disk_in_pigeonhole_layout(self):
        c = self.logged_in()
        _, st = c.cmd(b'PUTSCRIPT "vacation" ' + literal(VACATION))
        self.assertEqual(st, b'OK "Script stored"\r\n')
        _, st = c.cmd(b'PUTSCRIPT "other" "keep;"')
        self.assertTrue(st.startswith(b"OK"), st)
        lines, st = c.cmd("LISTSCRIPTS")
        self.assertEqual(lines, [b'"other"\r\n', b'"vacation"\r\n'])
        _, st = c.cmd('SETACTIVE "vacation"')
        self.assertTrue(st.startswith(b"OK"), st)
        link = os.path.join(self.home, ".dovecot.sieve")
        self.assertEqual(os.readlink(link), "sieve/vacation.sieve")
        with open(link, "rb") as f:
            self.assertEqual(f.read(), VACATION)
        lines, _ = c.cmd("LISTSCRIPTS")
        self.assertIn(b'"vacation" ACTIVE\r\n', lines)
        lines, st = c.cmd('GETSCRIPT "vacation"')
        self.assertEqual(lines, [b"{%d}\r\n" % len(VACATION) + VACATION + b"\r\n"])
        self.assertTrue(st.startswith(b"OK"), st)
        _, st = c.cmd('GETSCRIPT "none"')
        self.assertTrue(st.startswith(b"NO (NONEXISTENT)"), st)
        _, st = c.cmd(b"CHECKSCRIPT " + literal(VACATION))
        self.assertTrue(st.startswith(b"OK"), st)
        _, st = c.cmd(b"CHECKSCRIPT " + literal(b"keep;\xff\xfe\r\n"))
        self.assertTrue(st.startswith(b'NO "line 1'), st)
        # The Sieve parser checks what is stored: a command whose extension is not required.
        _, st = c.cmd(b"CHECKSCRIPT " + literal(b"keep;\r\nfileinto \"Junk\";\r\n"))
        self.assertTrue(st.startswith(b'NO "line 2'), st)
        self.assertIn(b"fileinto", st)
        _, st = c.cmd(b'PUTSCRIPT "broken" ' + literal(b"if true {\r\n"))
        self.assertTrue(st.startswith(b"NO"), st)
        _, st = c.cmd('RENAMESCRIPT "vacation" "away"')
        self.assertTrue(st.startswith(b"OK"), st)
        self.assertEqual(os.readlink(link), "sieve/away.sieve", "the active script stays active")
        self.assertFalse(os.path.exists(os.path.join(self.home, "sieve", "vacation.sieve")))
        _, st = c.cmd('RENAMESCRIPT "away" "other"')
        self.assertTrue(st.startswith(b"NO (ALREADYEXISTS)"), st)
        _, st = c.cmd('DELETESCRIPT "away"')
        self.assertTrue(st.startswith(b"NO (ACTIVE)"), st)
        _, st = c.cmd('DELETESCRIPT "other"')
        self.assertTrue(st.startswith(b"OK"), st)
        _, st = c.cmd('SETACTIVE ""')
        self.assertTrue(st.startswith(b"OK"), st)
        self.assertFalse(os.path.lexists(link))
        _, st = c.cmd('DELETESCRIPT "away"')
        self.assertTrue(st.startswith(b"OK"), st)
        self.assertEqual(os.listdir(os.path.join(self.home, "sieve")), [], "no temp file left")
        _, st = c.cmd("LOGOUT")
        self.assertTrue(st.startswith(b"OK"), st)

    def test_quota_over_the_limit(self):
        c = self.logged_in()
        _, st = c.cmd('HAVESPACE "big" 300000')
        self.assertTrue(st.startswith(b"NO (QUOTA/MAXSIZE)"), st)
        _, st = c.cmd('HAVESPACE "big" 1000')
        self.assertTrue(st.startswith(b"OK"), st)
        # A script over managesieve.max_script_size (256 KiB) is read, refused, and the session goes on.
        _, st = c.cmd(b'PUTSCRIPT "big" ' + literal(b"#" * 300000))
        self.assertTrue(st.startswith(b"NO (QUOTA/MAXSIZE)"), st)
        _, st = c.cmd("NOOP")
        self.assertTrue(st.startswith(b"OK"), st)
        self.assertFalse(os.path.exists(os.path.join(self.home, "sieve", "big.sieve")))

    def test_bad_command_flood_ends_in_bye(self):
        c = self.client()
        c.response()
        for i in range(4):
            _, st = c.cmd(f"BOGUS{i}")
            self.assertTrue(st.startswith(b"NO"), st)
        lines, st = c.cmd("BOGUS")
        self.assertTrue(st.startswith(b"NO"), st)
        _, bye = c.response()
        self.assertTrue(bye.startswith(b"BYE"), bye)
        self.assertEqual(c.f.read(), b"")


class TestMaxScripts(ManageSieveCase):
    extra = "managesieve.max_scripts = 2\n"

    def test_maxscripts(self):
        c = self.logged_in()
        for n in ("a", "b"):
            _, st = c.cmd(f'PUTSCRIPT "{n}" "keep;"')
            self.assertTrue(st.startswith(b"OK"), st)
        _, st = c.cmd('PUTSCRIPT "c" "keep;"')
        self.assertTrue(st.startswith(b"NO (QUOTA/MAXSCRIPTS)"), st)


@unittest.skipUnless(ROOT, "needs root and useradd (CI runs as root)")
class SystemUsers(unittest.TestCase):
    """A system user's scripts in ~/sieve and ~/.dovecot.sieve, made as that user: in the shipped
    configuration (the server drops root to `user`; the session runs in the user's mail process)
    and with no `user` key (the server stays root and takes the owner's identity per run)."""

    def start(self, drop):
        base = tempfile.mkdtemp(prefix="buzon-sieve-")
        os.chmod(base, 0o755)
        self.addCleanup(shutil.rmtree, base, True)
        tag = f"{str(os.getpid())[-5:]}s{next(SEQ)}"
        srv, self.name = f"bssrv{tag}", f"bsa{tag}"
        for n in (srv, self.name):
            self.addCleanup(userdel, n)
        useradd(srv, os.path.join(base, srv))
        self.pw = useradd(self.name, os.path.join(base, self.name))
        subprocess.run(["chpasswd"], input=f"{self.name}:pw-a\n", text=True, check=True)
        self.port = free_port()
        s = Server(users=(), mailbox="maildir:~/Maildir",
                   extra="users = system\n" + (f"user = {srv}\n" if drop else "")
                   + f"managesieve.listen = 127.0.0.1:{self.port}\n")
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config) as f:
            conf = "".join(l for l in f if not l.startswith("users = file:"))
        with open(s.config, "w") as f:
            f.write(conf + f"tls.cert = {cert}\ntls.key = {key}\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.chmod(s.tmp, 0o755)
        self.addCleanup(s.cleanup)
        self.server = s
        s.start()
        deadline = time.time() + 10
        while "event=start " not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)

    def edit(self):
        c = Sieve(self.port)
        self.addCleanup(c.close)
        c.response()
        c.starttls()
        _, st = c.cmd(f'AUTHENTICATE "PLAIN" "{plain(self.name, "pw-a")}"')
        self.assertTrue(st.startswith(b"OK"), st + self.server.read_log()[-3000:].encode())
        _, st = c.cmd(b'PUTSCRIPT "vacation" ' + literal(VACATION))
        self.assertTrue(st.startswith(b"OK"), st + self.server.read_log()[-3000:].encode())
        _, st = c.cmd('SETACTIVE "vacation"')
        self.assertTrue(st.startswith(b"OK"), st)
        lines, st = c.cmd("LISTSCRIPTS")
        self.assertEqual(lines, [b'"vacation" ACTIVE\r\n'])
        home = self.pw.pw_dir
        script = os.path.join(home, "sieve", "vacation.sieve")
        with open(script, "rb") as f:
            self.assertEqual(f.read(), VACATION)
        link = os.path.join(home, ".dovecot.sieve")
        self.assertEqual(os.readlink(link), "sieve/vacation.sieve")
        for path in (script, os.path.dirname(script), link):
            st_ = os.lstat(path)
            self.assertEqual((st_.st_uid, st_.st_gid), (self.pw.pw_uid, self.pw.pw_gid), path)
        _, st = c.cmd("LOGOUT")
        self.assertTrue(st.startswith(b"OK"), st)

    def test_shipped_configuration_runs_in_the_mail_process(self):
        self.start(drop=True)
        self.edit()
        self.assertIn("in=mailproc", self.server.read_log())

    def test_root_server_writes_as_the_owner(self):
        self.start(drop=False)
        self.edit()
        self.assertNotIn("in=mailproc", self.server.read_log())


@requires(managesieve is not None, "the managesieve Python package (sieveshell's library)")
class TestManagesieveLibrary(ManageSieveCase):
    """The `managesieve` library as sieveshell uses it."""

    def test_library_client(self):
        m = managesieve.MANAGESIEVE(HOST, self.port)
        self.addCleanup(lambda: m.sock and m.sock.close())
        self.assertTrue(m.supports_tls)
        self.assertIn("vacation", m.capabilities)
        typ, _ = m.starttls(verify=False)
        self.assertEqual(typ, "OK")
        self.assertEqual(m.implementation, "buzon")
        self.assertIn("PLAIN", m.loginmechs)
        self.assertEqual(m.login("", *ALICE), "OK")
        self.assertEqual(m.putscript("filters", "require \"fileinto\";\r\nfileinto \"Junk\";\r\n"), "OK")
        self.assertEqual(m.putscript("spare", "keep;\r\n"), "OK")
        self.assertEqual(m.setactive("filters"), "OK")
        typ, scripts = m.listscripts()
        self.assertEqual((typ, sorted(scripts)), ("OK", [("filters", True), ("spare", False)]))
        typ, script = m.getscript("filters")
        self.assertEqual((typ, script), ("OK", "require \"fileinto\";\r\nfileinto \"Junk\";\r\n"))
        self.assertEqual(m.havespace("x", 10), "OK")
        self.assertEqual(m.havespace("x", 10**7), "NO")
        self.assertEqual(m.deletescript("filters"), "NO")
        self.assertEqual(m.deletescript("spare"), "OK")
        self.assertEqual(os.readlink(os.path.join(self.home, ".dovecot.sieve")), "sieve/filters.sieve")
        self.assertEqual(m.logout(), "OK")

    @requires(shutil.which("sieveshell"), "sieveshell (from the managesieve package)")
    def test_sieveshell_command(self):
        work = tempfile.mkdtemp(prefix="sieveshell-")
        self.addCleanup(shutil.rmtree, work, True)
        src = os.path.join(work, "rules.sieve")
        with open(src, "wb") as f:
            f.write(VACATION)
        # Commands on standard input, as typed (its --script option is not read by sieveshell 0.8.1).
        commands = f"put {src} rules\nactivate rules\nlist\nget rules {work}/back.sieve\nquit\n"
        r = subprocess.run(["sieveshell", "--no-tls-verify", "--port", str(self.port), "--authname", ALICE[0],
                            "--passwd", ALICE[1], HOST],
                           input=commands, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("rules \t<<-- active", r.stdout)
        with open(os.path.join(work, "back.sieve"), "rb") as f:
            self.assertEqual(f.read(), VACATION)
        self.assertEqual(os.readlink(os.path.join(self.home, ".dovecot.sieve")), "sieve/rules.sieve")


if __name__ == "__main__":
    unittest.main()
