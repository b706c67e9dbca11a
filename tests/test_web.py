"""The web listener: webmail and client self-configuration, driven with Python's http.client and
curl. Every route, every security rule: CSRF tokens, sessions that really end, a user who reaches
only their own mail whatever the URL says, scripts in HTML mail that never run on our origin,
redirects that stay on the host, bounded requests. Mail read on the web is mail delivered over
SMTP; mail sent on the web is found by imaplib in the recipient's INBOX and the sender's Sent."""

import http.client
import imaplib
import os
import plistlib
import re
import shutil
import smtplib
import ssl
import subprocess
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET
from email.message import EmailMessage

from harness import Server, free_port, requires, run_buzon

HAVE_CURL = shutil.which("curl") is not None


class Browser:
    """A client that keeps cookies, as a browser does (no JavaScript: the pages need none)."""

    def __init__(self, port, tls=False):
        self.port, self.tls = port, tls
        self.cookies = {}

    def conn(self):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20,
                                               context=ssl._create_unverified_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for v in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = v.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in v:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        c.close()
        return r.status, r.headers, data

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields):
        body = urllib.parse.urlencode(fields)
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def post_multipart(self, path, fields, files=()):
        boundary = "----buzontest7MA4YWxkTrZu0gW"
        out = b""
        for k, v in fields:
            out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n").encode() + v.encode() + b"\r\n"
        for k, name, ctype, data in files:
            out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\n"
                    f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
        out += f"--{boundary}--\r\n".encode()
        return self.request("POST", path, out, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def csrf(self, page):
        m = re.search(rb'name="csrf" value="([^"]+)"', page)
        assert m, f"no csrf field in {page[:400]!r}"
        return m.group(1).decode()

    def login(self, user, password):
        status, _, page = self.get("/login")
        assert status == 200, status
        return self.post("/login", {"csrf": self.csrf(page), "user": user, "password": password})


class Web(unittest.TestCase):

    def setUp(self):
        self.web, self.webs, self.imap, self.sub = free_port(), free_port(), free_port(), free_port()
        s = Server()
        self.server = s
        self.addCleanup(s.cleanup)
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config, "a") as f:
            f.write(f"web.listen = 127.0.0.1:{self.web}\nweb.tls_listen = 127.0.0.1:{self.webs}\n"
                    f"imap.listen = 127.0.0.1:{self.imap}\nsubmission.listen = 127.0.0.1:{self.sub}\n"
                    f"tls.cert = {cert}\ntls.key = {key}\nauth.max_failures = 3\n"
                    f"auth.cleartext_networks = 127.0.0.0/8\n"
                    f"dns.servers = 127.0.0.1:{free_port()}\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost", "mx.example.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()

    def deliver(self, to, subject, text="Hello.", html=None, sender="carol@example.org"):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = sender, to, subject
        m.set_content(text)
        if html:
            m.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            c.send_message(m)

    def logged_in(self, user="alice", tls=False):
        b = Browser(self.webs if tls else self.web, tls)
        status, headers, _ = b.login(f"{user}@example.test", f"secret-{user}")
        self.assertEqual(status, 303, self.server.read_log()[-3000:])
        self.assertEqual(headers["Location"], "/folder?f=INBOX")
        return b

    def imap_of(self, user):
        c = imaplib.IMAP4("127.0.0.1", self.imap)
        c.login(f"{user}@example.test", f"secret-{user}")
        self.addCleanup(c.logout)
        return c

    def wait_for(self, pred, what, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.1)
        self.fail(f"{what}; log:\n{self.server.read_log()[-3000:]}")

    # --- client self-configuration -------------------------------------------------------------

    @requires(HAVE_CURL, "curl")
    def test_thunderbird_autoconfig_names_the_real_ports(self):
        for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
            r = subprocess.run(["curl", "-sS", "-f", f"http://127.0.0.1:{self.web}{path}?emailaddress=alice%40example.test"],
                               capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = ET.fromstring(r.stdout)
            imap = doc.find("./emailProvider/incomingServer[@type='imap']")
            self.assertEqual(imap.findtext("port"), str(self.imap))
            self.assertEqual(imap.findtext("socketType"), "STARTTLS")
            self.assertEqual(imap.findtext("hostname"), "mx.example.test")
            self.assertEqual(imap.findtext("username"), "%EMAILADDRESS%")
            smtp = doc.find("./emailProvider/outgoingServer[@type='smtp']")
            self.assertEqual(smtp.findtext("port"), str(self.sub))
            self.assertEqual(doc.find("./emailProvider/domain").text, "example.test")

    @requires(HAVE_CURL, "curl")
    def test_outlook_autodiscover(self):
        req = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
               "autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>bob@example.test</EMailAddress>"
               "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
               "</AcceptableResponseSchema></Request></Autodiscover>")
        r = subprocess.run(["curl", "-sS", "-f", "-H", "Content-Type: text/xml", "--data-binary", req,
                            f"http://127.0.0.1:{self.web}/autodiscover/autodiscover.xml"], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
        doc = ET.fromstring(r.stdout)
        protos = {p.findtext("a:Type", namespaces=ns): p for p in doc.iterfind(".//a:Protocol", ns)}
        self.assertEqual(protos["IMAP"].findtext("a:Port", namespaces=ns), str(self.imap))
        self.assertEqual(protos["IMAP"].findtext("a:LoginName", namespaces=ns), "bob@example.test")
        self.assertEqual(protos["SMTP"].findtext("a:Port", namespaces=ns), str(self.sub))
        b = Browser(self.web)
        self.assertEqual(b.request("POST", "/autodiscover/autodiscover.xml", "<x/>")[0], 400)
        self.assertEqual(b.get("/autodiscover/autodiscover.xml")[0], 405)

    def test_phone_profile_for_the_logged_in_user(self):
        b = self.logged_in()
        status, headers, page = b.get("/setup")
        self.assertEqual(status, 200)
        self.assertIn(b"/setup/buzon.mobileconfig", page)
        status, headers, body = b.get("/setup/buzon.mobileconfig")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/x-apple-aspen-config")
        profile = plistlib.loads(body)
        account = profile["PayloadContent"][0]
        self.assertEqual(account["PayloadType"], "com.apple.mail.managed")
        self.assertEqual(account["EmailAddress"], "alice@example.test")
        self.assertEqual(account["IncomingMailServerPortNumber"], self.imap)
        self.assertEqual(account["OutgoingMailServerPortNumber"], self.sub)
        self.assertEqual(Browser(self.web).get("/setup/buzon.mobileconfig")[0], 303, "only for a logged-in user")

    # --- security rules ------------------------------------------------------------------------

    def test_every_response_carries_the_security_headers(self):
        b = self.logged_in()
        for path in ("/login", "/folder?f=INBOX", "/nowhere", "/static/style.css", "/compose", "/setup"):
            status, h, _ = b.get(path)
            self.assertIn("default-src 'none'", h["Content-Security-Policy"] or "", path)
            self.assertIn("frame-ancestors 'none'", h["Content-Security-Policy"], path)
            self.assertEqual(h["X-Content-Type-Options"], "nosniff", path)
            self.assertEqual(h["X-Frame-Options"], "DENY", path)
        self.assertEqual(b.get("/nowhere")[0], 404)
        self.assertEqual(b.request("PUT", "/folder")[0], 405)
        self.assertEqual(b.get("/logout")[0], 405, "logging out is a POST")

    def test_login_needs_its_csrf_token_and_sets_strict_cookies(self):
        b = Browser(self.web)
        status, h, page = b.get("/login")
        token = b.csrf(page)
        self.assertIn("HttpOnly", h["Set-Cookie"])
        self.assertIn("SameSite=Strict", h["Set-Cookie"])
        good = {"user": "alice@example.test", "password": "secret-alice"}
        self.assertEqual(b.post("/login", {**good, "csrf": "forged" + token[6:]})[0], 403)
        other = Browser(self.web)
        self.assertEqual(other.post("/login", {**good, "csrf": token})[0], 403, "a token without its cookie")
        status, h, _ = b.post("/login", {**good, "csrf": token})
        self.assertEqual(status, 303)
        cookie = [c for c in h.get_all("Set-Cookie") if c.startswith("buzon_session=")][0]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertNotIn("Secure", cookie, "plain HTTP on loopback")
        tls = self.logged_in(tls=True)
        self.assertIn("buzon_session", tls.cookies)
        status, h, _ = Browser(self.webs, tls=True).login("alice@example.test", "secret-alice")
        self.assertTrue(all("Secure" in c for c in h.get_all("Set-Cookie")), "over HTTPS every cookie is Secure")

    def test_wrong_passwords_are_refused_logged_and_throttled(self):
        b = Browser(self.web)
        for i in range(3):
            status, _, page = b.login("alice@example.test", "wrong")
            self.assertEqual(status, 403)
            self.assertIn(b"Wrong user name or password", page)
        status, _, page = b.login("alice@example.test", "secret-alice")
        self.assertEqual(status, 403, "blocked after auth.max_failures, even with the right password")
        self.assertIn(b"Too many failed logins", page)
        log = self.server.read_log()
        self.assertEqual(log.count("event=auth_failed"), 3)
        self.assertNotIn("wrong", log.replace("Wrong", ""), "passwords are never logged")

    def test_state_changes_need_the_session_csrf_token(self):
        self.deliver("alice@example.test", "keep me")
        b = self.logged_in()
        status, _, page = b.get("/folder?f=INBOX")
        uid = re.search(rb'/msg\?f=INBOX&amp;uid=(\d+)', page).group(1).decode()
        self.assertEqual(b.post("/msg/action", {"f": "INBOX", "uid": uid, "op": "delete", "csrf": "x" * 43})[0], 403)
        self.assertEqual(b.post("/msg/action", {"f": "INBOX", "uid": uid, "op": "delete"})[0], 403)
        self.assertEqual(b.post("/logout", {"csrf": "nope"})[0], 403)
        c = self.imap_of("alice")
        self.assertEqual(c.select("INBOX")[1], [b"1"], "nothing was deleted")

    def test_a_user_reaches_only_their_own_mail(self):
        self.deliver("alice@example.test", "for alice only")
        bob = self.logged_in("bob")
        status, _, page = bob.get("/folder?f=INBOX")
        self.assertNotIn(b"for alice only", page)
        for path in ("/msg?f=INBOX&uid=1", "/msg/raw?f=INBOX&uid=1", "/msg/part?f=INBOX&uid=1&part=1",
                     "/msg?f=../alice&uid=1", "/folder?f=%2e%2e%2falice", "/msg?f=/etc&uid=1"):
            status, _, page = bob.get(path)
            self.assertIn(status, (404, 400), path)
            self.assertNotIn(b"for alice only", page, path)

    def test_script_in_html_mail_never_runs_here(self):
        html = ("<p>Hi <b>there</b></p><script>document.title='pwned'</script>"
                "<img src=\"https://tracker.example/p.gif\"><a href=\"https://example.org/\">link</a>")
        self.deliver("alice@example.test", "<script>alert(1)</script> subject", html=html)
        b = self.logged_in()
        status, _, page = b.get("/folder?f=INBOX")
        self.assertNotIn(b"<script>alert(1)</script>", page)
        self.assertIn(b"&lt;script&gt;alert(1)&lt;/script&gt; subject", page)
        status, _, page = b.get("/msg?f=INBOX&uid=1")
        self.assertEqual(status, 200)
        self.assertNotIn(b"<script", page)
        self.assertIn(b'sandbox="allow-popups allow-popups-to-escape-sandbox"', page, "no scripts, no same origin: links open apart")
        self.assertIn(b"images=1", page, "remote images blocked, with a way to show them")
        status, h, doc = b.get("/msg/html?f=INBOX&uid=1")
        self.assertEqual(status, 200)
        csp = h["Content-Security-Policy"]
        self.assertTrue(csp.startswith("sandbox"), csp)
        self.assertIn("img-src data:;", csp, "no remote image until asked")
        self.assertNotIn(b"<script", doc.lower())
        self.assertIn(b"<b>there</b>", doc)
        status, h, _ = b.get("/msg/html?f=INBOX&uid=1&images=1")
        self.assertIn("img-src data: https:", h["Content-Security-Policy"])

    def test_redirects_stay_on_the_host(self):
        b = Browser(self.web)
        for path in ("/", "/folder?f=INBOX", "//evil.example/", "/login?next=https://evil.example/"):
            status, h, _ = b.get(path)
            loc = h["Location"]
            if loc is not None:
                self.assertTrue(loc.startswith("/") and not loc.startswith("//"), (path, loc))
        s = self.logged_in()
        status, h, _ = s.post("/msg/action", {"f": "https://evil.example/", "op": "read", "csrf": s.csrf(s.get("/folder")[2])})
        self.assertTrue(h["Location"].startswith("/folder?f="), h["Location"])

    def test_logout_really_ends_the_session(self):
        b = self.logged_in()
        status, _, page = b.get("/folder?f=INBOX")
        self.assertEqual(status, 200)
        cookie = dict(b.cookies)
        status, h, _ = b.post("/logout", {"csrf": b.csrf(page)})
        self.assertEqual((status, h["Location"]), (303, "/login"))
        replay = Browser(self.web)
        replay.cookies = cookie
        status, h, _ = replay.get("/folder?f=INBOX")
        self.assertEqual((status, h["Location"]), (303, "/login"), "the old cookie opens nothing")

    def test_bad_requests_get_clear_statuses_and_the_server_goes_on(self):
        import socket
        def raw(data):
            s = socket.create_connection(("127.0.0.1", self.web), timeout=10)
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            s.close()
            return out
        self.assertTrue(raw(b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400"), "no Host")
        self.assertTrue(raw(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431"))
        self.assertTrue(raw(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n").startswith(b"HTTP/1.1 413"))
        self.assertTrue(raw(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc").startswith(b"HTTP/1.1 400"))
        self.assertTrue(raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 505"))
        # RFC 9110 10.1.1: a client that waits for 100 Continue gets it, then its answer.
        s = socket.create_connection(("127.0.0.1", self.web), timeout=10)
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"a=b&c")
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 403"), "the login form's token is missing")
        s.close()
        status, h, body = Browser(self.web).request("HEAD", "/login")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(Browser(self.web).get("/login")[0], 200, "and the server goes on")

    def test_kept_alive_connections_wait_without_a_thread(self):
        """200 browsers that keep their connection open between requests: the server gains no
        thread, and each connection still serves its next request."""
        def threads():
            with open(f"/proc/{self.server.proc.pid}/status") as f:
                return int([l.split()[1] for l in f if l.startswith("Threads:")][0])
        conns = []
        for _ in range(5):
            c = http.client.HTTPConnection("127.0.0.1", self.web, timeout=20)
            c.request("GET", "/login")
            c.getresponse().read()
        before = threads()
        for i in range(200):
            # Ten from each of 20 loopback addresses (max_connections_per_ip is 16).
            c = http.client.HTTPConnection("127.0.0.1", self.web, timeout=20, source_address=(f"127.0.0.{10 + i % 20}", 0))
            c.request("GET", "/static/style.css")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            conns.append(c)
        self.assertLessEqual(threads(), before + 2, "kept-alive connections hold no thread")
        for c in conns:
            c.request("GET", "/login")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            c.close()

    # --- webmail -------------------------------------------------------------------------------

    def test_read_search_and_act_on_messages(self):
        self.deliver("alice@example.test", "first one", text="apples and pears")
        self.deliver("alice@example.test", "second one", text="oranges")
        b = self.logged_in()
        status, _, page = b.get("/folder?f=INBOX")
        self.assertEqual(status, 200)
        self.assertLess(page.index(b"second one"), page.index(b"first one"), "newest first")
        status, _, page = b.get("/folder?f=INBOX&q=pears")
        self.assertIn(b"first one", page)
        self.assertNotIn(b"second one", page)
        status, _, page = b.get("/msg?f=INBOX&uid=1")
        self.assertIn(b"apples and pears", page)
        c = self.imap_of("alice")
        c.select("INBOX")
        self.assertIn(b"\\Seen", c.uid("FETCH", "1", "(FLAGS)")[1][0], "reading marks it seen")
        token = b.csrf(page)
        b.post("/msg/action", {"f": "INBOX", "uid": "1", "op": "unread", "csrf": token})
        b.post("/msg/action", {"f": "INBOX", "uid": "2", "op": "flag", "csrf": token})
        c.noop()
        self.assertNotIn(b"\\Seen", c.uid("FETCH", "1", "(FLAGS)")[1][0])
        self.assertIn(b"\\Flagged", c.uid("FETCH", "2", "(FLAGS)")[1][0])
        b.post("/msg/action", {"f": "INBOX", "uid": "1", "op": "read", "csrf": token})
        c.noop()
        self.assertIn(b"\\Seen", c.uid("FETCH", "1", "(FLAGS)")[1][0])
        status, h, _ = b.post("/msg/action", [("f", "INBOX"), ("uid", "2"), ("op", "move"), ("to", "Archive"),
                                              ("csrf", token)])
        self.assertEqual((status, h["Location"]), (303, "/folder?f=INBOX"))
        self.assertIn(b"second one", b.get("/folder?f=Archive")[2], "moved")
        status, h, _ = b.post("/msg/action", {"f": "INBOX", "uid": "1", "op": "delete", "csrf": token})
        self.assertEqual(status, 303)
        c.close()
        self.assertEqual(c.select("INBOX")[1], [b"0"])
        self.assertEqual(c.select("Trash")[1], [b"1"], "deleted means moved to Trash")
        self.assertEqual(c.select("Archive")[1], [b"1"])
        status, _, page = b.get("/folder?f=Trash")
        self.assertIn(b"first one", page)

    def test_attachments_download_and_the_source_is_plain_text(self):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "carol@example.org", "alice@example.test", "the report"
        m.set_content("See the attachment.")
        pdf = b"%PDF-1.4\n" + bytes(range(256)) * 8
        m.add_attachment(pdf, maintype="application", subtype="pdf", filename="Report <2026>.pdf")
        m.add_attachment("<script>alert(1)</script>", subtype="html", filename="page.html")
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            c.send_message(m)
        b = self.logged_in()
        status, _, page = b.get("/msg?f=INBOX&uid=1")
        self.assertIn(b"See the attachment.", page)
        self.assertIn(b"Report &lt;2026&gt;.pdf", page)
        parts = re.findall(rb'/msg/part\?f=INBOX&amp;uid=1&amp;part=([0-9.]+)', page)
        self.assertEqual(parts, [b"2", b"3"])
        status, h, body = b.get("/msg/part?f=INBOX&uid=1&part=2")
        self.assertEqual((status, body), (200, pdf))
        self.assertTrue(h["Content-Disposition"].startswith("attachment;"), h["Content-Disposition"])
        self.assertIn("filename*=UTF-8''Report%20%3C2026%3E.pdf", h["Content-Disposition"])
        status, h, body = b.get("/msg/part?f=INBOX&uid=1&part=3")
        self.assertEqual(h["Content-Type"], "application/octet-stream", "an HTML attachment is never rendered here")
        self.assertTrue(h["Content-Security-Policy"].startswith("sandbox"))
        self.assertEqual(b.get("/msg/part?f=INBOX&uid=1&part=9")[0], 404)
        status, h, body = b.get("/msg/raw?f=INBOX&uid=1")
        self.assertEqual(h["Content-Type"], "text/plain; charset=utf-8")
        self.assertIn(b"Subject: the report", body)
        status, h, js = b.get("/static/app.js")
        self.assertEqual((status, h["Content-Type"]), (200, "text/javascript; charset=utf-8"))

    def test_a_long_folder_is_paged_newest_first(self):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            for i in range(55):
                c.sendmail("carol@example.org", ["alice@example.test"], f"Subject: number {i:02}\r\n\r\nx\r\n")
        b = self.logged_in()
        page1 = b.get("/folder?f=INBOX")[2]
        page2 = b.get("/folder?f=INBOX&page=2")[2]
        self.assertEqual(len(re.findall(rb'name="uid" value="\d+"', page1)), 50)
        self.assertEqual(len(re.findall(rb'name="uid" value="\d+"', page2)), 5)
        self.assertIn(b"number 54", page1)
        self.assertIn(b"number 00", page2)
        self.assertNotIn(b"number 54", page2)
        self.assertEqual(b.get("/folder?f=INBOX&page=999")[0], 200, "a page past the end shows the last")

    def test_forward_keeps_the_attachments_left_ticked(self):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "carol@example.org", "alice@example.test", "with files"
        m.set_content("two files")
        m.add_attachment(b"first file", maintype="application", subtype="octet-stream", filename="one.bin")
        m.add_attachment(b"second file", maintype="application", subtype="octet-stream", filename="two.bin")
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            c.send_message(m)
        b = self.logged_in()
        status, _, page = b.get("/compose?f=INBOX&uid=1&mode=forward")
        self.assertIn(b'name="fwd_part" value="2"', page)
        self.assertIn(b'name="fwd_part" value="3"', page)
        status, h, page = b.post_multipart("/compose", [
            ("csrf", b.csrf(page)), ("to", "bob@example.test"), ("subject", "Fwd: with files"), ("body", "see"),
            ("fwd_f", "INBOX"), ("fwd_uid", "1"), ("fwd_part", "3"), ("action", "send")])
        self.assertEqual(status, 303, page[:1000])
        self.wait_for(lambda: self.server.new_messages("bob"), "bob gets the forward")
        import email
        from email import policy
        got = email.message_from_bytes(self.server.new_messages("bob")[0], policy=policy.default)
        atts = {a.get_filename(): a.get_content() for a in got.iter_attachments()}
        self.assertEqual(atts, {"two.bin": b"second file"}, "only the ticked attachment")

    def test_compose_with_attachment_sends_and_keeps_a_copy_in_sent(self):
        b = self.logged_in()
        status, _, page = b.get("/compose")
        self.assertEqual(status, 200)
        token = b.csrf(page)
        blob = bytes(range(256)) * 40
        status, h, page = b.post_multipart("/compose", [
            ("csrf", token), ("to", "Bob <bob@example.test>"), ("cc", ""), ("bcc", ""),
            ("subject", "Grüße from the web"), ("body", "Line one\nLine two with ünïcode\n"),
            ("in_reply_to", ""), ("references", ""), ("action", "send")],
            files=[("attach", "data.bin", "application/octet-stream", blob)])
        self.assertEqual(status, 303, page[:2000])
        self.wait_for(lambda: self.server.new_messages("bob"), "bob gets the message")
        import email
        from email import policy
        m = email.message_from_bytes(self.server.new_messages("bob")[0], policy=policy.default)
        self.assertEqual(m["Subject"], "Grüße from the web")
        self.assertEqual(m["From"], "alice@example.test")
        self.assertIn("Line two with ünïcode", m.get_body(("plain",)).get_content())
        att = [p for p in m.iter_attachments()][0]
        self.assertEqual(att.get_filename(), "data.bin")
        self.assertEqual(att.get_content(), blob)
        self.assertIn("Received: from [127.0.0.1] by mx.example.test (buzon webmail)", m.as_string())
        c = self.imap_of("alice")
        self.assertEqual(c.select("Sent")[1], [b"1"], "a copy in Sent")
        self.assertIn("via=webmail", self.server.read_log())

    def test_reply_forward_and_drafts(self):
        self.deliver("alice@example.test", "question", text="Are you there?", sender="Carol <carol@example.test>")
        b = self.logged_in()
        status, _, page = b.get("/compose?f=INBOX&uid=1&mode=reply")
        self.assertIn(b"Re: question", page)
        self.assertIn(b"&gt; Are you there?", page)
        self.assertIn(b"carol@example.test", page)
        status, _, page = b.get("/compose?f=INBOX&uid=1&mode=forward")
        self.assertIn(b"Fwd: question", page)
        token = b.csrf(page)
        status, h, _ = b.post_multipart("/compose", [
            ("csrf", token), ("to", "bob@example.test"), ("subject", "draft subject"), ("body", "not yet"),
            ("action", "save")])
        self.assertEqual(status, 303)
        c = self.imap_of("alice")
        self.assertEqual(c.select("Drafts")[1], [b"1"])
        self.assertIn(b"\\Draft", c.fetch("1", "(FLAGS)")[1][0])
        status, _, page = b.get("/compose?f=Drafts&uid=1&mode=draft")
        self.assertIn(b"draft subject", page)
        self.assertIn(b'name="draft" value="1"', page)
        status, h, _ = b.post_multipart("/compose", [
            ("csrf", token), ("to", "bob@example.test"), ("subject", "draft subject"), ("body", "now"),
            ("draft", "1"), ("action", "send")])
        self.assertEqual(status, 303)
        self.wait_for(lambda: self.server.new_messages("bob"), "bob gets the draft once sent")
        c.close()
        self.assertEqual(c.select("Drafts")[1], [b"0"], "the draft is gone once sent")

    def test_reply_to_a_subject_in_another_script(self):
        """The Re: prefix is looked for in the sender's text: a subject whose third byte falls
        inside a character (ü) once took the server down."""
        self.deliver("alice@example.test", "Grüße aus Köln")
        b = self.logged_in()
        status, _, page = b.get("/compose?f=INBOX&uid=1&mode=reply")
        self.assertEqual(status, 200)
        self.assertIn("Re: Grüße aus Köln".encode(), page)
        self.assertEqual(b.get("/folder?f=INBOX")[0], 200, "and the server goes on")

    def test_recipients_are_checked_before_anything_is_sent(self):
        b = self.logged_in()
        token = b.csrf(b.get("/compose")[2])
        status, _, page = b.post_multipart("/compose", [
            ("csrf", token), ("to", "not an address"), ("subject", "x"), ("body", "y"), ("action", "send")])
        self.assertEqual(status, 422)
        self.assertIn(b"Check the recipients", page)
        self.assertIn(b"not an address", page, "what was typed is kept")
        self.assertNotIn("event=queued", self.server.read_log())


ROOT_AND_USERADD = os.geteuid() == 0 and shutil.which("useradd") is not None


@unittest.skipUnless(ROOT_AND_USERADD, "needs root and useradd (CI runs as root)")
class WebSystemUsers(unittest.TestCase):
    """The shipped configuration: system users, `user = ` a service user, started as root. The
    webmail's IMAP session is the user's mail process, so every file it writes is the user's."""

    def setUp(self):
        from test_mailproc import SEQ
        from test_privsep import useradd, userdel
        import tempfile
        self.base = tempfile.mkdtemp(prefix="buzon-websys-")
        os.chmod(self.base, 0o755)
        self.addCleanup(shutil.rmtree, self.base, True)
        tag = f"{str(os.getpid())[-5:]}w{next(SEQ)}"
        self.names = {"srv": f"bwsrv{tag}", "a": f"bwa{tag}", "b": f"bwb{tag}"}
        self.pw = {}
        for k, n in self.names.items():
            self.addCleanup(userdel, n)
            self.pw[k] = useradd(n, os.path.join(self.base, "home", n))
        for u in ("a", "b"):
            subprocess.run(["chpasswd"], input=f"{self.names[u]}:pw-{u}\n", text=True, check=True)
        self.web = free_port()
        s = Server(users=(), mailbox="maildir:~/Maildir", domain="example.test",
                   extra=f"users = system\nuser = {self.names['srv']}\nweb.listen = 127.0.0.1:{self.web}\n"
                         f"dns.servers = 127.0.0.1:{free_port()}\n")
        with open(s.config) as f:
            conf = "".join(l for l in f if not l.startswith("users = file:"))
        with open(s.config, "w") as f:
            f.write(conf)
        os.chmod(s.tmp, 0o755)
        self.addCleanup(s.cleanup)
        self.server = s
        s.start()

    def test_read_and_send_as_a_system_user(self):
        a, b = self.names["a"], self.names["b"]
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=30) as c:
            c.sendmail("x@remote.test", [f"{a}@example.test"], b"Subject: to a system user\r\n\r\nhello a\r\n")
        w = Browser(self.web)
        status, _, page = w.login(a, "wrong")
        self.assertEqual(status, 403)
        status, h, _ = w.login(a, "pw-a")
        self.assertEqual(status, 303, self.server.read_log()[-3000:])
        status, _, page = w.get("/folder?f=INBOX")
        self.assertEqual(status, 200, page[:500])
        self.assertIn(b"to a system user", page)
        status, _, page = w.get("/msg?f=INBOX&uid=1")
        self.assertIn(b"hello a", page)
        self.assertIn("event=mailproc_session service=imap user=" + a, self.server.read_log(),
                      "the webmail's session runs in the user's mail process")
        cur = os.path.join(self.pw["a"].pw_dir, "Maildir", "cur")
        files = os.listdir(cur)
        self.assertEqual(len(files), 1)
        self.assertTrue(files[0].endswith("S"), files)
        self.assertEqual(os.stat(os.path.join(cur, files[0])).st_uid, self.pw["a"].pw_uid)
        token = w.csrf(page)
        status, _, _ = w.post_multipart("/compose", [
            ("csrf", token), ("to", f"{b}@example.test"), ("subject", "from a, on the web"), ("body", "hi b"),
            ("action", "send")])
        self.assertEqual(status, 303)
        bnew = os.path.join(self.pw["b"].pw_dir, "Maildir", "new")
        deadline = time.time() + 15
        while time.time() < deadline and not (os.path.isdir(bnew) and os.listdir(bnew)):
            time.sleep(0.1)
        self.assertTrue(os.path.isdir(bnew) and os.listdir(bnew), self.server.read_log()[-3000:])
        sent = os.path.join(self.pw["a"].pw_dir, "Maildir", ".Sent", "cur")
        [copy] = os.listdir(sent)
        self.assertEqual(os.stat(os.path.join(sent, copy)).st_uid, self.pw["a"].pw_uid, "Sent is a's own")
        self.assertEqual(w.get("/msg/raw?f=../../" + b + "/Maildir&uid=1")[0], 404)


if __name__ == "__main__":
    unittest.main()
