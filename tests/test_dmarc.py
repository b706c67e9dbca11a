"""`buzon dmarc check` against a real DNS server: dnsmasq on loopback serves the _dmarc TXT
records of a few .test domains, and buzon's own resolver finds them through `dns.servers`
(RFC 7489 6.6.3 discovery, 3.1 alignment, 6.3 sp, 6.6.4 pct). The Authentication-Results field it
prints is read back with python3-authres (Debian's RFC 8601 parser, loaded by /usr/bin/python3)."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import free_port, requires, run_buzon
from test_relay import DNSMASQ, Dns

AUTHRES_PYTHON = "/usr/bin/python3"


def has_authres():
    if not os.path.exists(AUTHRES_PYTHON):
        return False
    return subprocess.run([AUTHRES_PYTHON, "-c", "import authres"], capture_output=True).returncode == 0


RECORDS = {
    "_dmarc.reject.test": "v=DMARC1; p=reject",
    "_dmarc.strict.test": "v=DMARC1; p=reject; aspf=s; adkim=s",
    "_dmarc.org.test": "v=DMARC1; p=reject; sp=quarantine",
    "_dmarc.pct.test": "v=DMARC1; p=quarantine; pct=0",
    "_dmarc.pctreject.test": "v=DMARC1; p=reject; pct=0",
    "_dmarc.badp.test": "v=DMARC1; p=maybe; rua=mailto:agg@badp.test",
    "_dmarc.broken.test": "v=DMARC1; p=maybe",
}
# Two DMARC records at one name end discovery (6.6.3 step 5); a TXT record that is not DMARC
# beside a DMARC one does not count.
EXTRA = [("_dmarc.two.test", "v=DMARC1; p=reject"), ("_dmarc.two.test", "v=DMARC1; p=none"),
         ("_dmarc.mixed.test", "some other text"), ("_dmarc.mixed.test", "v=DMARC1; p=reject")]


def txt_arg(name, text):
    # dnsmasq makes a character-string of each comma-separated piece (quotes on its command line
    # are kept as data): these records have no comma.
    assert "," not in text
    return f"--txt-record={name},{text}"


@requires(os.path.exists(DNSMASQ), "dnsmasq (package dnsmasq-base)")
class DmarcCheck(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        records = [txt_arg(n, t) for n, t in list(RECORDS.items()) + EXTRA]
        cls.dns = Dns(records)
        cls.tmp = tempfile.mkdtemp(prefix="buzon-dmarc-")
        cls.config = os.path.join(cls.tmp, "buzon.conf")
        with open(cls.config, "w") as f:
            # smtp.listen only makes the config valid: nothing listens.
            f.write(f"hostname = mx.buzon.test\ndata_dir = {cls.tmp}/data\n"
                    f"smtp.listen = 127.0.0.1:{free_port()}\n"
                    f"dns.servers = 127.0.0.1:{cls.dns.port}\n")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, domain, *args):
        r = run_buzon("dmarc", "check", "-c", self.config, domain, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        fields, ar = {}, []
        for line in r.stdout.splitlines():
            if line.startswith("Authentication-Results:") or ar and line.startswith("\t"):
                ar.append(line)
            elif ": " in line:
                k, v = line.split(": ", 1)
                fields[k] = v
        fields["ar"] = "\r\n".join(ar)
        return fields

    def assertOutcome(self, out, result, policy, disposition, policy_domain=None):
        self.assertEqual((out["result"], out["policy"], out["disposition"]), (result, policy, disposition), out)
        if policy_domain:
            self.assertEqual(out["policy-domain"], policy_domain)

    def test_reject_policy_with_failing_evidence(self):
        out = self.check("reject.test", "--spf", "reject.test:fail", "--dkim", "reject.test:fail",
                         "--dkim", "evil.example:pass")
        self.assertOutcome(out, "fail", "reject", "reject", "reject.test")

    def test_relaxed_alignment_with_a_subdomain_passing(self):
        out = self.check("reject.test", "--spf", "bounces.reject.test:pass")
        self.assertOutcome(out, "pass", "reject", "none")
        out = self.check("reject.test", "--dkim", "mail.reject.test:pass")
        self.assertOutcome(out, "pass", "reject", "none")

    def test_strict_alignment_fails_for_a_subdomain(self):
        out = self.check("strict.test", "--spf", "bounces.strict.test:pass", "--dkim", "mail.strict.test:pass")
        self.assertOutcome(out, "fail", "reject", "reject")
        out = self.check("strict.test", "--dkim", "strict.test:pass")
        self.assertOutcome(out, "pass", "reject", "none")

    def test_org_domain_fallback_applies_sp(self):
        out = self.check("a.b.org.test", "--spf", "elsewhere.example:pass")
        self.assertOutcome(out, "fail", "quarantine", "quarantine", "org.test")
        out = self.check("a.b.org.test", "--spf", "c.org.test:pass")
        self.assertOutcome(out, "pass", "quarantine", "none", "org.test")
        # The organizational domain of a .test name, under the PSL's implicit "*" rule.
        r = run_buzon("dmarc", "org-domain", "-c", self.config, "a.b.example.test")
        self.assertEqual(r.stdout.strip(), "example.test", r.stderr)

    def test_pct_zero_samples_everything_out(self):
        for draw in ("0", "99"):
            out = self.check("pct.test", "--draw", draw)
            self.assertOutcome(out, "fail", "quarantine", "none")
            out = self.check("pctreject.test", "--draw", draw)
            self.assertOutcome(out, "fail", "reject", "quarantine")
        self.assertOutcome(self.check("pct.test"), "fail", "quarantine", "none")

    def test_no_record_several_records_and_broken_records(self):
        self.assertOutcome(self.check("nothing.test"), "none", "none", "none")
        self.assertOutcome(self.check("two.test"), "none", "none", "none")
        self.assertOutcome(self.check("mixed.test"), "fail", "reject", "reject")
        self.assertOutcome(self.check("badp.test"), "fail", "none", "none")
        self.assertOutcome(self.check("broken.test"), "permerror", "none", "none")

    def test_usage_errors(self):
        for args in ([], ["--spf", "x"], ["reject.test", "--dkim", "x:maybe"], ["reject.test", "--draw", "100"]):
            r = run_buzon("dmarc", "check", "-c", self.config, *args)
            self.assertEqual(r.returncode, 64, (args, r.stdout, r.stderr))

    @requires(has_authres(), "python3-authres (Debian's RFC 8601 parser under /usr/bin/python3)")
    def test_authentication_results_parses(self):
        out = self.check("reject.test", "--spf", "bounces.reject.test:pass", "--dkim", "reject.test:pass",
                         "--dkim", "a-rather-long-third-party-signing-domain.example:fail")
        ar = out["ar"]
        for line in ar.split("\r\n"):
            self.assertLess(len(line.expandtabs()), 78, ar)
        script = ("import authres, sys\n"
                  "h = authres.AuthenticationResultsHeader.parse(sys.stdin.read())\n"
                  "print(h.authserv_id)\n"
                  "for r in h.results:\n"
                  "    print(r.method, r.result, *sorted(f'{p.type}.{p.name}={p.value}' for p in r.properties))\n")
        r = subprocess.run([AUTHRES_PYTHON, "-c", script], input=ar, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "mx.buzon.test",
            "spf pass smtp.mailfrom=bounces.reject.test",
            "dkim pass header.d=reject.test",
            "dkim fail header.d=a-rather-long-third-party-signing-domain.example",
            "dmarc pass header.from=reject.test",
        ])


if __name__ == "__main__":
    unittest.main()
