"""TLS and AUTH with real clients: Python's smtplib (STARTTLS, SMTP_SSL,
PLAIN, LOGIN, CRAM-MD5), swaks (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 over
TLS), openssl s_client -starttls smtp, and the scramp library for SCRAM;
plus the refusals: wrong password, unknown user, cleartext before STARTTLS,
commands pipelined before STARTTLS, brute force, bad certificate files."""

import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from harness import Raw, Server, free_port, missing, run_buzon

try:
    import scramp
except ImportError:  # .ci/run installs it with pip
    scramp = None

# Made by Dovecot 2.3.19 `doveadm pw -s SHA512-CRYPT -p secret`: passwd-files Dovecot wrote are read as they are.
DOVEADM_SHA512 = ("{SHA512-CRYPT}$6$CG0NHO9jIXQi7YeK$FUyRqCKdBpgZJbkt6TFj5QwktXuf.N1hwd/Uo23i1ymeoX0M2SpuetBx1Ph"
                  "vsukp8eCsljwh7DUJoJHrIfjvi0")


def unverified():
    return ssl._create_unverified_context()


class TlsAuth(unittest.TestCase):

    def setUp(self):
        self.sub = free_port()
        self.subs = free_port()
        s = Server(users=(), extra="")
        self.server = s
        self.addCleanup(s.cleanup)
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config, "a") as f:
            f.write(f"submission.listen = 127.0.0.1:{self.sub}\nsubmissions.listen = 127.0.0.1:{self.subs}\n"
                    f"tls.cert = {cert}\ntls.key = {key}\nauth.max_failures = 3\n"
                    # No DNS server listens there: mail for other domains waits in the queue, hermetically.
                    f"dns.servers = 127.0.0.1:{free_port()}\n"
                    "auth.mechanisms = SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 DIGEST-MD5 PLAIN LOGIN\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost", "mx.example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.fingerprint = r.stdout
        # alice: the default scheme; bob: plaintext (every mechanism); carol: SCRAM keys; dave: doveadm's hash.
        for user, scheme in (("alice", None), ("bob", "PLAIN"), ("carol", "SCRAM-SHA-256")):
            args = ["passwd", "-c", s.config] + (["-s", scheme] if scheme else []) + [f"{user}@example.test"]
            r = run_buzon(*args, stdin=f"pw-{user}\n")
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(s.passwd, "a") as f:
            f.write(f"dave@example.test:{DOVEADM_SHA512}\n")
        s.start()

    def mail(self, user):
        return self.server.new_messages(user)

    def test_starttls_and_login_with_smtplib(self):
        with smtplib.SMTP("127.0.0.1", self.sub) as c:
            c.ehlo("phone.test")
            self.assertTrue(c.has_extn("starttls"))
            self.assertNotIn("PLAIN", c.esmtp_features.get("auth", ""), "no cleartext mechanism before TLS")
            c.starttls(context=unverified())
            c.ehlo("phone.test")
            auth = c.esmtp_features["auth"].split()
            for m in ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "DIGEST-MD5"):
                self.assertIn(m, auth)
            c.login("alice@example.test", "pw-alice")  # smtplib picks CRAM-MD5 first; alice has a crypt hash
            c.sendmail("alice@example.test", ["bob@example.test", "someone@elsewhere.test"],
                       b"Subject: from the phone\r\n\r\nhi\r\n")
        # With a recipient elsewhere the message goes through the queue; bob's copy follows at once.
        deadline = time.time() + 10
        while not self.mail("bob") and time.time() < deadline:
            time.sleep(0.05)
        [m] = self.mail("bob")
        self.assertIn(b"with ESMTPSA id", m)
        log = self.server.read_log()
        self.assertIn("event=auth user=alice@example.test mechanism=PLAIN", log)
        self.assertIn("event=tls TLSv1.3", log)
        self.assertNotIn("pw-alice", log, "passwords are never logged")
        self.assertIn("someone@elsewhere.test", run_buzon("queue", "list", "-c", self.server.config).stdout,
                      "a logged-in user may send anywhere (it waits: no DNS answers here)")

    def test_every_smtplib_mechanism_and_implicit_tls(self):
        for mech, user in (("CRAM-MD5", "bob"), ("LOGIN", "dave"), ("PLAIN", "carol")):
            with smtplib.SMTP_SSL("127.0.0.1", self.subs, context=unverified()) as c:
                c.ehlo("laptop.test")
                c.user, c.password = f"{user}@example.test", ("secret" if user == "dave" else f"pw-{user}")
                code, _ = c.auth(mech, getattr(c, "auth_" + mech.lower().replace("-", "_")))
                self.assertEqual(code, 235, mech)
                c.sendmail(f"{user}@example.test", ["bob@example.test"], f"Subject: {mech}\r\n\r\nx\r\n".encode())
        self.assertEqual(len(self.mail("bob")), 3)

    def test_refusals(self):
        c = Raw("127.0.0.1", self.sub)
        c.reply()
        c.cmd("EHLO x")
        plain = base64.b64encode(b"\0bob@example.test\0pw-bob").decode()
        self.assertTrue(c.cmd(f"AUTH PLAIN {plain}")[1].startswith("538 5.7.11"), "cleartext before STARTTLS")
        self.assertTrue(c.cmd("MAIL FROM:<bob@example.test>")[1].startswith("530 5.7.0"), "AUTH required")
        c.close()
        def plain(s, user, pw):
            s.user, s.password = user, pw
            return s.auth("PLAIN", s.auth_plain)

        with smtplib.SMTP("127.0.0.1", self.sub) as s:
            s.starttls(context=unverified())
            s.ehlo()
            for user, pw in (("bob@example.test", "wrong"), ("nobody@example.test", "pw-bob")):
                with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                    plain(s, user, pw)
                self.assertEqual(e.exception.smtp_code, 535)
            self.assertEqual(plain(s, "bob@example.test", "pw-bob")[0], 235)
            code, text = s.mail("alice@example.test")
            self.assertEqual(code, 553, "bob may not send as alice")
        # Three failures from one address (auth.max_failures = 3) block it, even for the right password.
        with smtplib.SMTP("127.0.0.1", self.sub) as s:
            s.starttls(context=unverified())
            s.ehlo()
            for _ in range(3):
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    plain(s, "bob@example.test", "wrong again")
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                plain(s, "bob@example.test", "pw-bob")
            self.assertEqual(e.exception.smtp_code, 454)
        self.assertIn("blocked=true", self.server.read_log())

    def test_input_pipelined_before_starttls_is_discarded(self):
        sock = socket.create_connection(("127.0.0.1", self.sub), timeout=10)
        self.addCleanup(sock.close)
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"EHLO x\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        # RFC 3207 4.2 / CVE-2011-0411: the injected RSET must never be answered inside TLS.
        sock.sendall(b"STARTTLS\r\nRSET\r\n")
        self.assertTrue(f.readline().startswith(b"220 2.0.0"))
        tls = unverified().wrap_socket(sock, server_hostname="localhost")
        tls.sendall(b"NOOP\r\n")
        self.assertEqual(tls.recv(1024), b"250 2.0.0 Ok\r\n", "the only answer is to NOOP")

    def test_openssl_s_client_starttls(self):
        if not shutil.which("openssl"):
            self.fail(missing("openssl"))
        for proto in ("-tls1_2", "-tls1_3"):
            r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", proto, "-connect", f"127.0.0.1:{self.sub}",
                                "-servername", "localhost", "-quiet", "-ign_eof"],
                               input="EHLO openssl.test\r\nQUIT\r\n", capture_output=True, text=True, timeout=30)
            self.assertIn("AUTH SCRAM-SHA-256-PLUS", r.stdout, r.stderr)
            self.assertIn("221 2.0.0 Bye", r.stdout)

    def test_swaks_mechanisms(self):
        if not shutil.which("swaks"):
            self.fail(missing("swaks"))
        for mech in ("PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"):
            r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.sub}", "--tls", "--auth", mech,
                                "--auth-user", "bob@example.test", "--auth-password", "pw-bob",
                                "--from", "bob@example.test", "--to", "alice@example.test",
                                "--header", f"Subject: swaks {mech}"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{mech}:\n{r.stdout}\n{r.stderr}")
            self.assertIn("235 2.7.0 Authentication successful", r.stdout)
        self.assertEqual(len(self.mail("alice")), 4)

    def test_scram_with_a_real_client_library(self):
        if scramp is None:
            self.fail(missing("the scramp library"))
        for user, mech in (("carol", "SCRAM-SHA-256"), ("bob", "SCRAM-SHA-1"), ("bob", "SCRAM-SHA-256-PLUS")):
            with smtplib.SMTP("127.0.0.1", self.sub) as s:
                s.starttls(context=unverified())
                s.ehlo("scram.test")
                # -PLUS: the library computes tls-server-end-point from the certificate it was shown.
                cb = ("tls-server-end-point", s.sock) if mech.endswith("-PLUS") else None
                client = scramp.ScramClient([mech], f"{user}@example.test", f"pw-{user}", channel_binding=cb)
                first = base64.b64encode(client.get_client_first().encode()).decode()
                code, resp = s.docmd("AUTH", f"{mech} {first}")
                self.assertEqual(code, 334, resp)
                client.set_server_first(base64.b64decode(resp).decode())
                code, resp = s.docmd(base64.b64encode(client.get_client_final().encode()).decode())
                self.assertEqual(code, 334, resp)
                client.set_server_final(base64.b64decode(resp).decode())  # verifies the server's signature
                code, resp = s.docmd("")
                self.assertEqual(code, 235, f"{mech}: {resp}")

    def test_sighup_reloads_the_certificate(self):
        def served_cert():
            with socket.create_connection(("127.0.0.1", self.subs), timeout=10) as raw:
                with unverified().wrap_socket(raw, server_hostname="localhost") as t:
                    return t.getpeercert(binary_form=True)
        before = served_cert()
        r = run_buzon("cert", "self-signed", "-c", self.server.config, "--force", "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.server.proc.send_signal(1)
        deadline = time.time() + 10
        while "tls_reloaded" not in self.server.read_log() and time.time() < deadline:
            time.sleep(0.05)
        self.assertNotEqual(served_cert(), before)


class BadCertificates(unittest.TestCase):

    def test_startup_errors_name_the_file(self):
        s = Server()
        self.addCleanup(s.cleanup)
        missing = os.path.join(s.tmp, "missing.pem")
        garbage = os.path.join(s.tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        for cert, key, want in ((missing, garbage, missing), (garbage, garbage, garbage)):
            conf = s.config + ".tls"
            with open(s.config) as f, open(conf, "w") as g:
                g.write(f.read() + f"tls.cert = {cert}\ntls.key = {key}\n")
            r = run_buzon("serve", "-c", conf)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(want, r.stderr)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("useradd"), "needs root and useradd (CI runs as root)")
class SystemUserLogin(unittest.TestCase):
    """users = system with `user = nobody`: the server drops root, and the helper it forked first
    checks the password against /etc/shadow."""

    def setUp(self):
        self.login = f"bzt{os.getpid() % 100000}"
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.login], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["userdel", self.login], capture_output=True)
        subprocess.run(["chpasswd"], input=f"{self.login}:Unix-pw-1\n", text=True, check=True, capture_output=True)

    def test_login_checked_by_the_privileged_helper(self):
        s = Server(mailbox="maildir:{tmp}/mail/%u")
        self.addCleanup(s.cleanup)
        sub = free_port()
        with open(s.config) as f:
            conf = f.read().replace(f"users = file:{s.passwd}", "users = system")
        with open(s.config, "w") as f:
            f.write(conf + f"submission.listen = 127.0.0.1:{sub}\nuser = nobody\n"
                           "auth.cleartext_networks = 127.0.0.0/8\n")
        os.chmod(s.tmp, 0o755)
        s.start()
        # The port answers from the bind on, a moment before the drop: wait for it.
        deadline = time.time() + 10
        while "event=start " not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)
        pid = s.proc.pid
        with open(f"/proc/{pid}/status") as f:
            uid_line = next(l for l in f if l.startswith("Uid:"))
        self.assertNotEqual(uid_line.split()[1], "0", "the server runs unprivileged")
        with smtplib.SMTP("127.0.0.1", sub) as c:
            c.ehlo("x")
            self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"],
                             "only mechanisms a crypt(3) hash can serve")
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                c.login(self.login, "wrong")
            c.login(f"{self.login}@example.test", "Unix-pw-1")
        self.assertIn(f"event=auth user={self.login} mechanism=", s.read_log())
