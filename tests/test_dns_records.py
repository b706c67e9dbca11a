"""`buzon dns-records DOMAIN`: its output is a zone that dnspython (Debian's python3-dnspython,
loaded by /usr/bin/python3) reads without error, with the MX, SPF, DMARC and SRV records of this
configuration's real ports, and DKIM records that work: served by dnsmasq exactly as read from that
zone, they verify a message that `buzon dkim sign` signed."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BINARY, free_port, requires
from test_relay import Dns

SYSTEM_PYTHON = "/usr/bin/python3"

PARSE = r"""
import json, sys
import dns.zone, dns.rdatatype
z = dns.zone.from_text(sys.stdin.read(), origin="example.test.", relativize=False, check_origin=False)
out = []
for name, node in z.nodes.items():
    for rds in node.rdatasets:
        for rd in rds:
            if rds.rdtype == dns.rdatatype.TXT:
                value = [s.decode() for s in rd.strings]
            else:
                value = rd.to_text()
            out.append([name.to_text(), dns.rdatatype.to_text(rds.rdtype), value])
print(json.dumps(out))
"""


def has_dnspython():
    return subprocess.run([SYSTEM_PYTHON, "-c", "import dns.zone"], capture_output=True).returncode == 0


@requires(has_dnspython(), "python3-dnspython (under /usr/bin/python3)")
class DnsRecords(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="buzon-records-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conf = os.path.join(self.tmp, "buzon.conf")
        self.write_conf()

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write(f"hostname = mx.example.test\nlocal_domains = example.test\ndata_dir = {self.tmp}/data\n"
                    f"smtp.listen = 127.0.0.1:{free_port()}\nsubmission.listen = 127.0.0.1:2587\n"
                    f"imap.listen = 127.0.0.1:2143\n{extra}")

    def buzon(self, *args, stdin=None):
        r = subprocess.run([BINARY, *args, "-c", self.conf], input=stdin, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def zone(self):
        text = self.buzon("dns-records", "example.test")
        r = subprocess.run([SYSTEM_PYTHON, "-c", PARSE], input=text, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode() + "\n" + text.decode())
        return json.loads(r.stdout), text.decode()

    def test_records_parse_and_match_the_configuration(self):
        records, text = self.zone()
        have = {(n, t, v if isinstance(v, str) else "".join(v)) for n, t, v in records}
        self.assertIn(("example.test.", "MX", "10 mx.example.test."), have)
        self.assertIn(("example.test.", "TXT", "v=spf1 mx -all"), have)
        self.assertIn(("_dmarc.example.test.", "TXT", "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"),
                      have)
        self.assertIn(("_submission._tcp.example.test.", "SRV", "0 1 2587 mx.example.test."), have)
        self.assertIn(("_imap._tcp.example.test.", "SRV", "0 1 2143 mx.example.test."), have)
        self.assertIn(("_imaps._tcp.example.test.", "SRV", "0 0 0 ."), have, "not offered (RFC 6186 4)")
        self.assertIn("buzon dkim keygen example.test", text)

    def test_dkim_records_as_published_verify_signatures(self):
        self.buzon("dkim", "keygen", "example.test", "--selector", "r1")
        self.buzon("dkim", "keygen", "example.test", "--selector", "e1", "--ed25519")
        records, _ = self.zone()
        dkim = {n: v for n, t, v in records if t == "TXT" and "._domainkey." in n}
        self.assertEqual(sorted(dkim), ["e1._domainkey.example.test.", "r1._domainkey.example.test."])
        self.assertTrue(all(len(s) <= 255 for v in dkim.values() for s in v))
        dns = Dns(["--txt-record=" + n.rstrip(".") + "," + ",".join(v) for n, v in dkim.items()])
        self.addCleanup(dns.stop)
        self.write_conf(f"dns.servers = 127.0.0.1:{dns.port}\n")
        msg = b"From: a@example.test\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nhello\r\n"
        signed = self.buzon("dkim", "sign", "example.test", stdin=msg)
        out = self.buzon("dkim", "verify", stdin=signed).decode().splitlines()
        self.assertEqual(sorted(l.split()[0] + " " + l.split()[2] for l in out),
                         ["dkim=pass header.s=e1", "dkim=pass header.s=r1"], out)


if __name__ == "__main__":
    unittest.main()
