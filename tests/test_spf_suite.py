"""The whole RFC 7208 test suite (the SPF council's rfc7208-tests.yml, shipped by Debian's
python3-spf) against `buzon spf check`: each scenario's zone is served by a real DNS server on
loopback (dnslib, which like PyYAML loads only under /usr/bin/python3, so the suite runs in a
helper process: this file run as `/usr/bin/python3 test_spf_suite.py --suite BINARY`), and every
test case is one run of the real binary with `dns.servers` pointing at it.

The zone follows the suite's own harness (python3-spf's testspf.py): SPF-type records are also
served as TXT when a name has no TXT record; a TIMEOUT entry makes the lookups of the types not
listed before it fail, and names starting with "error." fail too. Failing lookups are answered
with SERVFAIL instead of silence: both are temperror in RFC 7208 (2.6.6), and SERVFAIL spares
the resolver's timeout × attempts per case. A TXT record of no strings (not encodable on the
wire: RFC 1035 3.3.14 wants one or more) is served as one empty string, which means the same
to SPF (a TXT record that is not an SPF record)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
SYSTEM_PYTHON = "/usr/bin/python3"
RECEIVER = "receiver.example"

# Cases that cannot pass for a reason outside SPF, each with that reason. A case listed here that
# starts passing fails the test, so the list cannot outlive its reason.
KNOWN_GAPS = {}


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def load_zone(zonedata):
    """name -> list of ("TIMEOUT") or (type, value), as testspf.py's getrdata/loadZone."""
    zone = {}
    for name, records in zonedata.items():
        out, generated, gen = [], [], True
        for m in records:
            if not isinstance(m, dict):
                out.append(m)  # "TIMEOUT"
                continue
            for t, v in m.items():
                if t in ("TXT", "SPF") and isinstance(v, str):
                    v = [v]
                if t == "TXT":
                    gen = False
                elif t == "SPF" and gen:
                    generated.append(("TXT", v))
                if v != ["NONE"]:
                    out.append((t, v))
        if gen:
            out.extend(generated)
        zone[name.lower().rstrip(".")] = out
    return zone


def make_resolver(zone):
    from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A
    from dnslib.server import BaseResolver

    def records(name, qtype):
        """("ok", [(type, value)]) | ("nx", []) | ("fail", [])."""
        name = ".".join(label for label in name.split(".") if label).lower()
        if name not in zone:
            return ("fail", []) if name.startswith("error.") else ("nx", [])
        found, seen = [], False
        for item in zone[name]:
            if item == "TIMEOUT":
                if not seen:
                    return ("fail", [])
                break
            t, v = item
            if t == qtype:
                seen = True
                if v == "TIMEOUT":
                    return ("fail", [])
            if t == qtype or (t == "CNAME" and qtype != "CNAME"):
                found.append((t, v))
        return ("ok", found)

    def rdata(t, v):
        if t == "A":
            return A(v)
        if t == "AAAA":
            return AAAA(v)
        if t == "MX":
            return MX(v[1], v[0])
        if t == "PTR":
            return PTR(v)
        if t == "CNAME":
            return CNAME(v)
        strings = [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in v]
        return TXT(strings or [b""])

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            # The labels as sent: str() of a DNSLabel escapes spaces (\\032), which SPF's %_ puts in
            # names.
            name = ".".join(label.decode("latin-1") for label in request.q.qname.label)
            owner = request.q.qname
            qtype = QTYPE[request.q.qtype]
            for _ in range(8):  # CNAME chain, as a recursive server would answer it
                status, found = records(name.rstrip("."), qtype)
                if status == "fail":
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                if status == "nx":
                    reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                target = None
                for t, v in found:
                    reply.add_answer(RR(owner, getattr(QTYPE, t), rdata=rdata(t, v), ttl=60))
                    if t == "CNAME" and qtype != "CNAME":
                        target = v
                if target is None or any(t == qtype for t, _ in found):
                    return reply
                name = owner = target
            return reply

    return Resolver()


def run_suite(binary):
    """Runs every case; prints one JSON object per case."""
    import gzip

    import yaml
    from dnslib.server import DNSServer

    with gzip.open(SUITE, "rb") as f:
        scenarios = [s for s in yaml.safe_load_all(f) if s]
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            zone = load_zone(scenario.get("zonedata") or {})
            port = free_port()
            resolver = make_resolver(zone)
            servers = [DNSServer(resolver, port=port, address="127.0.0.1", tcp=tcp) for tcp in (False, True)]
            for s in servers:
                s.start_thread()
            conf = os.path.join(tmp, "buzon.conf")
            with open(conf, "w") as f:
                f.write(f"hostname = {RECEIVER}\nsmtp.listen = 127.0.0.1:25\ndns.servers = 127.0.0.1:{port}\n")
            try:
                for name, case in sorted(scenario["tests"].items()):
                    args = [binary, "spf", "-c", conf, "check", case["host"], case["mailfrom"], case["helo"]]
                    p = subprocess.run(args, capture_output=True, timeout=60)
                    out = p.stdout.decode("utf-8", "replace").splitlines()
                    got = out[0] if out else "exit %d: %s" % (p.returncode, p.stderr.decode("utf-8", "replace"))
                    exp = next((line[len("explanation: "):] for line in out if line.startswith("explanation: ")), None)
                    prob = next((line[len("problem: "):] for line in out if line.startswith("problem: ")), None)
                    want = case["result"] if isinstance(case["result"], list) else [case["result"]]
                    # Every run also prints the Received-SPF field (RFC 7208 9.1) with that result.
                    ok = got in want and any(line.startswith(f"Received-SPF: {got} (") for line in out)
                    want_exp = case.get("explanation")
                    if want_exp is not None:
                        # No explanation is the harness's default text "DEFAULT". Explanations are
                        # compared without case: the suite spells %{ir}'s IPv6 nibbles in upper
                        # case, RFC 7208 7.4 in lower case, and DNS names have no case.
                        ok = ok and (exp or "DEFAULT").lower() == str(want_exp).lower()
                    print(json.dumps({"scenario": scenario.get("description"), "case": name, "ok": ok,
                                      "got": got, "want": want, "explanation": exp,
                                      "want_explanation": want_exp, "problem": prob}), flush=True)
            finally:
                for s in servers:
                    s.stop()


class Rfc7208Suite(unittest.TestCase):
    def test_every_case_passes(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        binary = os.environ.get("BUZON_BIN") or os.path.join(root, "target", "release", "buzon")
        for what, path in (("python3-spf (the suite)", SUITE), ("/usr/bin/python3", SYSTEM_PYTHON),
                           ("buzon binary", binary)):
            self.assertTrue(os.path.exists(path), f"{what} missing: {path}")
        p = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__), "--suite", binary],
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        cases = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        passed = [c for c in cases if c["ok"]]
        print(f"\nRFC 7208 suite: {len(passed)} of {len(cases)} cases pass", file=sys.stderr)
        for c in cases:
            if c["case"] in KNOWN_GAPS and not c["ok"]:
                print(f"known gap: {c['case']}: {KNOWN_GAPS[c['case']]}", file=sys.stderr)
        self.assertGreater(len(cases), 200)
        failed = [c for c in cases if not c["ok"] and c["case"] not in KNOWN_GAPS]
        self.assertEqual(failed, [], "failing cases:\n" + "\n".join(json.dumps(c) for c in failed))
        fixed = [c["case"] for c in cases if c["ok"] and c["case"] in KNOWN_GAPS]
        self.assertEqual(fixed, [], "these cases pass now: remove them from KNOWN_GAPS")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--suite":
        run_suite(sys.argv[2])
    else:
        unittest.main()
