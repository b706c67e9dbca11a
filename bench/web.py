#!/usr/bin/env python3
"""bench/web.py -- what the webmail costs: the weight of its pages and the memory of its sessions.

One buzon instance with a web listener; alice has MSGS messages. Page weight: the bytes of HTML,
CSS and JavaScript a browser loads for the login page, the inbox (50 rows), a message and the
compose page (the style sheet and script once, as a browser caches them). Memory: the server's
RSS (and PSS) before and after SESSIONS logins through the web form, each holding its session
(and the IMAP session behind it), then after each session has loaded the inbox once. Prints
`FIGURE web.* value unit` lines. Loopback only; everything started here is stopped."""

import http.client
import os
import re
import smtplib
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from harness import Server, free_port  # noqa: E402

MSGS = int(os.environ.get("MSGS", "60"))
SESSIONS = int(os.environ.get("SESSIONS", "100"))


def mem(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies = {}

    def req(self, method, path, body=None, ctype=None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if ctype:
            h["Content-Type"] = ctype
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        for v in r.headers.get_all("Set-Cookie") or []:
            k, _, rest = v.partition("=")
            self.cookies[k] = rest.split(";")[0]
        return r.status, data

    def login(self, user, pw):
        _, page = self.req("GET", "/login")
        token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
        body = urllib.parse.urlencode({"csrf": token, "user": user, "password": pw})
        status, _ = self.req("POST", "/login", body, "application/x-www-form-urlencoded")
        assert status == 303, status


def main():
    web = free_port()
    s = Server(extra=f"web.listen = 127.0.0.1:{web}\nmax_connections_per_ip = 1000\n")
    try:
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port) as c:
            for i in range(MSGS):
                c.sendmail("carol@example.org", ["alice@example.test"],
                           f"From: Carol <carol@example.org>\r\nSubject: message number {i}\r\n"
                           f"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n{'text line ' * 40}\r\n".encode())
        b = Client(web)
        css = len(b.req("GET", "/static/style.css")[1])
        js = len(b.req("GET", "/static/app.js")[1])
        login = len(b.req("GET", "/login")[1])
        b.login("alice@example.test", "secret-alice")
        inbox = len(b.req("GET", "/folder?f=INBOX")[1])
        msg = len(b.req("GET", "/msg?f=INBOX&uid=1")[1])
        compose = len(b.req("GET", "/compose")[1])
        print(f"FIGURE web.page.login {login} bytes (+ css {css})")
        print(f"FIGURE web.page.inbox_50_rows {inbox} bytes")
        print(f"FIGURE web.page.message {msg} bytes")
        print(f"FIGURE web.page.compose {compose} bytes")
        print(f"FIGURE web.asset.css {css} bytes")
        print(f"FIGURE web.asset.js {js} bytes")
        print(f"FIGURE web.first_visit.inbox {inbox + css + js} bytes (html+css+js)")
        pid = s.proc.pid
        base = mem(pid)
        clients = []
        for _ in range(SESSIONS):
            c = Client(web)
            c.login("bob@example.test", "secret-bob")
            clients.append(c)
        after = mem(pid)
        for c in clients:
            c.req("GET", "/folder?f=INBOX")
        used = mem(pid)
        n = SESSIONS
        print(f"FIGURE web.rss.base {base[0]} KiB")
        print(f"FIGURE web.rss.{n}_sessions {after[0]} KiB (+{after[0] - base[0]} KiB, "
              f"{(after[0] - base[0]) / n:.1f} KiB each; PSS +{after[1] - base[1]} KiB)")
        print(f"FIGURE web.rss.{n}_sessions_after_inbox {used[0]} KiB (+{used[0] - base[0]} KiB, "
              f"{(used[0] - base[0]) / n:.1f} KiB each)")
        with open(f"/proc/{pid}/status") as f:
            threads = [l.split()[1] for l in f if l.startswith("Threads:")][0]
        print(f"FIGURE web.threads_with_{n}_sessions {threads}")
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
