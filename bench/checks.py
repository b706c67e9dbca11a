#!/usr/bin/env python3
"""bench/checks.py -- what the inbound checks cost a message.

One buzon instance on 127.0.0.3 with dnsmasq on loopback serving an SPF record, a DKIM key and a
DMARC record for a.test. The same client (Python's smtplib, one session, from 127.0.0.9) sends
MSGS copies of a message DKIM-signed by `buzon dkim sign` (RSA 2048, SIZE bytes of body), first
with every check off, then with the shipped defaults (spf = tag, dkim.verify = yes,
dmarc = enforce; loopback not skipped). The time of each transaction (MAIL to the 250 after the
data) is taken; the difference of the medians is the checks' cost per message. The resolver's
cache answers the repeated lookups after the first message, as it would for a regular sender.
Prints `FIGURE checks.* value unit` lines. Loopback only; everything started here is stopped."""

import os
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from harness import BINARY, Server, free_port  # noqa: E402
from test_relay import Dns  # noqa: E402

MSGS = int(os.environ.get("MSGS", "500"))
SIZE = int(os.environ.get("SIZE", "4096"))


def keygen_and_sign(tmp):
    conf = os.path.join(tmp, "keys.conf")
    with open(conf, "w") as f:
        f.write(f"data_dir = {tmp}\nsmtp.listen = 127.0.0.1:{free_port()}\n")
    out = subprocess.run([BINARY, "dkim", "-c", conf, "keygen", "a.test", "--selector", "b1"],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if "IN TXT" in l][0]
    strings = re.findall(r'"([^"]*)"', line)
    body = "".join(f"{i:06d} the quick brown fox jumps over the lazy dog\r\n" for i in range(SIZE // 50))
    msg = ("From: Pepe <pepe@a.test>\r\nTo: maria@b.test\r\nSubject: bench\r\n"
           "Message-ID: <bench@a.test>\r\n\r\n" + body)
    signed = subprocess.run([BINARY, "dkim", "-c", conf, "sign", "a.test", "--selector", "b1"],
                            input=msg.encode(), capture_output=True, check=True).stdout
    return strings, signed


def run(dns_port, extra, signed):
    s = Server(host="127.0.0.3", domain="b.test", users=("maria",),
               extra=f"dns.servers = 127.0.0.1:{dns_port}\nlog_level = warn\nsmtp.greet_pause = 0\n"
                     f"checks.skip_networks =\n{extra}")
    try:
        s.start()
        times = []
        with smtplib.SMTP(s.host, s.port, source_address=("127.0.0.9", 0), timeout=60) as c:
            c.ehlo("mx.a.test")
            for _ in range(MSGS):
                t0 = time.perf_counter()
                c.sendmail("pepe@a.test", ["maria@b.test"], signed)
                times.append(time.perf_counter() - t0)
        head = open(os.path.join(s.tmp, "mail", "b.test", "maria", "Maildir", "new",
                                 sorted(os.listdir(os.path.join(s.tmp, "mail", "b.test", "maria", "Maildir",
                                                                "new")))[-1]), "rb").read(4096)
        return times, head
    finally:
        s.cleanup()


def main():
    tmp = tempfile.mkdtemp(prefix="buzon-bench-checks-")
    dns = None
    try:
        strings, signed = keygen_and_sign(tmp)
        dns = Dns(["--txt-record=a.test,v=spf1 ip4:127.0.0.0/8 -all",
                   "--txt-record=_dmarc.a.test,v=DMARC1; p=reject",
                   "--txt-record=b1._domainkey.a.test," + ",".join(strings)])
        off, _ = run(dns.port, "spf = off\ndkim.verify = no\ndmarc = off\n", signed)
        on, head = run(dns.port, "", signed)
        if b"spf=pass" not in head or b"dkim=pass" not in head or b"dmarc=pass" not in head:
            raise SystemExit(f"the checks did not all pass:\n{head.decode(errors='replace')}")
        m_off, m_on = statistics.median(off) * 1000, statistics.median(on) * 1000
        print(f"FIGURE checks.off_ms_per_message {m_off:.2f} ms")
        print(f"FIGURE checks.on_ms_per_message {m_on:.2f} ms")
        print(f"FIGURE checks.cost_ms_per_message {m_on - m_off:.2f} ms "
              f"(spf+dkim rsa-2048+dmarc, {SIZE} B body, median of {MSGS})")
    finally:
        if dns:
            dns.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
