#!/usr/bin/env python3
"""bench/relay.py -- messages/second relayed from one buzon instance to another.

Instance A (127.0.0.2) takes MSGS messages of SIZE bytes from smtp-source over
SESSIONS sessions for a domain whose MX (served by dnsmasq on loopback) is
instance B (127.0.0.3); the clock stops when all are in B's Maildir. Prints
`FIGURE relay.* value unit` lines and the peak RSS of both instances.
Loopback only; everything started here is stopped at the end."""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from harness import Server  # noqa: E402
from test_relay import Dns, free_port_on  # noqa: E402

MSGS = int(os.environ.get("MSGS", "2000"))
SIZE = int(os.environ.get("SIZE", "4096"))
SESSIONS = int(os.environ.get("SESSIONS", "10"))


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])


def main():
    port = free_port_on("127.0.0.2", "127.0.0.3")
    dns = Dns(["--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3"])
    common = (f"dns.servers = 127.0.0.1:{dns.port}\noutbound.port = {port}\nrelay.networks = 127.0.0.0/8\n"
              "outbound.tls = none\nlog_level = warn\nmax_connections_per_ip = 64\n")
    b = Server(host="127.0.0.3", port=port, domain="b.test", users=("maria",), extra=common)
    a = Server(host="127.0.0.2", port=port, domain="a.test", users=("pepe",),
               extra=common + "outbound.max_parallel = 8\noutbound.per_destination = 8\n")
    try:
        b.start()
        a.start()
        new = os.path.join(b.maildir("maria"), "new")
        t = time.time()
        subprocess.run(["smtp-source", "-s", str(SESSIONS), "-l", str(SIZE), "-m", str(MSGS), "-f", "pepe@a.test",
                        "-t", "maria@b.test", f"127.0.0.2:{port}"], check=True)
        accepted = time.time() - t
        while (not os.path.isdir(new) or len(os.listdir(new)) < MSGS) and time.time() - t < 300:
            time.sleep(0.02)
        total = time.time() - t
        got = len(os.listdir(new)) if os.path.isdir(new) else 0
        print(f"FIGURE relay.accepted_per_s {MSGS / accepted:.0f} msg/s")
        print(f"FIGURE relay.delivered_per_s {got / total:.0f} msg/s ({got}/{MSGS} in {total:.2f} s)")
        print(f"FIGURE relay.sender_peak_rss {hwm_kib(a.proc.pid) / 1024:.2f} MiB")
        print(f"FIGURE relay.receiver_peak_rss {hwm_kib(b.proc.pid) / 1024:.2f} MiB")
    finally:
        a.cleanup()
        b.cleanup()
        dns.stop()


if __name__ == "__main__":
    main()
