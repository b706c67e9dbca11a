"""Sieve (RFC 5228 and extensions) against the reference: every script in tests/sieve/scripts runs
on every message in tests/sieve/messages through `buzon sieve-test` and Pigeonhole's `sieve-test`
(Debian package dovecot-sieve); the decisions must agree: parse error or not, runtime error or not,
the folders the message is stored in with their IMAP flags, redirects, reject, discard, and whether
a vacation reply is due (Pigeonhole judges that only when it executes, `-e`).

Skips only when /usr/bin/sieve-test is missing.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "sieve", "scripts")
MESSAGES = os.path.join(HERE, "sieve", "messages")
SIEVE_TEST = shutil.which("sieve-test") or "/usr/bin/sieve-test"

# The envelope of each message: return path, recipient.
ENVELOPES = {
    "list.eml": ("devel-bounces@lists.example.org", "bob@example.com"),
    "bounce.eml": ("MAILER-DAEMON@example.org", "bob@example.com"),
    "encoded.eml": ("juergen@example.de", "bob@example.com"),
    "group.eml": ("dave@example.org", "bob@example.com"),
    "multipart.eml": ("bounces@shop.example", "bob@example.com"),
    "autoreply.eml": ("heidi@example.org", "bob@example.com"),
    "subaddress.eml": ("ivan+news@example.net", "bob+lists@example.com"),
}
DEFAULT_ENVELOPE = ("alice@example.org", "bob@example.com")

# Pigeonhole 0.5 has no ereject (RFC 5429): these scripts are checked against buzon's own answer.
BUZON_ONLY = {
    "06_ereject.sieve": {
        "subaddress.eml": {"reject": True, "stores": [], "redirects": [], "discard": False,
                           "vacation": False, "error": False, "parse_error": False},
    },
}


def flagset(words):
    return tuple(sorted(w.lower() for w in words))


def decision(parse_error=False, error=False):
    return {"parse_error": parse_error, "error": error, "stores": [], "redirects": [],
            "reject": False, "discard": False, "vacation": False}


def normalise_buzon(rc, out):
    d = decision(parse_error=rc == 1)
    if d["parse_error"]:
        return d
    for line in out.splitlines():
        if line.startswith("error:"):
            d["error"] = True
        elif line.startswith("keep"):
            m = re.search(r'flags=("(?:[^"\\]|\\.)*")', line)
            d["stores"].append(("INBOX", flagset(json.loads(m.group(1)).split())))
        elif line.startswith("fileinto "):
            m = re.match(r'fileinto ("(?:[^"\\]|\\.)*") flags=("(?:[^"\\]|\\.)*")', line)
            box = json.loads(m.group(1))
            box = "INBOX" if box.upper() == "INBOX" else box
            d["stores"].append((box, flagset(json.loads(m.group(2)).split())))
        elif line.startswith("redirect "):
            d["redirects"].append(json.loads(line.split(" ")[1]).lower())
        elif line.startswith(("reject ", "ereject ")):
            d["reject"] = True
        elif line == "discard":
            d["discard"] = True
        elif line.startswith("vacation "):
            d["vacation"] = True
    if d["error"]:
        return decision(error=True)
    d["stores"].sort()
    d["redirects"].sort()
    return d


def normalise_pigeonhole(out, executed):
    if "failed to compile" in out:
        return decision(parse_error=True)
    if "final result: failed" in out:
        return decision(error=True)
    d = decision()
    store = None
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("* store message in folder: "):
            box = s[len("* store message in folder: "):]
            box = "INBOX" if box.upper() == "INBOX" else box
            store = [box, ()]
            d["stores"].append(store)
        elif s.startswith("+ add IMAP flags: ") and store is not None:
            store[1] = flagset(s[len("+ add IMAP flags: "):].split())
        elif s.startswith("* redirect message to: "):
            d["redirects"].append(s[len("* redirect message to: "):].strip("<>").lower())
        elif s.startswith(("* reject message", "* ereject")):
            d["reject"] = True
        elif s == "* discard":
            d["discard"] = True
    d["stores"] = sorted(tuple(x) for x in d["stores"])
    d["redirects"].sort()
    d["vacation"] = "Auto-Submitted: auto-replied (vacation)" in executed
    return d


@unittest.skipUnless(os.path.exists(SIEVE_TEST),
                     "Pigeonhole's sieve-test is not installed (apt-get install dovecot-sieve dovecot-core)")
class SieveOracle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.buzon = harness.BINARY
        cls.tmp = tempfile.mkdtemp(prefix="buzon-sieve-")
        # Pigeonhole drops to mail_uid when run as root: the files must be readable by nobody.
        os.chmod(cls.tmp, 0o777)
        cls.conf = os.path.join(cls.tmp, "empty.conf")
        open(cls.conf, "w").close()
        os.chmod(cls.conf, 0o644)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pigeonhole(self, script, message, env, execute):
        home = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(home, 0o777)
        sdir = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(sdir, 0o777)
        s = shutil.copy(script, sdir)
        m = shutil.copy(message, sdir)
        os.chmod(s, 0o644)
        os.chmod(m, 0o644)
        cmd = [SIEVE_TEST, "-c", self.conf, "-o", "mail_home=" + home,
               "-o", "mail_location=maildir:" + home + "/Maildir"]
        if os.geteuid() == 0:
            # Pigeonhole refuses to deliver as root; it runs as nobody instead.
            cmd += ["-o", "mail_uid=65534", "-o", "mail_gid=65534"]
        cmd += ["-f", env[0], "-r", env[1], "-a", env[1]]
        if execute:
            cmd.append("-e")
        cmd += [s, m]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return p.stdout + p.stderr

    def ours(self, script, message, env):
        p = subprocess.run([self.buzon, "sieve-test", script, message, "-f", env[0], "-a", env[1]],
                           capture_output=True, text=True, timeout=30)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p.returncode, p.stdout + p.stderr

    def test_same_decisions(self):
        scripts = sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".sieve"))
        messages = sorted(f for f in os.listdir(MESSAGES) if f.endswith(".eml"))
        self.assertGreaterEqual(len(scripts), 30)
        compared = 0
        for sname in scripts:
            script = os.path.join(SCRIPTS, sname)
            with open(script, encoding="utf-8") as f:
                has_vacation = "vacation" in f.read()
            for mname in messages:
                message = os.path.join(MESSAGES, mname)
                env = ENVELOPES.get(mname, DEFAULT_ENVELOPE)
                with self.subTest(script=sname, message=mname):
                    rc, out = self.ours(script, message, env)
                    got = normalise_buzon(rc, out)
                    if sname in BUZON_ONLY:
                        want = BUZON_ONLY[sname].get(mname)
                        if want is not None:
                            self.assertEqual(got, want, out)
                        continue
                    ref = self.pigeonhole(script, message, env, False)
                    executed = self.pigeonhole(script, message, env, True) if has_vacation else ""
                    want = normalise_pigeonhole(ref, executed)
                    self.assertEqual(got, want, "\n--- buzon:\n" + out + "--- pigeonhole:\n" + ref + executed)
                    compared += 1
        self.assertGreater(compared, 300)


if __name__ == "__main__":
    unittest.main()
