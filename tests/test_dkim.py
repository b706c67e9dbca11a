"""DKIM against implementations nobody here wrote (RFC 6376, RFC 8463):
(a) messages signed by dkimpy (rsa-sha256 and ed25519-sha256; simple and relaxed; with l=) are
    verified by `buzon dkim verify`, which fetches the keys from a real DNS server (dnsmasq on
    loopback, the long RSA records split over several character-strings);
(b) messages signed by `buzon dkim sign` with keys from `buzon dkim keygen` are verified by dkimpy
    and their key records checked by OpenDKIM's opendkim-testkey against the same DNS server;
(c) tampered messages fail.
dkimpy (Debian's python3-dkim, with python3-nacl for Ed25519) loads only under /usr/bin/python3,
so it runs in a subprocess."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, free_port, requires
from test_relay import Dns

SYSTEM_PYTHON = "/usr/bin/python3"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
OPENSSL = shutil.which("openssl")
TESTKEY = shutil.which("opendkim-testkey") or "/usr/sbin/opendkim-testkey"
TESTMSG = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
DOMAIN = "example.test"


def have_dkimpy():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import dkim, nacl"], capture_output=True)
    return r.returncode == 0


# Runs under /usr/bin/python3: one JSON request on stdin, one JSON answer on stdout.
HELPER = r'''
import base64, json, sys
import dkim
req = json.load(sys.stdin)
msg = base64.b64decode(req["message"])
if req["op"] == "sign":
    sig = dkim.sign(msg, req["selector"].encode(), req["domain"].encode(), req["key"].encode(),
                    canonicalize=tuple(c.encode() for c in req["canon"]),
                    signature_algorithm=req["alg"].encode(),
                    include_headers=[h.encode() for h in req["headers"]] if req.get("headers") else None,
                    length=req.get("length", False))
    print(json.dumps({"signature": base64.b64encode(sig).decode()}))
elif req["op"] == "verify":
    records = req["records"]
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = records.get(name.rstrip("."))
        return rec.encode() if rec is not None else None
    d = dkim.DKIM(msg)
    n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
    print(json.dumps({"results": [bool(d.verify(idx=i, dnsfunc=dnsfunc)) for i in range(n)]}))
elif req["op"] == "ed25519":
    import nacl.signing
    k = nacl.signing.SigningKey.generate()
    print(json.dumps({"private": base64.b64encode(bytes(k)).decode(),
                      "public": base64.b64encode(bytes(k.verify_key)).decode()}))
'''


def dkimpy(request):
    r = subprocess.run([SYSTEM_PYTHON, "-c", HELPER], input=json.dumps(request), capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("dkimpy helper failed:\n" + r.stderr)
    return json.loads(r.stdout)


def txt_strings(record, size=200):
    """A record as the character-strings a zone would hold (each at most 255 octets)."""
    return [record[i:i + size] for i in range(0, len(record), size)]


class Dnsmasq(Dns):
    """dnsmasq on 127.0.0.1:<port> (test_relay.Dns), answering these TXT records, each given as its
    character-strings."""

    def __init__(self, txt):
        super().__init__(["--txt-record=" + name + "," + ",".join(strings) for name, strings in txt.items()])


MESSAGES = {
    "plain": (
        "From: Alice <alice@example.test>\r\n"
        "To: bob@example.net\r\n"
        "Subject: Lunch?\r\n"
        "Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
        "Message-ID: <lunch-1@example.test>\r\n"
        "\r\n"
        "Shall we have lunch at noon?\r\n"
        "\r\n"
        "Alice\r\n"
    ),
    # Blanks at line ends, lines of blanks only, and trailing empty lines: the relaxed body rules
    # (RFC 6376 3.4.4) where implementations have differed.
    "whitespace": (
        "From:   Alice   <alice@example.test>  \r\n"
        "Subject: folded\r\n"
        "\tand   spaced   \r\n"
        "To: bob@example.net\r\n"
        "\r\n"
        "  leading and trailing  \t\r\n"
        "in  the \t middle\r\n"
        " \t \r\n"
        "\r\n"
        "last words \r\n"
        "   \r\n"
        "\r\n"
        "\r\n"
    ),
    "empty-body": (
        "From: alice@example.test\r\n"
        "To: bob@example.net\r\n"
        "Subject: nothing\r\n"
        "\r\n"
    ),
}


@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
@requires(have_dkimpy(), "dkimpy under /usr/bin/python3 (packages python3-dkim python3-nacl)")
@requires(OPENSSL is not None, "openssl (package openssl)")
class Dkim(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="buzon-dkim-")
        # dkimpy's keys: RSA 2048 (PKCS#1, as dkimpy reads it) and Ed25519.
        cls.rsa_pem = subprocess.run([OPENSSL, "genrsa", "-traditional", "2048"], capture_output=True,
                                     check=True).stdout.decode()
        der = subprocess.run([OPENSSL, "rsa", "-pubout", "-outform", "DER"], input=cls.rsa_pem.encode(),
                             capture_output=True, check=True).stdout
        cls.py_rsa_record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        ed = dkimpy({"op": "ed25519", "message": ""})
        cls.ed_private = ed["private"]
        cls.py_ed_record = "v=DKIM1; k=ed25519; p=" + ed["public"]
        # buzon's keys, made by `buzon dkim keygen`, one selector per algorithm.
        cls.data = os.path.join(cls.tmp, "data")
        cls.records = {}
        cls.config = cls.write_config(None)
        for sel, extra in (("brsa", []), ("bed", ["--ed25519"])):
            out = cls.buzon("keygen", DOMAIN, "--selector", sel, *extra)
            line = [l for l in out.splitlines() if "IN TXT" in l][0]
            strings = re.findall(r'"([^"]*)"', line)
            assert all(len(s) <= 255 for s in strings), line
            cls.records[f"{sel}._domainkey.{DOMAIN}"] = strings
        assert len(cls.records[f"brsa._domainkey.{DOMAIN}"]) >= 2, "an RSA 2048 record needs two strings"
        cls.records[f"pyrsa._domainkey.{DOMAIN}"] = txt_strings(cls.py_rsa_record)
        cls.records[f"pyed._domainkey.{DOMAIN}"] = [cls.py_ed_record]
        cls.records[f"revoked._domainkey.{DOMAIN}"] = ["v=DKIM1; k=rsa; p="]
        cls.dns = Dnsmasq(cls.records)
        cls.config = cls.write_config(cls.dns.port)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write_config(cls, port):
        path = os.path.join(cls.tmp, "buzon.conf")
        with open(path, "w") as f:
            # smtp.listen only makes the config valid: no server is started.
            f.write(f"hostname = mx.{DOMAIN}\ndata_dir = {cls.data}\nlocal_domains = {DOMAIN}\n"
                    f"smtp.listen = 127.0.0.1:{free_port()}\n")
            if port:
                f.write(f"dns.servers = 127.0.0.1:{port}\n")
        return path

    @classmethod
    def buzon(cls, *args, stdin=b""):
        r = subprocess.run([BINARY, "dkim", "-c", os.path.join(cls.tmp, "buzon.conf"), *args], input=stdin,
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"buzon dkim {' '.join(args)} exited {r.returncode}:\n{r.stderr.decode()}")
        return r.stdout.decode()

    def verify(self, message):
        """`buzon dkim verify`: one result line per signature."""
        return self.buzon("verify", stdin=message.encode()).splitlines()

    def py_sign(self, message, selector, canon, alg="rsa-sha256", length=False):
        key = self.rsa_pem if alg == "rsa-sha256" else self.ed_private
        r = dkimpy({"op": "sign", "message": base64.b64encode(message.encode()).decode(), "selector": selector,
                    "domain": DOMAIN, "key": key, "canon": canon, "alg": alg, "length": length})
        return base64.b64decode(r["signature"]).decode() + message

    def py_verify(self, message):
        records = {name: "".join(strings) for name, strings in self.records.items()}
        return dkimpy({"op": "verify", "message": base64.b64encode(message.encode()).decode(),
                       "records": records})["results"]

    # (a) dkimpy signs, buzon verifies.

    def test_dkimpy_signatures_verify(self):
        for name, msg in MESSAGES.items():
            for alg, sel in (("rsa-sha256", "pyrsa"), ("ed25519-sha256", "pyed")):
                for canon in (["simple", "simple"], ["relaxed", "relaxed"], ["relaxed", "simple"],
                              ["simple", "relaxed"]):
                    with self.subTest(msg=name, alg=alg, canon=canon):
                        signed = self.py_sign(msg, sel, canon, alg)
                        out = self.verify(signed)
                        self.assertEqual(len(out), 1, out)
                        self.assertTrue(out[0].startswith(f"dkim=pass header.d={DOMAIN} header.s={sel} "
                                                          f"header.a={alg}"), out)

    def test_opendkim_signatures_are_read(self):
        """Messages signed by OpenDKIM's library (opendkim-testmsg with the pyrsa key; it reads LF
        text) are parsed and judged: that tool signs rsa-sha1 only, which RFC 8301 3.1 forbids
        verifiers to accept, so each is a permerror naming the algorithm, never a pass or a crash."""
        key = os.path.join(self.tmp, "opendkim.key")
        with open(key, "w") as f:
            f.write(self.rsa_pem)
        os.chmod(key, 0o600)
        # (opendkim-testmsg's own parser refuses the other two test messages: "dkim_chunk(): Syntax
        # error" on header lines with trailing blanks and on an empty body.)
        for name, msg in [("plain", MESSAGES["plain"])]:
            with self.subTest(msg=name):
                r = subprocess.run([TESTMSG, "-d", DOMAIN, "-k", key, "-s", "pyrsa", "-t", self.tmp],
                                   input=msg.replace("\r\n", "\n").encode(), capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                signed = r.stdout.decode()
                self.assertIn("a=rsa-sha1;", " ".join(signed.split()))
                out = self.verify(signed)
                self.assertEqual(len(out), 1, out)
                self.assertTrue(out[0].startswith(f"dkim=permerror header.d={DOMAIN} header.s=pyrsa "
                                                  "header.a=rsa-sha1"), out)
                self.assertIn("RFC 8301", out[0])

    def test_dkimpy_length_tag(self):
        for canon in (["relaxed", "relaxed"], ["simple", "simple"]):
            signed = self.py_sign(MESSAGES["plain"], "pyrsa", canon, length=True)
            self.assertIn("l=", signed.split("\r\n\r\n")[0])
            self.assertTrue(self.verify(signed)[0].startswith("dkim=pass"))
            # Text appended below the signed length still passes (that is what l= allows).
            self.assertTrue(self.verify(signed + "-- \r\nmailing list footer\r\n")[0].startswith("dkim=pass"))

    # (c) tampering.

    def test_tampered_messages_fail(self):
        signed = self.py_sign(MESSAGES["plain"], "pyed", ["relaxed", "relaxed"], "ed25519-sha256")
        body = signed.replace("at noon", "at one")
        self.assertEqual(self.verify(body)[0].split()[0], "dkim=fail")
        self.assertIn("body hash", self.verify(body)[0])
        head = signed.replace("Subject: Lunch?", "Subject: Dinner?")
        self.assertEqual(self.verify(head)[0].split()[0], "dkim=fail")
        revoked = signed.replace("s=pyed", "s=revoked").replace("a=ed25519-sha256", "a=rsa-sha256")
        self.assertEqual(self.verify(revoked)[0].split()[0], "dkim=permerror")
        nokey = signed.replace("s=pyed", "s=nosuchkey")
        self.assertIn("no key", self.verify(nokey)[0])
        self.assertEqual(self.verify(MESSAGES["plain"]), ["dkim=none"])

    # (b) buzon signs, dkimpy and OpenDKIM check.

    def test_buzon_signatures_verify_with_dkimpy(self):
        for name, msg in MESSAGES.items():
            with self.subTest(msg=name):
                once = self.buzon("sign", DOMAIN, "--selector", "brsa", stdin=msg.encode())
                twice = self.buzon("sign", DOMAIN, "--selector", "bed", stdin=once.encode())
                self.assertTrue(twice.endswith(msg))
                self.assertIn("a=ed25519-sha256", twice.split("DKIM-Signature:")[1])
                self.assertEqual(self.py_verify(twice), [True, True])
                out = self.verify(twice)
                self.assertEqual([l.split()[0] for l in out], ["dkim=pass", "dkim=pass"], out)
                tampered = twice.replace("Subject:", "Subject: x")
                self.assertEqual(self.py_verify(tampered), [False, False])

    def test_buzon_signs_lf_files_with_the_newest_key_of_each_type(self):
        msg = MESSAGES["plain"].replace("\r\n", "\n")
        signed = self.buzon("sign", DOMAIN, stdin=msg.encode())
        self.assertNotIn("\r", signed)
        # Without --selector: the newest RSA key (brsa) and the newest Ed25519 key (bed), each under
        # its own selector.
        self.assertIn("s=brsa;", signed)
        self.assertIn("s=bed;", signed)
        self.assertEqual(self.py_verify(signed.replace("\n", "\r\n")), [True, True])
        self.assertEqual([l.split()[0] for l in self.verify(signed)], ["dkim=pass", "dkim=pass"])

    def test_keygen_refuses_overwrite_and_writes_private_files(self):
        r = subprocess.run([BINARY, "dkim", "-c", self.config, "keygen", DOMAIN, "--selector", "brsa"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"exists", r.stderr)
        for f in os.listdir(os.path.join(self.data, "dkim")):
            self.assertEqual(os.stat(os.path.join(self.data, "dkim", f)).st_mode & 0o777, 0o600, f)
        self.assertEqual(os.stat(os.path.join(self.data, "dkim")).st_mode & 0o777, 0o700)

    @requires(os.path.exists(TESTKEY), "opendkim-testkey (package opendkim-tools)")
    def test_opendkim_testkey_accepts_the_rsa_record(self):
        # OpenDKIM's resolver (libunbound) pointed at the dnsmasq through an unbound config; unbound
        # answers the special-use .test zone itself unless told not to. opendkim-testkey 2.11
        # checks RSA keys only (an Ed25519 key fails in EVP_PKEY_get1_RSA).
        unbound = os.path.join(self.tmp, "unbound.conf")
        with open(unbound, "w") as f:
            f.write("server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n"
                    "  local-zone: \"test.\" nodefault\n"
                    f"forward-zone:\n  name: \".\"\n  forward-addr: 127.0.0.1@{self.dns.port}\n")
        conf = os.path.join(self.tmp, "opendkim.conf")
        with open(conf, "w") as f:
            f.write(f"ResolverConfiguration {unbound}\n")
        key = os.path.join(self.data, "dkim", f"{DOMAIN}.brsa.rsa.pem")
        r = subprocess.run([TESTKEY, "-x", conf, "-d", DOMAIN, "-s", "brsa", "-k", key, "-vvv"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("key OK", r.stdout + r.stderr)
        # A record whose key is not the file's is refused.
        r = subprocess.run([TESTKEY, "-x", conf, "-d", DOMAIN, "-s", "pyrsa", "-k", key, "-vvv"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
