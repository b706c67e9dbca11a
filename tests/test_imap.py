"""IMAP with Python's imaplib and a raw socket client: every command area of
RFC 3501 / RFC 9051 and the extensions buzon offers, against the real server
on loopback ports picked at run time, with mail delivered over SMTP or
APPENDed. Exact untagged responses are asserted where the RFCs fix them."""

import base64
import imaplib
import os
import re
import smtplib
import socket
import ssl
import time
import unittest

from harness import Server, free_port, missing, run_buzon
from imap.client import (ALICE, HOST, RawImap, esearch, expunged, fetch_map, find, flagset,
                         internaldate_epoch, list_map, low, parse, search_nums, seqset, status_map,
                         status_of, tls_context)

BOB = ("bob@example.test", "secret-bob")
SPECIAL = {"Sent": b"\\Sent", "Drafts": b"\\Drafts", "Trash": b"\\Trash", "Junk": b"\\Junk",
           "Archive": b"\\Archive"}

SIMPLE = (b"From: Pepe Perez <pepe@remote.test>\r\nTo: alice@example.test\r\nSubject: hello world\r\n"
          b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <simple@remote.test>\r\n\r\n"
          b"line one\r\nline two\r\n")

PART1 = b"caf\xc3\xa9 au lait"
PART2 = b"\x00\x01\x02\x03\xff"
MULTI = (b"From: Pepe <pepe@remote.test>\r\nTo: Alice <alice@example.test>, bob@example.test\r\n"
         b"Subject: parts\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <multi@remote.test>\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         + PART1 + b"\r\n--b1\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n"
         b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\n"
         + base64.b64encode(PART2) + b"\r\n--b1--\r\n")
PART1_MIME = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"


def msg(subject, body=b"body\r\n", sender=b"pepe@remote.test", extra=b""):
    if isinstance(subject, str):
        subject = subject.encode()
    return (b"From: " + sender + b"\r\nTo: alice@example.test\r\nSubject: " + subject + b"\r\n" + extra
            + b"Message-ID: <" + str(time.time_ns()).encode() + b"@remote.test>\r\n\r\n" + body)


# ---------------------------------------------------------------------------------------------
# The server under test.
# ---------------------------------------------------------------------------------------------

class ImapCase(unittest.TestCase):
    """Starts buzon with imap.listen (STARTTLS) and imaps.listen for every test."""

    mailbox = "maildir:{tmp}/mail/%d/%n/Maildir"
    extra = ""
    cleartext = "127.0.0.0/8"  # auth.cleartext_networks: LOGIN without TLS from loopback

    def setUp(self):
        self.start_server()

    def start_server(self):
        s = Server(mailbox=self.mailbox)
        self.server = s
        self.addCleanup(s.cleanup)
        self.imap_port, self.imaps_port = free_port(), free_port()
        cert, key = os.path.join(s.tmp, "cert.pem"), os.path.join(s.tmp, "key.pem")
        with open(s.config, "a") as f:
            f.write(f"imap.listen = {HOST}:{self.imap_port}\nimaps.listen = {HOST}:{self.imaps_port}\n"
                    f"tls.cert = {cert}\ntls.key = {key}\n{self.extra.format(tmp=s.tmp)}")
            if self.cleartext:
                f.write(f"auth.cleartext_networks = {self.cleartext}\n")
        r = run_buzon("cert", "self-signed", "-c", s.config, "localhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        self.wait_port(self.imap_port)

    def restart_server(self):
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-2000:])
        self.server.logf.close()
        self.server.start()
        self.wait_port(self.imap_port)

    def wait_port(self, port):
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def deliver(self, body, to=ALICE[0], sender="pepe@remote.test"):
        with smtplib.SMTP(HOST, self.server.port, timeout=20) as c:
            c.sendmail(sender, [to], body)

    def imap(self, user=ALICE, ssl_=False):
        """A logged-in imaplib client, logged out when the test ends."""
        if ssl_:
            m = imaplib.IMAP4_SSL(HOST, self.imaps_port, ssl_context=tls_context(), timeout=10)
        else:
            m = imaplib.IMAP4(HOST, self.imap_port, timeout=10)
        self.addCleanup(self._logout, m)
        if user:
            m.login(*user)
        return m

    @staticmethod
    def _logout(m):
        if m.state == "LOGOUT":
            return
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            try:
                m.shutdown()
            except OSError:
                pass

    def raw(self, user=ALICE, tls=False):
        """A raw client (logged in unless user is None), closed when the test ends."""
        r = RawImap(self.imaps_port if tls else self.imap_port, tls=tls)
        self.addCleanup(r.close)
        if user:
            r.login(user)
        return r

    def append(self, r, mailbox, data, flags="", date=""):
        """APPEND with a synchronizing literal on a raw client; returns the tagged response."""
        tag = r.tag()
        head = f"{tag} APPEND {mailbox}"
        if flags:
            head += f" ({flags})"
        if date:
            head += f' "{date}"'
        r.send(f"{head} {{{len(data)}}}\r\n")
        cont = r.response()
        self.assertTrue(cont.startswith(b"+"), cont)
        r.send(data + b"\r\n")
        untagged, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK", (tagged, untagged))
        return tagged

    def select(self, r, mailbox="INBOX", cmd="SELECT"):
        return r.ok(f"{cmd} {mailbox}")


# ---------------------------------------------------------------------------------------------

class Capabilities(ImapCase):

    def test_greeting_and_capability(self):
        r = self.raw(user=None)
        self.assertRegex(r.greeting, rb"^\* OK\b", "RFC 3501 7.1.1: an OK greeting")
        untagged, tagged = r.ok("CAPABILITY")
        caps = find(untagged, "* CAPABILITY ")
        self.assertEqual(len(caps), 1, untagged)
        have = set(caps[0].decode().upper().split()[2:])
        for c in ("IMAP4REV1", "IMAP4REV2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
                  "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
                  "ESEARCH", "SEARCHRES", "STATUS=SIZE", "BINARY", "UTF8=ACCEPT", "STARTTLS", "AUTH=PLAIN",
                  "AUTH=LOGIN", "AUTH=CRAM-MD5", "AUTH=SCRAM-SHA-256"):
            self.assertIn(c, have)
        self.assertNotIn("LOGINDISABLED", have, "cleartext LOGIN is allowed from loopback")
        untagged, _ = r.login()
        # After LOGIN the capabilities may change (RFC 9051 6.2.3); STARTTLS is no longer valid.
        untagged, _ = r.ok("CAPABILITY")
        have = set(find(untagged, "* CAPABILITY ")[0].decode().upper().split()[2:])
        self.assertIn("IMAP4REV2", have)
        self.assertIn("IDLE", have)
        _, tagged = r.cmd("STARTTLS")
        self.assertIn(status_of(tagged), ("BAD", "NO"), "RFC 9051 6.2.1: STARTTLS only when not authenticated")
        r.ok("NOOP")
        untagged, tagged = r.cmd("LOGOUT")
        self.assertEqual(status_of(tagged), "OK")
        self.assertTrue(find(untagged, "* BYE"), "RFC 3501 6.1.3: BYE before the tagged OK")

    def test_imaplib_sees_the_capabilities(self):
        m = self.imap(user=None)
        self.assertIn("IMAP4REV2", m.capabilities)
        self.assertIn("STARTTLS", m.capabilities)
        typ, _ = m.noop()
        self.assertEqual(typ, "OK")


class NoCleartextNetworks(ImapCase):
    cleartext = ""

    def test_logindisabled_without_tls(self):
        r = self.raw(user=None)
        untagged, _ = r.ok("CAPABILITY")
        have = set(find(untagged, "* CAPABILITY ")[0].decode().upper().split()[2:])
        self.assertIn("LOGINDISABLED", have, "RFC 3501 6.2.3")
        self.assertIn("STARTTLS", have)
        self.assertNotIn("AUTH=PLAIN", have, "RFC 9051 11.1: no cleartext mechanism before TLS")
        _, tagged = r.cmd("LOGIN alice@example.test secret-alice")
        self.assertEqual(status_of(tagged), "NO")
        self.assertIn(b"[PRIVACYREQUIRED]", tagged)
        m = self.imap(user=None)
        m.starttls(ssl_context=tls_context())
        self.assertNotIn("LOGINDISABLED", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        self.assertEqual(m.login(*ALICE)[0], "OK")
        self.assertEqual(self.imap(ssl_=True).select("INBOX")[0], "OK")


class Authentication(ImapCase):

    def test_login_ok_and_bad(self):
        m = self.imap(user=None)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login("alice@example.test", "wrong")
        self.assertIn("[AUTHENTICATIONFAILED]", str(e.exception))
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login("nobody@example.test", "secret-alice")
        self.assertIn("[AUTHENTICATIONFAILED]", str(e.exception), "an unknown user looks like a bad password")
        typ, _ = m.login(*ALICE)
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        # Commands in the wrong state are refused and the connection stays usable.
        r = self.raw(user=None)
        _, tagged = r.cmd("SELECT INBOX")
        self.assertIn(status_of(tagged), ("BAD", "NO"), "SELECT before LOGIN")
        _, tagged = r.cmd("FETCH 1 FLAGS")
        self.assertEqual(status_of(tagged), "BAD")
        r.login()
        _, tagged = r.cmd("LOGIN alice@example.test secret-alice")
        self.assertEqual(status_of(tagged), "BAD", "LOGIN when already authenticated")
        r.ok("NOOP")

    def test_login_with_literals_and_quoted_password(self):
        r = self.raw(user=None)
        tag = r.tag()
        r.send(f"{tag} LOGIN {{18}}\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        r.send("alice@example.test {12}\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        r.send("secret-alice\r\n")
        _, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK", tagged)
        r2 = self.raw(user=None)
        r2.ok("LOGIN bob@example.test {10+}\r\nsecret-bob")  # LITERAL+ (RFC 7888)

    def test_authenticate_plain_login_and_cram_md5(self):
        m = self.imap(user=None)
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0alice@example.test\0secret-alice")
        self.assertEqual(typ, "OK")
        m = self.imap(user=None)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.authenticate("PLAIN", lambda _: b"\0alice@example.test\0nope")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        m = self.imap(user=None)
        typ, _ = m.login_cram_md5(*BOB)
        self.assertEqual(typ, "OK")
        m = self.imap(user=None)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login_cram_md5("bob@example.test", "wrong")
        # AUTH=LOGIN: the two prompts are base64 "Username:" and "Password:".
        m = self.imap(user=None)
        answers = iter([b"alice@example.test", b"secret-alice"])
        typ, _ = m.authenticate("LOGIN", lambda _: next(answers))
        self.assertEqual(typ, "OK")

    def test_sasl_ir_and_cancel(self):
        r = self.raw(user=None)
        ir = base64.b64encode(b"\0alice@example.test\0secret-alice").decode()
        untagged, tagged = r.ok(f"AUTHENTICATE PLAIN {ir}")  # RFC 4959
        r.ok("SELECT INBOX")
        r = self.raw(user=None)
        tag = r.tag()
        r.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        self.assertEqual(r.response().rstrip(), b"+", "an empty challenge")
        r.send("*\r\n")
        _, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "BAD", "RFC 3501 6.2.2: a cancelled exchange is BAD")
        tag = r.tag()
        r.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        r.response()
        r.send("!!!not-base64!!!\r\n")
        _, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "BAD", "RFC 3501 6.2.2: invalid base64 is BAD")
        _, tagged = r.cmd("AUTHENTICATE X-UNKNOWN")
        self.assertIn(status_of(tagged), ("NO", "BAD"))
        r.login()

    def test_scram_sha_256(self):
        try:
            import scramp
        except ImportError:
            self.fail(missing("scramp (a SCRAM client library)"))
        client = scramp.ScramClient(["SCRAM-SHA-256"], *ALICE)
        r = self.raw(user=None)
        tag = r.tag()
        first = base64.b64encode(client.get_client_first().encode()).decode()
        r.send(f"{tag} AUTHENTICATE SCRAM-SHA-256 {first}\r\n")
        cont = r.response()
        self.assertTrue(cont.startswith(b"+ "), cont)
        client.set_server_first(base64.b64decode(cont[2:]).decode())
        r.send(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
        cont = r.response()
        if cont.startswith(b"+ "):
            client.set_server_final(base64.b64decode(cont[2:]).decode())  # verifies the server
            r.send("\r\n")
            _, tagged = r.until(tag)
        else:
            tagged = cont  # the server-final in the tagged OK's [SASL ...] is also allowed
        self.assertEqual(status_of(tagged), "OK", tagged)


class Tls(ImapCase):

    def test_starttls_then_login(self):
        m = self.imap(user=None)
        typ, _ = m.starttls(ssl_context=tls_context())
        self.assertEqual(typ, "OK")
        self.assertNotIn("STARTTLS", m.capabilities, "RFC 3501 6.2.1: capabilities re-read after TLS")
        typ, _ = m.login(*ALICE)
        self.assertEqual(typ, "OK")
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")

    def test_imaps(self):
        m = self.imap(ssl_=True)
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"0"]))
        self.assertNotIn("STARTTLS", m.capabilities)

    def test_commands_pipelined_after_starttls_are_dropped(self):
        # The STARTTLS command injection (CVE-2011-0411 class): bytes after STARTTLS in the same
        # packet must not be executed inside the TLS session.
        r = self.raw(user=None)
        r.send("a STARTTLS\r\nb LOGIN alice@example.test secret-alice\r\n")
        _, tagged = r.until("a")
        self.assertEqual(status_of(tagged), "OK")
        self.assertEqual(r.buf, b"", "nothing is answered in cleartext after the OK")
        try:
            r.sock = tls_context().wrap_socket(r.sock)
        except (ssl.SSLEOFError, ConnectionResetError):
            return  # closing the connection is also a safe answer
        untagged, tagged = r.cmd("NOOP", tag="c")
        self.assertEqual(untagged, [], "nothing answered for the injected command")
        _, tagged = r.cmd("SELECT INBOX", tag="d")
        self.assertNotEqual(status_of(tagged), "OK", "the injected LOGIN must not have run")
        r.login()
        _, tagged = r.cmd("STARTTLS")
        self.assertEqual(status_of(tagged), "BAD", "no second STARTTLS")


class SelectExamine(ImapCase):

    def test_select_and_examine(self):
        self.deliver(msg("one"))
        self.deliver(msg("two"))
        r = self.raw()
        untagged, tagged = r.ok("SELECT INBOX")
        self.assertIn(b"* 2 EXISTS", untagged)
        self.assertIn(b"* 2 RECENT", untagged, "RFC 3501 6.3.1: RECENT is required")
        flags = find(untagged, "* FLAGS ")
        self.assertEqual(len(flags), 1, untagged)
        self.assertTrue({"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}
                        <= flagset(parse(flags[0][8:])[0]), flags)
        perm = [x for x in untagged if b"[PERMANENTFLAGS (" in x]
        self.assertEqual(len(perm), 1, untagged)
        self.assertIn(b"\\*", perm[0], "keywords can be created")
        self.assertTrue([x for x in untagged if re.match(rb"\* OK \[UNSEEN 1\]", x)],
                        "RFC 3501 6.3.1: UNSEEN is required when a message is unseen")
        uv = [re.match(rb"\* OK \[UIDVALIDITY (\d+)\]", x) for x in untagged]
        uv = [int(m.group(1)) for m in uv if m]
        self.assertEqual(len(uv), 1, untagged)
        self.assertGreater(uv[0], 0)
        self.assertTrue([x for x in untagged if re.match(rb"\* OK \[UIDNEXT 3\]", x)], untagged)
        self.assertRegex(tagged, rb"OK \[READ-WRITE\]")
        self.assertEqual(search_nums(r.ok("SEARCH RECENT")[0]), [1, 2])
        self.assertEqual(search_nums(r.ok("SEARCH NEW")[0]), [1, 2])
        # \Recent belongs to the first session only.
        r2 = self.raw()
        untagged, tagged = r2.ok("EXAMINE INBOX")
        self.assertIn(b"* 0 RECENT", untagged)
        self.assertEqual(search_nums(r2.ok("SEARCH OLD")[0]), [1, 2])
        self.assertEqual(search_nums(r2.ok("SEARCH RECENT")[0]), [])
        self.assertIn(b"* 2 EXISTS", untagged)
        self.assertRegex(tagged, rb"OK \[READ-ONLY\]")
        _, tagged = r2.cmd("STORE 1 +FLAGS (\\Seen)")
        self.assertIn(status_of(tagged), ("NO", "OK"), "STORE on a read-only mailbox changes nothing")
        r2.ok("FETCH 1 BODY[]")
        untagged, _ = r2.ok("FETCH 1 FLAGS")
        self.assertNotIn("\\Seen", flagset(fetch_map(untagged)[1]["FLAGS"]),
                         "BODY[] in EXAMINE does not set \\Seen")
        # A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        _, tagged = r.cmd("SELECT Nonexistent")
        self.assertEqual(status_of(tagged), "NO")
        _, tagged = r.cmd("FETCH 1 FLAGS")
        self.assertEqual(status_of(tagged), "BAD", "no mailbox is selected after a failed SELECT")
        untagged, _ = r.ok("SELECT inbox")
        self.assertIn(b"* 2 EXISTS", untagged, "INBOX is case-insensitive")

    def test_select_in_imap4rev2_mode(self):
        self.deliver(msg("one"))
        r = self.raw()
        untagged, _ = r.ok("ENABLE IMAP4rev2")
        self.assertEqual([u.upper() for u in untagged], [b"* ENABLED IMAP4REV2"])
        untagged, tagged = r.ok("SELECT INBOX")
        self.assertIn(b"* 1 EXISTS", untagged)
        self.assertFalse(find(untagged, "* 1 RECENT") + find(untagged, "* 0 RECENT"),
                         "RFC 9051 6.3.2: no RECENT in IMAP4rev2")
        lst = find(untagged, "* LIST ")
        self.assertEqual(len(lst), 1, "RFC 9051 6.3.2: SELECT sends the mailbox's LIST response")
        self.assertEqual(parse(lst[0][7:])[1:3], [b"/", b"INBOX"])


class Listing(ImapCase):

    def test_list_patterns_special_use_and_children(self):
        m = self.imap()
        for name in ("Work", "Work/2024", "Work/2024/Q1", "Play"):
            typ, _ = m.create(name)
            self.assertEqual(typ, "OK", name)
        r = self.raw()
        untagged, _ = r.ok('LIST "" "*"')
        got = list_map(untagged)
        for name, attr in SPECIAL.items():
            self.assertIn(name, got, "special-use folders exist after first login")
            self.assertIn(attr.decode().lower(), got[name])
        self.assertIn("INBOX", got)
        self.assertIn("\\haschildren", got["Work"])
        self.assertIn("\\haschildren", got["Work/2024"])
        self.assertIn("\\hasnochildren", got["Work/2024/Q1"])
        self.assertIn("\\hasnochildren", got["Play"])
        for r_ in find(untagged, "* LIST "):
            self.assertEqual(parse(r_[7:])[1], b"/", "the hierarchy delimiter is /")
        untagged, _ = r.ok('LIST "" "%"')
        self.assertEqual(set(list_map(untagged)), {"INBOX", "Work", "Play", *SPECIAL})
        untagged, _ = r.ok('LIST "" "Work/%"')
        self.assertEqual(set(list_map(untagged)), {"Work/2024"})
        untagged, _ = r.ok('LIST "Work/" "%"')
        self.assertEqual(set(list_map(untagged)), {"Work/2024"}, "reference + pattern")
        untagged, _ = r.ok('LIST "" "Work*"')
        self.assertEqual(set(list_map(untagged)), {"Work", "Work/2024", "Work/2024/Q1"})
        untagged, _ = r.ok('LIST "" "inbox"')
        self.assertEqual(set(list_map(untagged)), {"INBOX"}, "INBOX matches in any case")
        untagged, _ = r.ok('LIST "" ""')
        self.assertEqual(len(untagged), 1, untagged)
        items = parse(untagged[0][7:])
        self.assertIn(b"\\noselect", [a.lower() for a in items[0]], "RFC 3501 6.3.8: the delimiter query")
        self.assertEqual(items[1:], [b"/", b""])
        untagged, _ = r.ok('LIST "" "Nothing*"')
        self.assertEqual(untagged, [])
        # LSUB
        r.ok("SUBSCRIBE Work/2024")
        untagged, _ = r.ok('LSUB "" "Work*"')
        self.assertEqual(set(list_map(untagged)), {"Work/2024"})
        r.ok("UNSUBSCRIBE Work/2024")
        untagged, _ = r.ok('LSUB "" "Work*"')
        self.assertEqual(list_map(untagged), {})

    def test_list_extended_and_list_status(self):
        self.deliver(msg("one"))
        self.deliver(msg("two"))
        r = self.raw()
        r.ok("CREATE Work")
        r.ok("CREATE Work/2024")
        r.ok("SUBSCRIBE Work")
        untagged, _ = r.ok('LIST (SPECIAL-USE) "" "*"')  # RFC 6154 5.1
        self.assertEqual(set(list_map(untagged)), set(SPECIAL))
        untagged, _ = r.ok('LIST "" "*" RETURN (SPECIAL-USE)')
        got = list_map(untagged)
        self.assertIn("\\sent", got["Sent"])
        self.assertIn("Work", got)
        untagged, _ = r.ok('LIST (SUBSCRIBED) "" "W*"')  # RFC 5258
        got = list_map(untagged)
        self.assertEqual(set(got), {"Work"})
        self.assertIn("\\subscribed", got["Work"])
        untagged, _ = r.ok('LIST "" ("INBOX" "Work/*")')
        self.assertEqual(set(list_map(untagged)), {"INBOX", "Work/2024"}, "several patterns")
        untagged, _ = r.ok('LIST "" "%" RETURN (CHILDREN)')
        self.assertIn("\\haschildren", list_map(untagged)["Work"])
        # RFC 5819: a STATUS after each selectable LIST.
        untagged, _ = r.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
        statuses = {}
        for u in find(untagged, "* STATUS "):
            items = parse(u[9:])
            statuses[items[0].decode()] = {k.decode().upper(): int(v) for k, v in zip(items[1][0::2], items[1][1::2])}
        self.assertEqual(statuses["INBOX"], {"MESSAGES": 2, "UNSEEN": 2, "UIDNEXT": 3})
        self.assertEqual(statuses["Work"]["MESSAGES"], 0)
        self.assertEqual(set(statuses), set(list_map(untagged)))
        # Each STATUS follows its LIST.
        names = [parse(u[7:])[2] if u.startswith(b"* LIST") else parse(u[9:])[0] for u in untagged]
        self.assertEqual(names[0::2], names[1::2], untagged)

    def test_subscriptions_outlive_their_mailbox_and_childinfo(self):
        # RFC 3501 6.3.6: DELETE leaves the subscription; RFC 5258 3.4: LIST (SUBSCRIBED) shows
        # it as \NonExistent, a plain LIST does not show it. Compared with Dovecot 2.3's answers.
        r = self.raw()
        for c in ("CREATE Gone", "SUBSCRIBE Gone", "DELETE Gone", "CREATE Fruit/Banana",
                  "SUBSCRIBE Fruit/Banana", "CREATE Veg/Leek", "SUBSCRIBE Veg", "SUBSCRIBE Veg/Leek"):
            r.ok(c)
        got = list_map(r.ok('LIST (SUBSCRIBED) "" "*"')[0])
        self.assertEqual(set(got["Gone"]), {"\\nonexistent", "\\subscribed"})
        self.assertNotIn("Gone", list_map(r.ok('LIST "" "*"')[0]))
        self.assertIn(b'"Gone"', b"".join(r.ok('LSUB "" "*"')[0]))
        untagged, _ = r.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
        lines = {parse(u[7:])[2].decode(): u for u in find(untagged, "* LIST ")}
        self.assertIn(b'("CHILDINFO" ("SUBSCRIBED"))', lines["Fruit"], "a parent listed for its child")
        self.assertNotIn(b"\\Subscribed", lines["Fruit"])
        self.assertIn(b'("CHILDINFO" ("SUBSCRIBED"))', lines["Veg"])
        self.assertNotIn("Fruit/Banana", lines)
        # With "*" the child is listed itself: no line for the parent that is not subscribed.
        untagged, _ = r.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
        lines = {parse(u[7:])[2].decode(): u for u in find(untagged, "* LIST ")}
        self.assertNotIn("Fruit", lines)
        self.assertIn("Fruit/Banana", lines)
        self.assertIn(b"CHILDINFO", lines["Veg"])
        self.assertNotIn(b"CHILDINFO", lines["Veg/Leek"])
        r.ok("CREATE Gone")  # the old subscription applies again
        self.assertEqual(set(list_map(r.ok('LIST (SUBSCRIBED) "" "Gone"')[0])["Gone"]),
                         {"\\hasnochildren", "\\subscribed"})

    def test_special_use_folders_exist_right_after_login(self):
        # Mail arrives before the user ever logs in; the client's first command after LOGIN
        # is an APPEND to Sent or a STATUS, with no LIST before it.
        self.deliver(msg("early"))
        r = self.raw()
        for name in SPECIAL:
            with self.subTest(name=name):
                untagged, tagged = r.cmd(f"STATUS {name} (MESSAGES)")
                self.assertEqual(status_of(tagged), "OK", tagged)
        r2 = self.raw(user=BOB)
        self.append(r2, "Sent", msg("sent by bob"))

    def test_namespace(self):
        r = self.raw()
        untagged, _ = r.ok("NAMESPACE")
        self.assertEqual(untagged, [b'* NAMESPACE (("" "/")) NIL NIL'])
        m = self.imap()
        typ, data = m.namespace()
        self.assertEqual(typ, "OK")

    def test_create_delete_rename_subscribe(self):
        m = self.imap()
        r = self.raw()
        r.ok("CREATE Work/2024")  # RFC 3501 6.3.3: superior names are created as needed
        got = list_map(r.ok('LIST "" "Work*"')[0])
        self.assertEqual(set(got), {"Work", "Work/2024"})
        _, tagged = r.cmd("CREATE Work/2024")
        self.assertEqual(status_of(tagged), "NO", "CREATE of an existing name")
        self.assertIn(b"[ALREADYEXISTS]", tagged)
        _, tagged = r.cmd("CREATE Work")  # the superior exists already, or was only a placeholder
        self.assertIn(status_of(tagged), ("OK", "NO"))
        _, tagged = r.cmd("CREATE INBOX")
        self.assertEqual(status_of(tagged), "NO")
        _, tagged = r.cmd("DELETE INBOX")
        self.assertEqual(status_of(tagged), "NO", "RFC 3501 6.3.4: INBOX cannot be deleted")
        _, tagged = r.cmd("DELETE Nope")
        self.assertEqual(status_of(tagged), "NO")
        self.assertIn(b"[NONEXISTENT]", tagged)
        r.ok("CREATE Trailing/")  # a trailing delimiter: the name is Trailing
        self.assertIn("Trailing", list_map(r.ok('LIST "" "Trailing*"')[0]))
        # Messages move with a RENAME, and so do the children.
        self.append(r, "Work/2024", msg("kept"))
        self.append(r, "Work", msg("parent"))
        r.ok("SUBSCRIBE Work/2024")
        r.ok("RENAME Work Projects")
        got = list_map(r.ok('LIST "" "*"')[0])
        self.assertIn("Projects", got)
        self.assertIn("Projects/2024", got)
        self.assertNotIn("Work", got)
        self.assertNotIn("Work/2024", got)
        untagged, _ = r.ok("SELECT Projects/2024")
        self.assertIn(b"* 1 EXISTS", untagged)
        untagged, _ = r.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        self.assertEqual(fetch_map(untagged)[1]["BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: kept\r\n\r\n")
        r.ok("UNSELECT")
        _, tagged = r.cmd("RENAME Projects Sent")
        self.assertEqual(status_of(tagged), "NO", "RENAME onto an existing name")
        _, tagged = r.cmd("RENAME Nope Other")
        self.assertEqual(status_of(tagged), "NO")
        # Subscriptions are per name (RFC 3501 6.3.6): LSUB still names what was subscribed.
        r.ok("SUBSCRIBE Projects")
        lsub = list_map(r.ok('LSUB "" "*"')[0])
        self.assertIn("Projects", lsub)
        r.ok("UNSUBSCRIBE Projects")
        self.assertNotIn("Projects", list_map(r.ok('LSUB "" "*"')[0]))
        # DELETE a leaf; DELETE a parent with children leaves the children.
        r.ok("DELETE Projects/2024")
        got = list_map(r.ok('LIST "" "Projects*"')[0])
        self.assertEqual(set(got), {"Projects"})
        self.assertIn("\\hasnochildren", got["Projects"])
        r.ok("DELETE Projects")
        self.assertEqual(list_map(r.ok('LIST "" "Projects*"')[0]), {})
        # RENAME INBOX moves its messages to the new name and leaves INBOX empty (RFC 3501 6.3.5).
        self.deliver(msg("in inbox"))
        r.ok("RENAME INBOX Old")
        self.assertEqual(status_map(r.ok("STATUS INBOX (MESSAGES)")[0]), {"INBOX": {"MESSAGES": 0}})
        self.assertEqual(status_map(r.ok("STATUS Old (MESSAGES)")[0]), {"Old": {"MESSAGES": 1}})
        typ, _ = m.noop()
        self.assertEqual(typ, "OK")

    def test_international_names(self):
        r = self.raw()
        r.ok('CREATE "Entw&APw-rfe"')  # RFC 3501 5.1.3 modified UTF-7
        got = list_map(r.ok('LIST "" "Entw*"')[0])
        self.assertEqual(set(got), {"Entw&APw-rfe"})
        _, tagged = r.cmd('CREATE "Bad&Jjo"')
        self.assertIn(status_of(tagged), ("NO", "BAD"), "invalid modified UTF-7")
        r2 = self.raw()
        r2.ok("ENABLE UTF8=ACCEPT")
        got = list_map(r2.ok('LIST "" "Entw*"')[0])
        self.assertEqual(set(got), {"Entwürfe"}, "RFC 6855 3: UTF-8 names once enabled")
        r2.ok('CREATE "Café"'.encode())
        got = list_map(r.ok('LIST "" "Caf*"')[0])
        self.assertEqual(set(got), {"Caf&AOk-"})
        # A dot is not a hierarchy step: the name is refused or kept as it is.
        _, tagged = r.cmd('CREATE "a.b"')
        if status_of(tagged) == "OK":
            got = list_map(r.ok('LIST "" "a*"')[0])
            self.assertEqual(set(got), {"a.b"})
            self.append(r, "a.b", msg("dotted"))
            self.assertEqual(status_map(r.ok('STATUS "a.b" (MESSAGES)')[0]), {"a.b": {"MESSAGES": 1}})
        else:
            self.assertEqual(status_of(tagged), "NO", tagged)
            self.assertEqual(list_map(r.ok('LIST "" "a*"')[0]), {})

    def test_status(self):
        self.deliver(msg("one"))
        self.deliver(msg("two"))
        r = self.raw()
        r.ok("SELECT INBOX")
        untagged, _ = r.ok("FETCH 1:* (RFC822.SIZE)")
        size = sum(int(v["RFC822.SIZE"]) for v in fetch_map(untagged).values())
        r.ok("STORE 1 +FLAGS (\\Seen \\Deleted)")
        uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", b"\n".join(r.ok("EXAMINE INBOX")[0])).group(1))
        r.ok("UNSELECT")
        untagged, _ = r.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED)")
        self.assertEqual(len(untagged), 1, untagged)
        self.assertEqual(status_map(untagged)["INBOX"], {"MESSAGES": 2, "UIDNEXT": 3, "UIDVALIDITY": uv, "UNSEEN": 1, "SIZE": size,
                               "DELETED": 1})
        r.ok("CREATE Work")
        untagged, _ = r.ok("STATUS Work (MESSAGES RECENT)")
        self.assertEqual(status_map(untagged), {"Work": {"MESSAGES": 0, "RECENT": 0}})
        _, tagged = r.cmd("STATUS Nope (MESSAGES)")
        self.assertEqual(status_of(tagged), "NO")
        _, tagged = r.cmd("STATUS INBOX (BOGUS)")
        self.assertEqual(status_of(tagged), "BAD")


class AppendFetch(ImapCase):

    def test_append_synchronizing_literal_and_fetch_back(self):
        m = self.imap()
        m.create("Work")
        typ, data = m.append("Work", "(\\Flagged $Label1)", '"07-Feb-1994 21:52:25 -0800"', SIMPLE)
        self.assertEqual(typ, "OK")
        au = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        self.assertTrue(au, "RFC 4315: APPENDUID")
        r = self.raw()
        untagged, tagged = r.ok("SELECT Work")
        self.assertIn(b"[UIDVALIDITY " + au.group(1) + b"]", b"\n".join(untagged))
        untagged, _ = r.ok("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        f = fetch_map(untagged)[1]
        self.assertEqual(f["BODY[]"], SIMPLE, "byte for byte")
        self.assertEqual(int(f["RFC822.SIZE"]), len(SIMPLE))
        self.assertEqual(f["UID"], au.group(2))
        self.assertTrue({"\\Flagged", "$Label1"} <= flagset(f["FLAGS"]), f["FLAGS"])
        self.assertNotIn("\\Seen", flagset(f["FLAGS"]))
        self.assertEqual(internaldate_epoch(f["INTERNALDATE"]), internaldate_epoch(b"07-Feb-1994 21:52:25 -0800"))

    def test_append_literal_plus_and_8bit(self):
        r = self.raw()
        data = SIMPLE.replace(b"line two", b"l\xc3\xadnea dos\r\n.dot\r\nFrom the start")
        tag = r.tag()
        r.send(f'{tag} APPEND INBOX (\\Seen) "01-Jan-2024 00:00:00 +0000" {{{len(data)}+}}\r\n'.encode()
               + data + b"\r\n")  # RFC 7888: no continuation is awaited
        untagged, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK", tagged)
        self.assertIn(b"[APPENDUID ", tagged)
        # Two messages in one MULTIAPPEND-free pipeline: two APPENDs back to back.
        r.send(f"a1 APPEND INBOX {{{len(MULTI)}+}}\r\n".encode() + MULTI + b"\r\n"
               + f"a2 APPEND INBOX {{{len(SIMPLE)}+}}\r\n".encode() + SIMPLE + b"\r\n")
        self.assertEqual(status_of(r.until("a1")[1]), "OK")
        self.assertEqual(status_of(r.until("a2")[1]), "OK")
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"* 3 EXISTS", untagged)
        f = fetch_map(r.ok("FETCH 1:3 (FLAGS BODY.PEEK[] INTERNALDATE)")[0])
        self.assertEqual(f[1]["BODY[]"], data)
        self.assertEqual(f[2]["BODY[]"], MULTI)
        self.assertEqual(f[3]["BODY[]"], SIMPLE)
        self.assertIn("\\Seen", flagset(f[1]["FLAGS"]))
        self.assertEqual(internaldate_epoch(f[1]["INTERNALDATE"]), 1704067200)

    def test_append_errors(self):
        r = self.raw()
        tag = r.tag()
        r.send(f"{tag} APPEND Nope {{{len(SIMPLE)}}}\r\n")
        resp = r.response()
        if resp.startswith(b"+"):
            r.send(SIMPLE + b"\r\n")
            _, resp = r.until(tag)
        self.assertEqual(status_of(resp), "NO")
        self.assertIn(b"[TRYCREATE]", resp, "RFC 3501 6.3.11")
        _, tagged = r.cmd('APPEND INBOX "not a date" {5+}\r\nhello')
        self.assertEqual(status_of(tagged), "BAD")
        untagged, _ = r.ok("NOOP")
        self.assertEqual(untagged, [], "the non-synchronizing literal was read, not taken as a command")

    def test_a_large_message_round_trip(self):
        big = (b"Subject: big\r\n\r\n" + (b"0123456789abcdef" * 4 + b"\r\n") * (10 * 1024 * 1024 // 66)
               + b"end\r\n")
        r = self.raw()
        tag = r.tag()
        r.send(f"{tag} APPEND INBOX {{{len(big)}+}}\r\n".encode() + big + b"\r\n")
        self.assertEqual(status_of(r.until(tag)[1]), "OK")
        self.deliver(big)
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1:2 (RFC822.SIZE BODY.PEEK[])")[0])
        self.assertEqual(f[1]["BODY[]"], big, "10 MiB byte for byte")
        self.assertTrue(f[2]["BODY[]"].endswith(big))
        for v in f.values():
            self.assertEqual(int(v["RFC822.SIZE"]), len(v["BODY[]"]))
        f = fetch_map(r.ok(f"FETCH 1 (BODY.PEEK[TEXT]<{len(big) - 100}.1000>)")[0])
        self.assertEqual(f[1][f"BODY[TEXT]<{len(big) - 100}>"], big[len(big) - 100 + 16:])

    def test_fetch_items(self):
        r = self.raw()
        self.append(r, "INBOX", SIMPLE)
        self.append(r, "INBOX", MULTI)
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1 (ENVELOPE BODY BODYSTRUCTURE RFC822.SIZE)")[0])[1]
        pepe = [[b"Pepe Perez", None, b"pepe", b"remote.test"]]
        self.assertEqual(f["ENVELOPE"], [b"Mon, 7 Feb 1994 21:52:25 -0800", b"hello world", pepe, pepe, pepe,
                                         [[None, None, b"alice", b"example.test"]], None, None, None,
                                         b"<simple@remote.test>"], "RFC 3501 7.4.2 ENVELOPE")
        body = f["BODY"]
        # RFC 3501 7.4.2: the default content type is text/plain; charset=us-ascii.
        self.assertEqual(low(body), [b"text", b"plain", [b"charset", b"us-ascii"], None, None, b"7bit", b"20", b"2"])
        self.assertEqual(f["BODYSTRUCTURE"][:len(body)], body, "BODYSTRUCTURE extends BODY")
        f = fetch_map(r.ok("FETCH 2 (ENVELOPE BODYSTRUCTURE)")[0])[2]
        self.assertEqual(f["ENVELOPE"][5], [[b"Alice", None, b"alice", b"example.test"],
                                            [None, None, b"bob", b"example.test"]])
        bs = f["BODYSTRUCTURE"]
        self.assertEqual(bs[2].upper(), b"MIXED")
        self.assertEqual(low(bs[3]), [b"boundary", b"b1"], "multipart extension data: the parameters")
        p1, p2 = low(bs[0]), low(bs[1])
        self.assertEqual(p1[:7], [b"text", b"plain", [b"charset", b"utf-8"], None, None, b"8bit",
                                  str(len(PART1)).encode()])
        self.assertEqual(p2[:7], [b"application", b"octet-stream", [b"name", b"x.bin"], None, None, b"base64", b"8"])
        self.assertEqual(p2[8], [b"attachment", [b"filename", b"x.bin"]], "the disposition")
        # Sections.
        cases = {
            "BODY.PEEK[]": ("BODY[]", MULTI),
            "BODY.PEEK[HEADER.FIELDS (SUBJECT)]": ("BODY[HEADER.FIELDS (SUBJECT)]", b"Subject: parts\r\n\r\n"),
            "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE MESSAGE-ID CONTENT-TYPE)]":
                ("BODY[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE MESSAGE-ID CONTENT-TYPE)]",
                 b"MIME-Version: 1.0\r\n\r\n"),
            "BODY.PEEK[HEADER]": ("BODY[HEADER]", MULTI[:MULTI.index(b"\r\n\r\n") + 4]),
            "BODY.PEEK[TEXT]": ("BODY[TEXT]", MULTI[MULTI.index(b"\r\n\r\n") + 4:]),
            "BODY.PEEK[1]": ("BODY[1]", PART1),
            "BODY.PEEK[2]": ("BODY[2]", base64.b64encode(PART2)),
            "BODY.PEEK[1.MIME]": ("BODY[1.MIME]", PART1_MIME),
            "BODY.PEEK[]<0.10>": ("BODY[]<0>", MULTI[:10]),
            "BODY.PEEK[]<20.30>": ("BODY[]<20>", MULTI[20:50]),
            "BODY.PEEK[1]<100.10>": ("BODY[1]<100>", b""),
            "BINARY.PEEK[1]": ("BINARY[1]", PART1),
            "BINARY.PEEK[2]": ("BINARY[2]", PART2),
            "BINARY.SIZE[2]": ("BINARY.SIZE[2]", b"5"),
            "RFC822.HEADER": ("RFC822.HEADER", MULTI[:MULTI.index(b"\r\n\r\n") + 4]),
            "RFC822.SIZE": ("RFC822.SIZE", str(len(MULTI)).encode()),
        }
        for item, (key, want) in cases.items():
            with self.subTest(item=item):
                untagged, tagged = r.cmd(f"FETCH 2 ({item})")
                self.assertEqual(status_of(tagged), "OK", (tagged, untagged))
                got = fetch_map(untagged)[2]
                self.assertIn(key, got, untagged)
                self.assertEqual(got[key], want)
        # BINARY of a part is sent as literal8 when it is not 7-bit text (RFC 3516 4.2).
        untagged, _ = r.ok("FETCH 2 (BINARY.PEEK[2])")
        self.assertIn(b"~{5}", untagged[0])
        f = fetch_map(r.ok("FETCH 1:2 (FLAGS)")[0])
        self.assertFalse(any("\\Seen" in flagset(v["FLAGS"]) for v in f.values()), "PEEK leaves \\Seen alone")
        # BODY[] and RFC822 set \Seen, and the FETCH response carries the new FLAGS (RFC 3501 6.4.5).
        untagged, _ = r.ok("FETCH 1 BODY[]")
        f = fetch_map(untagged)[1]
        self.assertEqual(f["BODY[]"], SIMPLE)
        self.assertIn("\\Seen", flagset(f.get("FLAGS", [])), untagged)
        untagged, _ = r.ok("FETCH 2 RFC822.TEXT")
        self.assertIn("\\Seen", flagset(fetch_map(untagged)[2].get("FLAGS", [])), untagged)
        untagged, _ = r.ok("UID FETCH 1:* (FLAGS)")
        for v in fetch_map(untagged).values():
            self.assertIn("UID", v, "RFC 3501 6.4.8: UID FETCH always returns UID")
        # Macros and the sequence set forms.
        untagged, _ = r.ok("FETCH 1:* FAST")
        f = fetch_map(untagged)
        self.assertEqual(sorted(f), [1, 2])
        self.assertEqual(set(f[1]), {"FLAGS", "INTERNALDATE", "RFC822.SIZE"})
        untagged, _ = r.ok("FETCH * (UID)")
        self.assertEqual(list(fetch_map(untagged)), [2])
        _, tagged = r.cmd("FETCH 3 (FLAGS)")
        self.assertIn(status_of(tagged), ("NO", "BAD"), "a message number past EXISTS")
        untagged, _ = r.ok("UID FETCH 999 (FLAGS)")
        self.assertEqual(untagged, [], "a UID set that matches nothing is OK and empty")

    def test_binary_append_keeps_bare_lfs(self):
        # RFC 3516 4.4: a message APPENDed as a literal8 comes back octet for octet, so BINARY of
        # its binary part is the 7 octets given, bare LFs and all (Dovecot: the same 7). Over a
        # plain literal a bare LF reads back as CRLF, as Dovecot answers too.
        part = b"ab\ncd\nx"
        m = (b"From: a@remote.test\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
             b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
             + part + b"\r\n--zz--\r\n")
        r = self.raw()
        for lit in ("~{%d+}", "{%d+}"):
            tag = r.tag()
            r.send(f"{tag} APPEND INBOX {lit % len(m)}\r\n".encode() + m + b"\r\n")
            self.assertEqual(status_of(r.until(tag)[1]), "OK")
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1:2 (BINARY.SIZE[1] BINARY.PEEK[1] RFC822.SIZE BODY.PEEK[])")[0])
        self.assertEqual(int(f[1]["BINARY.SIZE[1]"]), 7)
        self.assertEqual(f[1]["BINARY[1]"], part)
        self.assertEqual(f[1]["BODY[]"], m)
        self.assertEqual(int(f[1]["RFC822.SIZE"]), len(m))
        self.assertEqual(f[2]["BINARY[1]"], b"ab\r\ncd\r\nx")
        self.assertEqual(int(f[2]["RFC822.SIZE"]), len(m) + 2)
        # And so does a copy of it.
        r.ok("CREATE Kept")
        r.ok("COPY 1 Kept")
        r.ok("SELECT Kept")
        f = fetch_map(r.ok("FETCH 1 (BINARY.PEEK[1] BODY.PEEK[])")[0])
        self.assertEqual((f[1]["BINARY[1]"], f[1]["BODY[]"]), (part, m))
        self.assertEqual(search_nums(r.ok("SEARCH SUBJECT bin")[0]), [1])

    def test_rfc822_size_is_the_size_of_body_for_delivered_mail(self):
        self.deliver(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" + b"line\r\n" * 3000)
        self.deliver(msg("small"))
        # A file another MDA wrote with bare LF line ends (procmail, Postfix's local): served with CRLF.
        new = os.path.join(self.server.maildir("alice"), "new")
        with open(os.path.join(new, "1700000000.M1P1.other"), "wb") as fh:
            fh.write(b"Subject: lf only\nFrom: x@remote.test\n\nline one\nline two\n")
        r = self.raw()
        self.assertIn(b"* 3 EXISTS", r.ok("EXAMINE INBOX")[0])
        f = fetch_map(r.ok("FETCH 1:* (RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT])")[0])
        self.assertIn(b"Subject: lf only\r\nFrom: x@remote.test\r\n\r\nline one\r\nline two\r\n",
                      [v["BODY[]"] for v in f.values()])
        for n, v in f.items():
            self.assertEqual(int(v["RFC822.SIZE"]), len(v["BODY[]"]), n)
            self.assertEqual(v["BODY[HEADER]"] + v["BODY[TEXT]"], v["BODY[]"])
            self.assertNotRegex(v["BODY[]"], rb"[^\r]\n", "every line ends in CRLF")

    def test_store_flags_and_keywords(self):
        self.deliver(msg("one"))
        self.deliver(msg("two"))
        r = self.raw()
        r.ok("SELECT INBOX")
        untagged, _ = r.ok("STORE 1 +FLAGS (\\Flagged $Work)")
        self.assertEqual(flagset(fetch_map(untagged)[1]["FLAGS"]) - {"\\Recent"}, {"\\Flagged", "$Work"})
        untagged, _ = r.ok("STORE 1 -FLAGS (\\Flagged)")
        self.assertEqual(flagset(fetch_map(untagged)[1]["FLAGS"]) - {"\\Recent"}, {"$Work"})
        untagged, _ = r.ok("STORE 1:2 FLAGS (\\Answered $Done)")
        f = fetch_map(untagged)
        self.assertEqual(flagset(f[2]["FLAGS"]) - {"\\Recent"}, {"\\Answered", "$Done"})
        untagged, _ = r.ok("STORE 2 +FLAGS.SILENT (\\Draft)")
        self.assertEqual(fetch_map(untagged), {}, "FLAGS.SILENT: no FETCH response")
        untagged, _ = r.ok("UID STORE 1:* +FLAGS (\\Seen)")
        f = fetch_map(untagged)
        self.assertEqual(sorted(f), [1, 2])
        self.assertIn("UID", f[1], "UID STORE answers with UID")
        _, tagged = r.cmd("STORE 1 +FLAGS (\\Bogus)")
        self.assertIn(status_of(tagged), ("BAD", "NO"), "an unknown system flag")
        # The flags persist across sessions.
        r.ok("LOGOUT")
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX")
        flags_line = find(untagged, "* FLAGS ")[0]
        self.assertIn(b"$Done", flags_line, "the FLAGS response names the keywords in use")
        f = fetch_map(r.ok("FETCH 1:2 FLAGS")[0])
        self.assertEqual(flagset(f[1]["FLAGS"]), {"\\Answered", "$Done", "\\Seen"})
        self.assertEqual(flagset(f[2]["FLAGS"]), {"\\Answered", "$Done", "\\Seen", "\\Draft"})

    def test_a_new_keyword_is_announced_before_a_fetch_uses_it(self):
        """RFC 3501 7.2.6: the untagged FLAGS (and PERMANENTFLAGS) naming a new keyword come before
        the FETCH that carries it, in the session that stored it and in another one watching."""
        self.deliver(msg("one"))
        r, other = self.raw(), self.raw()
        r.ok("SELECT INBOX")
        other.ok("SELECT INBOX")
        untagged, _ = r.ok("STORE 1 +FLAGS ($Brandnew)")
        flags = [i for i, u in enumerate(untagged) if u.startswith(b"* FLAGS ") and b"$Brandnew" in u]
        fetches = [i for i, u in enumerate(untagged) if b"FETCH" in u and b"$Brandnew" in u]
        self.assertTrue(flags and fetches and flags[0] < fetches[0], untagged)
        self.assertTrue(any(b"PERMANENTFLAGS" in u and b"$Brandnew" in u for u in untagged), untagged)
        untagged, _ = other.ok("NOOP")
        flags = [i for i, u in enumerate(untagged) if u.startswith(b"* FLAGS ") and b"$Brandnew" in u]
        fetches = [i for i, u in enumerate(untagged) if b"FETCH" in u and b"$Brandnew" in u]
        self.assertTrue(flags and fetches and flags[0] < fetches[0], untagged)
        untagged, _ = r.ok("STORE 1 +FLAGS ($Brandnew)")
        self.assertFalse(any(u.startswith(b"* FLAGS ") for u in untagged), "announced once")

    def test_appended_and_copied_messages_are_recent_once(self):
        """RFC 3501 2.3.2: a message APPENDed or COPYed is \\Recent for the first session to see
        it (STATUS and EXAMINE show it without taking it), and for no other."""
        r = self.raw()
        self.append(r, "INBOX", msg("appended"), flags="\\Seen")
        untagged, _ = r.ok("STATUS INBOX (RECENT)")
        self.assertIn(b"RECENT 1", untagged[0])
        untagged, _ = r.ok("EXAMINE INBOX")
        self.assertIn(b"* 1 RECENT", untagged)
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"* 1 RECENT", untagged)
        self.assertIn(b"\\Recent", r.ok("FETCH 1 FLAGS")[0][0])
        self.assertEqual(search_nums(r.ok("SEARCH RECENT")[0]), [1])
        other = self.raw()
        untagged, _ = other.ok("SELECT INBOX")
        self.assertIn(b"* 0 RECENT", untagged, "claimed by the first session")
        r.ok("CREATE Copies")
        r.ok("COPY 1 Copies")
        untagged, _ = other.ok("SELECT Copies")
        self.assertIn(b"* 1 RECENT", untagged)
        self.assertEqual(search_nums(other.ok("SEARCH RECENT")[0]), [1])


class Search(ImapCase):

    def setUp(self):
        super().setUp()
        r = self.raw()
        self.append(r, "INBOX", msg("hello world", b"apple banana\r\n", b"Alice <alice@example.test>"),
                    date="01-Jan-2023 12:00:00 +0000")
        self.append(r, "INBOX", msg("Re: hello", b"cherry\r\n" + b"filler line\r\n" * 400,
                                    b"Bob <bob@example.test>", b"X-Tag: red\r\n"),
                    date="15-Jun-2024 12:00:00 +0000")
        self.append(r, "INBOX", msg("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", b"na\xc3\xafve caf\xc3\xa9\r\n",
                                    b"Carol <carol@example.test>",
                                    b"Content-Type: text/plain; charset=utf-8\r\n"
                                    b"Content-Transfer-Encoding: 8bit\r\n"),
                    date="01-Mar-2025 12:00:00 +0000")
        self.append(r, "INBOX", msg("invoice", b"APPLE pie\r\n", b"Bob <bob@example.test>"),
                    flags="\\Seen $Paid", date="10-Oct-2024 12:00:00 +0000")
        r.close()

    def test_search_from_sees_the_address_through_comments_and_groups(self):
        r = self.raw()
        self.append(r, "INBOX", msg("commented", b"x\r\n", b"dave(the boss)@example.test"))
        self.append(r, "INBOX", b"From: Friends: =?utf-8?q?Zo=C3=AB?= <zoe (home) @example.test>;\r\n"
                                b"Subject: group\r\n\r\nx\r\n")
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        self.addCleanup(m.logout)
        m.login(*ALICE)
        m.select("INBOX")
        self.assertEqual(m.search(None, "FROM", "dave@example.test"), ("OK", [b"5"]))
        self.assertEqual(m.search(None, "FROM", "zoe@example.test"), ("OK", [b"6"]))
        self.assertEqual(m.search(None, "FROM", "friends"), ("OK", [b"6"]))
        m.literal = "Zoë".encode()
        self.assertEqual(m.search("UTF-8", "FROM"), ("OK", [b"6"]), "the display name, decoded")

    def test_search_keys(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        cases = [
            ("ALL", [1, 2, 3, 4]),
            ("FROM bob", [2, 4]),
            ('FROM "alice@example.test"', [1]),
            ("SUBJECT hello", [1, 2]),
            ("SUBJECT HELLO", [1, 2]),
            ("BODY apple", [1, 4]),
            ("TEXT cherry", [2]),
            ("TEXT Carol", [3]),
            ("HEADER X-Tag red", [2]),
            ("HEADER X-Tag \"\"", [2]),
            ("SINCE 1-Jun-2024", [2, 3, 4]),
            ("BEFORE 1-Jun-2024", [1]),
            ("ON 15-Jun-2024", [2]),
            ("LARGER 3000", [2]),
            ("SMALLER 3000", [1, 3, 4]),
            ("UNSEEN", [1, 2, 3]),
            ("SEEN", [4]),
            ("KEYWORD $Paid", [4]),
            ("UNKEYWORD $Paid", [1, 2, 3]),
            ("NOT FROM bob", [1, 3]),
            ("OR FROM alice FROM carol", [1, 3]),
            ("OR SUBJECT invoice (FROM alice BODY banana)", [1, 4]),
            ("FROM bob UNSEEN", [2]),
            ("2:*", [2, 3, 4]),
            ("*", [4]),
            ("1,3", [1, 3]),
            ("UID 2:3", [2, 3]),
            ("UID *", [4]),
            ("DELETED", []),
            ("SUBJECT nomatch", []),
            ('CHARSET US-ASCII SUBJECT invoice', [4]),
        ]
        for key, want in cases:
            with self.subTest(key=key):
                untagged, tagged = r.cmd(f"SEARCH {key}")
                self.assertEqual(status_of(tagged), "OK", tagged)
                self.assertEqual(search_nums(untagged), want)
        untagged, _ = r.ok("UID SEARCH FROM bob")
        f = fetch_map(r.ok("FETCH 1:4 UID")[0])
        self.assertEqual(search_nums(untagged), [int(f[2]["UID"]), int(f[4]["UID"])])
        _, tagged = r.cmd("SEARCH CHARSET X-NOPE FROM bob")
        self.assertEqual(status_of(tagged), "NO")
        self.assertIn(b"[BADCHARSET", tagged, "RFC 3501 6.4.4")
        _, tagged = r.cmd("SEARCH FROBNICATE")
        self.assertEqual(status_of(tagged), "BAD")
        _, tagged = r.cmd("SEARCH SINCE 31-Foo-2024")
        self.assertEqual(status_of(tagged), "BAD")

    def test_search_utf8_with_literals(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        needle = "grüße".encode()
        untagged, _ = r.ok(b"SEARCH CHARSET UTF-8 SUBJECT {" + str(len(needle)).encode() + b"+}\r\n" + needle)
        self.assertEqual(search_nums(untagged), [3], "encoded-words are decoded, case folded")
        needle = "café".encode()
        tag = r.tag()
        r.send(f"{tag} SEARCH CHARSET UTF-8 BODY {{{len(needle)}}}\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        r.send(needle + b"\r\n")
        untagged, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK")
        self.assertEqual(search_nums(untagged), [3])
        # imaplib's literal attribute sends a synchronizing literal.
        m = self.imap()
        m.select("INBOX")
        m.literal = "NAÏVE".encode()
        typ, data = m.search("UTF-8", "TEXT")
        self.assertEqual((typ, data), ("OK", [b"3"]))

    def test_search_decodes_transfer_encodings_and_charsets(self):
        self.deliver(b"Subject: =?ISO-8859-1?Q?Cr=E8me?=\r\nMIME-Version: 1.0\r\n"
                     b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
                     b"\r\ncaf=E9 cr=E8me br=FBl=E9e\r\n")
        self.deliver(b"Subject: b64\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode("naïve soufflé".encode()) + b"\r\n")
        r = self.raw()
        r.ok("SELECT INBOX")
        for needle, want in (("café", [3, 5]), ("brûlée", [5]), ("soufflé", [6]), ("NAÏVE", [3, 6]), ("=E9", [])):
            with self.subTest(needle=needle):
                data = needle.encode()
                untagged, _ = r.ok(b"SEARCH CHARSET UTF-8 BODY {" + str(len(data)).encode() + b"+}\r\n" + data)
                self.assertEqual(search_nums(untagged), want)
        untagged, _ = r.ok(b"SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncr\xc3\xa8m")
        self.assertEqual(search_nums(untagged), [5], "RFC 2047 words in iso-8859-1 are decoded")
        f = fetch_map(r.ok("FETCH 5:6 (BINARY.PEEK[1] BINARY.SIZE[1])")[0])
        self.assertEqual(f[5]["BINARY[1]"], b"caf\xe9 cr\xe8me br\xfbl\xe9e\r\n", "RFC 3516: decoded, not converted")
        self.assertEqual(f[6]["BINARY[1]"], "naïve soufflé".encode())
        self.assertEqual(int(f[6]["BINARY.SIZE[1]"]), len(f[6]["BINARY[1]"]))

    def test_sent_dates_and_more_keys(self):
        r = self.raw()
        r.ok("CREATE Dated")
        self.append(r, "Dated", SIMPLE, flags="\\Answered \\Draft")  # Date: Mon, 7 Feb 1994 21:52:25 -0800
        self.append(r, "Dated", MULTI)  # Date: Tue, 2 Jan 2024 10:00:00 +0100
        r.ok("SELECT Dated")
        cases = [
            ("SENTBEFORE 1-Jan-2000", [1]),
            ("SENTSINCE 1-Jan-2024", [2]),
            ("SENTON 7-Feb-1994", [1]),
            ("SENTON 2-Jan-2024", [2]),
            ("ANSWERED", [1]),
            ("DRAFT", [1]),
            ("UNANSWERED", [2]),
            ("HEADER Message-ID <multi@remote.test>", [2]),
            ("TO bob@example.test", [2]),
            ("CC bob", []),
            ("BODY lait", [2]),
            ("LARGER 4294967295", []),
            ("1:2 NOT 2", [1]),
        ]
        for key, want in cases:
            with self.subTest(key=key):
                untagged, tagged = r.cmd(f"SEARCH {key}")
                self.assertEqual(status_of(tagged), "OK", tagged)
                self.assertEqual(search_nums(untagged), want)
        untagged, tagged = r.ok("SEARCH LARGER 4294967296")  # RFC 9051: number64
        self.assertEqual(search_nums(untagged), [])
        uid2 = int(fetch_map(r.ok("FETCH 2 UID")[0])[2]["UID"])
        _, tagged = r.ok(f"UID COPY {uid2}:{uid2 + 50} INBOX")
        m = re.search(rb"\[COPYUID \d+ (\S+) (\S+)\]", tagged)
        self.assertEqual(seqset(m.group(1).decode()), [uid2], "only the UIDs that exist")

    def test_esearch_and_searchres(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        tag = r.tag()
        untagged, _ = r.cmd("SEARCH RETURN (MIN MAX COUNT ALL) FROM bob", tag=tag)
        self.assertEqual(len(untagged), 1, untagged)
        self.assertTrue(untagged[0].startswith(f'* ESEARCH (TAG "{tag}") '.encode()), untagged)
        self.assertEqual(esearch(untagged), {"TAG": tag, "MIN": "2", "MAX": "4", "COUNT": "2", "ALL": "2,4"},
                         "RFC 4731 3.1")
        untagged, _ = r.ok("SEARCH RETURN () UNSEEN")
        self.assertEqual(seqset(esearch(untagged)["ALL"]), [1, 2, 3], "RETURN () means ALL")
        untagged, _ = r.ok("SEARCH RETURN (COUNT MIN) SUBJECT nomatch")
        got = esearch(untagged)
        self.assertEqual(got.get("COUNT"), "0")
        self.assertNotIn("MIN", got, "RFC 4731: MIN is left out when nothing matched")
        uids = fetch_map(r.ok("FETCH 1:4 UID")[0])
        untagged, _ = r.ok("UID SEARCH RETURN (MIN MAX) ALL")
        got = esearch(untagged)
        self.assertTrue(got.get("UID"), "UID SEARCH answers with the UID marker")
        self.assertEqual((int(got["MIN"]), int(got["MAX"])), (int(uids[1]["UID"]), int(uids[4]["UID"])))
        # SEARCHRES (RFC 5182): SAVE alone sends no ESEARCH; $ then names the result.
        untagged, _ = r.ok("SEARCH RETURN (SAVE) FROM bob")
        self.assertEqual(find(untagged, "* ESEARCH") + find(untagged, "* SEARCH"), [])
        untagged, _ = r.ok("FETCH $ (FLAGS)")
        self.assertEqual(sorted(fetch_map(untagged)), [2, 4])
        untagged, _ = r.ok("UID FETCH $ (FLAGS)")
        self.assertEqual(sorted(fetch_map(untagged)), [2, 4])
        untagged, _ = r.ok("SEARCH $ UNSEEN")
        self.assertEqual(search_nums(untagged), [2])
        untagged, _ = r.ok("SEARCH RETURN (SAVE MIN) SUBJECT hello")
        self.assertEqual(esearch(untagged)["MIN"], "1")
        r.ok("STORE $ +FLAGS.SILENT (\\Flagged)")
        self.assertEqual(search_nums(r.ok("SEARCH FLAGGED")[0]), [1], "RFC 5182 2.4: SAVE with MIN saves the MIN")
        r.ok("SEARCH RETURN (SAVE ALL) SUBJECT hello")
        r.ok("STORE $ +FLAGS.SILENT (\\Answered)")
        self.assertEqual(search_nums(r.ok("SEARCH ANSWERED")[0]), [1, 2])


class CopyMoveExpunge(ImapCase):

    def setUp(self):
        super().setUp()
        r = self.raw()
        for i in range(1, 6):
            self.append(r, "INBOX", msg(f"m{i}"))
        r.close()

    def subjects(self, r, mailbox):
        if b"* 0 EXISTS" in r.ok(f"EXAMINE {mailbox}")[0]:
            return []
        f = fetch_map(r.ok("FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]")[0])
        return [f[n]["BODY[HEADER.FIELDS (SUBJECT)]"].strip().decode()[9:] for n in sorted(f)]

    def test_copy_and_move(self):
        r = self.raw()
        r.ok("CREATE Work")
        r.ok("SELECT INBOX")
        uids = {n: int(v["UID"]) for n, v in fetch_map(r.ok("FETCH 1:* UID")[0]).items()}
        _, tagged = r.ok("COPY 1:2 Work")
        m = re.search(rb"\[COPYUID (\d+) (\S+) (\S+)\]", tagged)
        self.assertTrue(m, "RFC 4315 COPYUID")
        self.assertEqual(seqset(m.group(2).decode()), [uids[1], uids[2]])
        self.assertEqual(len(seqset(m.group(3).decode())), 2)
        _, tagged = r.cmd("COPY 1 Nope")
        self.assertEqual(status_of(tagged), "NO")
        self.assertIn(b"[TRYCREATE]", tagged)
        # MOVE (RFC 6851): COPYUID in an untagged OK, then EXPUNGE responses, highest first or not.
        untagged, tagged = r.ok("MOVE 4:5 Work")
        self.assertTrue([u for u in untagged if re.match(rb"\* OK \[COPYUID \d+ \S+ \S+\]", u)], untagged)
        self.assertEqual(expunged(untagged, 5), [4, 5])
        untagged, _ = r.ok(f"UID MOVE {uids[1]} Work")
        self.assertIn(b"* 1 EXPUNGE", untagged)
        r.ok("UNSELECT")
        self.assertEqual(self.subjects(r, "INBOX"), ["m2", "m3"])
        self.assertEqual(sorted(self.subjects(r, "Work")), ["m1", "m1", "m2", "m4", "m5"])
        # Flags travel with COPY.
        r.ok("SELECT INBOX")
        r.ok("STORE 1 +FLAGS (\\Flagged $Keep)")
        r.ok("COPY 1 Work")
        r.ok("EXAMINE Work")
        untagged, _ = r.ok("FETCH * FLAGS")
        self.assertTrue({"\\Flagged", "$Keep"} <= flagset(list(fetch_map(untagged).values())[0]["FLAGS"]))

    def test_expunge_numbering_uid_expunge_close_unselect(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        uids = {n: int(v["UID"]) for n, v in fetch_map(r.ok("FETCH 1:* UID")[0]).items()}
        r.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = r.ok("EXPUNGE")
        self.assertEqual(expunged(untagged, 5), [2, 4], "RFC 3501 7.4.1: each number is right when sent")
        self.assertEqual(len(find(untagged, "* 4 EXPUNGE") + find(untagged, "* 3 EXPUNGE")), 1, untagged)
        self.assertEqual(self.subjects(r, "INBOX"), ["m1", "m3", "m5"])
        r.ok("SELECT INBOX")
        r.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = r.ok(f"UID EXPUNGE {uids[3]}")  # RFC 4315 2.1: only those UIDs
        self.assertEqual(untagged, [b"* 2 EXPUNGE"])
        self.assertEqual(search_nums(r.ok("SEARCH DELETED")[0]), [1])
        # UNSELECT leaves \Deleted messages; CLOSE expunges them silently.
        r.ok("UNSELECT")
        self.assertEqual(self.subjects(r, "INBOX"), ["m1", "m5"])
        r.ok("SELECT INBOX")
        untagged, _ = r.ok("CLOSE")
        self.assertEqual(find(untagged, "* 1 EXPUNGE"), [], "RFC 3501 6.4.2: CLOSE sends no EXPUNGE")
        _, tagged = r.cmd("FETCH 1 FLAGS")
        self.assertEqual(status_of(tagged), "BAD", "CLOSE leaves the selected state")
        self.assertEqual(self.subjects(r, "INBOX"), ["m5"])
        # CLOSE after EXAMINE expunges nothing.
        r.ok("SELECT INBOX")
        r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        r.ok("EXAMINE INBOX")
        r.ok("CLOSE")
        self.assertEqual(self.subjects(r, "INBOX"), ["m5"])


FORWARDED = (b"From: Fwd <fwd@remote.test>\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n"
             b"Content-Type: text/plain\r\n\r\nsee below\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n"
             + SIMPLE + b"\r\n--outer--\r\n")


class Edges(ImapCase):

    def test_append_and_copy_into_the_selected_mailbox_announce_exists(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        tag = r.tag()
        r.send(f"{tag} APPEND INBOX {{{len(SIMPLE)}+}}\r\n".encode() + SIMPLE + b"\r\n")
        untagged, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK")
        self.assertIn(b"* 1 EXISTS", untagged, "RFC 3501 6.3.11: the server SHOULD send EXISTS at once")
        untagged, _ = r.ok("COPY 1 INBOX")
        self.assertIn(b"* 2 EXISTS", untagged)
        untagged, _ = r.ok("MOVE 1 INBOX")
        count = 2  # EXISTS and EXPUNGE in either order, each right when sent
        for u in untagged:
            m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE)$", u)
            if m and m.group(2) == b"EXISTS":
                count = int(m.group(1))
            elif m:
                self.assertEqual(m.group(1), b"1")
                count -= 1
        self.assertEqual(count, 2, untagged)
        self.assertEqual(status_map(r.ok("STATUS INBOX (MESSAGES)")[0])["INBOX"]["MESSAGES"], 2)

    def test_message_rfc822_part_and_folded_headers(self):
        r = self.raw()
        folded = b"Subject: a folded\r\n subject line\r\nX-Long: one\r\n\ttwo\r\n\r\nbody\r\n"
        self.append(r, "INBOX", FORWARDED)
        self.append(r, "INBOX", folded)
        self.append(r, "INBOX", b"Subject: no body at all\r\n")
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1 (BODYSTRUCTURE BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.1] "
                           "BODY.PEEK[2.TEXT] BODY.PEEK[2])")[0])[1]
        part = low(f["BODYSTRUCTURE"][1])
        self.assertEqual(part[:2], [b"message", b"rfc822"])
        self.assertEqual(int(part[6]), len(SIMPLE), "the size of the encapsulated message")
        self.assertEqual(part[7][1], b"hello world", "RFC 3501 7.4.2: the envelope of the inner message")
        self.assertEqual(low(part[8])[:2], [b"text", b"plain"], "then its body structure")
        self.assertEqual(f["BODY[2.HEADER.FIELDS (SUBJECT)]"], b"Subject: hello world\r\n\r\n")
        self.assertEqual(f["BODY[2]"], SIMPLE)
        self.assertEqual(f["BODY[2.TEXT]"], b"line one\r\nline two\r\n")
        self.assertEqual(f["BODY[2.1]"], b"line one\r\nline two\r\n", "a non-multipart message's part 1")
        f = fetch_map(r.ok("FETCH 2 (ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject x-long)])")[0])[2]
        self.assertEqual(f["ENVELOPE"][1], b"a folded subject line", "RFC 5322 unfolding")
        self.assertEqual(f["BODY[HEADER.FIELDS (SUBJECT X-LONG)]"],
                         b"Subject: a folded\r\n subject line\r\nX-Long: one\r\n\ttwo\r\n\r\n", "as stored")
        self.assertEqual(search_nums(r.ok("SEARCH SUBJECT \"folded subject\"")[0]), [2])
        f = fetch_map(r.ok("FETCH 3 (RFC822.SIZE BODY.PEEK[TEXT] BODY.PEEK[HEADER] BODY.PEEK[] BODYSTRUCTURE)")[0])[3]
        self.assertEqual(f["BODY[TEXT]"], b"")
        self.assertEqual(f["BODY[]"], b"Subject: no body at all\r\n")
        self.assertEqual(int(f["RFC822.SIZE"]), len(f["BODY[]"]))
        untagged, _ = r.ok("FETCH 1 BODY.PEEK[]<0.4294967295>")
        self.assertEqual(fetch_map(untagged)[1]["BODY[]<0>"], FORWARDED)
        untagged, tagged = r.cmd("FETCH 1 BODY.PEEK[9]")
        self.assertEqual(status_of(tagged), "OK", "a missing part is empty (RFC 9051 6.4.5), not an error")
        self.assertIn(fetch_map(untagged)[1]["BODY[9]"], (b"", None))

    def test_names_as_literals_and_rename_into_itself(self):
        r = self.raw()
        r.ok("CREATE {4+}\r\nWork")
        untagged, _ = r.ok("SELECT {4+}\r\nWork")
        self.assertIn(b"* 0 EXISTS", untagged)
        r.ok("UNSELECT")
        _, tagged = r.cmd("RENAME Work Work/Sub")
        self.assertEqual(status_of(tagged), "NO", "a folder cannot become its own child")
        r.ok("STATUS Work (MESSAGES)")
        r.ok("SELECT Work")
        untagged, _ = r.ok("SEARCH $")
        self.assertEqual(search_nums(untagged), [], "RFC 5182 2.1: $ with no saved result is empty")

    def test_utf8_accept_append_and_envelope(self):
        r = self.raw()
        r.ok("ENABLE UTF8=ACCEPT")
        data = "From: José <jose@remote.test>\r\nSubject: ¡Olé!\r\n\r\ncuerpo\r\n".encode()
        tag = r.tag()
        # RFC 6855 4: APPEND's UTF8 data extension with a literal8.
        r.send(f"{tag} APPEND INBOX UTF8 (~{{{len(data)}+}}\r\n".encode() + data + b")\r\n")
        _, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK", tagged)
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1 (ENVELOPE BODY.PEEK[])")[0])[1]
        self.assertEqual(f["BODY[]"], data)
        self.assertEqual(f["ENVELOPE"][1], "¡Olé!".encode(), "RFC 6855 3: raw UTF-8 in the envelope")
        self.assertEqual(search_nums(r.ok('SEARCH SUBJECT "olé"'.encode())[0]), [1], "UTF-8 in a quoted string")

    def test_idle_sees_an_expunge_by_another_session(self):
        for i in range(3):
            self.deliver(msg(f"m{i}"))
        r, other = self.raw(), self.raw()
        r.ok("SELECT INBOX")
        other.ok("SELECT INBOX")
        r.send("i1 IDLE\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        r.sock.settimeout(8)
        resp = r.response()
        while not resp.endswith(b"EXPUNGE"):
            resp = r.response()
        self.assertEqual(resp, b"* 2 EXPUNGE")
        r.send("DONE\r\n")
        _, tagged = r.until("i1")
        self.assertEqual(status_of(tagged), "OK")
        self.assertEqual(len(fetch_map(r.ok("FETCH 1:* UID")[0])), 2)


class EnableAndId(ImapCase):

    def test_enable(self):
        r = self.raw(user=None)
        _, tagged = r.cmd("ENABLE IMAP4rev2")
        self.assertIn(status_of(tagged), ("BAD", "NO"), "RFC 5161 3.1: ENABLE only when authenticated")
        r.login()
        untagged, _ = r.ok("ENABLE UTF8=ACCEPT X-UNKNOWN")
        self.assertEqual([u.upper() for u in untagged], [b"* ENABLED UTF8=ACCEPT"], "unknown names are ignored")
        untagged, _ = r.ok("ENABLE X-UNKNOWN")
        self.assertEqual([u.strip() for u in untagged], [b"* ENABLED"])
        r.ok("SELECT INBOX")
        _, tagged = r.cmd("ENABLE IMAP4rev2")
        self.assertIn(status_of(tagged), ("BAD", "NO"), "RFC 5161: not in the selected state")

    def test_id(self):
        r = self.raw(user=None)
        untagged, _ = r.ok('ID ("name" "buzon-test" "version" "1")')
        self.assertEqual(len(find(untagged, "* ID ")), 1, untagged)
        items = parse(find(untagged, "* ID ")[0][5:])
        self.assertTrue(items[0] is None or len(items[0]) % 2 == 0, items)
        untagged, _ = r.ok("ID NIL")
        self.assertEqual(len(find(untagged, "* ID ")), 1)
        m = self.imap()
        typ, _ = m.xatom("ID", '("name" "imaplib")')
        self.assertEqual(typ, "OK")


class Condstore(ImapCase):
    """RFC 7162 CONDSTORE on Maildir: mod-sequences that grow with every change, kept across a
    restart, with CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ and STATUS HIGHESTMODSEQ."""

    def modseqs(self, untagged):
        return {n: int(v["MODSEQ"][0]) for n, v in fetch_map(untagged).items() if "MODSEQ" in v}

    def test_mod_sequences_end_to_end(self):
        for i in range(3):
            self.deliver(msg(f"m{i}"))
        a, b = self.raw(), self.raw()
        untagged, _ = a.ok("ENABLE CONDSTORE")
        self.assertIn(b"* ENABLED CONDSTORE", untagged)
        untagged, _ = a.ok("SELECT INBOX")
        h = [int(m.group(1)) for u in untagged if (m := re.search(rb"\[HIGHESTMODSEQ (\d+)\]", u))]
        self.assertEqual(len(h), 1, untagged)
        h = h[0]
        first = self.modseqs(a.ok("FETCH 1:* (MODSEQ)")[0])
        self.assertEqual(sorted(first), [1, 2, 3])
        self.assertTrue(all(0 < m <= h for m in first.values()), (first, h))
        # A change: a greater mod-sequence, told with the new flags.
        f = self.modseqs(a.ok("STORE 2 +FLAGS (\\Seen)")[0])
        self.assertGreater(f[2], h)
        m2 = f[2]
        # CHANGEDSINCE gives only what changed, with MODSEQ though not asked.
        untagged, _ = a.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {h})")
        self.assertEqual(self.modseqs(untagged), {2: m2})
        # Another session's silent STORE still tells its MODSEQ; the first session hears of the
        # change with its MODSEQ.
        b.ok("SELECT INBOX (CONDSTORE)")
        untagged, _ = b.ok("STORE 3 +FLAGS.SILENT (\\Flagged)")
        m3 = self.modseqs(untagged)[3]
        self.assertGreater(m3, m2)
        self.assertNotIn(b"FLAGS", b"".join(untagged))
        untagged, _ = a.ok("NOOP")
        self.assertEqual(self.modseqs(untagged), {3: m3})
        self.assertIn("\\Flagged", flagset(fetch_map(untagged)[3]["FLAGS"]))
        # UNCHANGEDSINCE: message 3 changed after m2 and is left alone; 1 is changed.
        untagged, tagged = a.cmd(f"STORE 1,3 (UNCHANGEDSINCE {m2}) +FLAGS (\\Answered)")
        self.assertIn(b"OK [MODIFIED 3]", tagged)
        f = fetch_map(untagged)
        self.assertEqual(sorted(f), [1])
        self.assertNotIn("\\Answered", flagset(fetch_map(a.ok("FETCH 3 FLAGS")[0])[3]["FLAGS"]))
        untagged, tagged = a.cmd("UID STORE 1:* (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Deleted)")
        self.assertIn(b"OK [MODIFIED 1:3]", tagged)
        # SEARCH MODSEQ: what changed since, and the highest of them.
        untagged, _ = a.ok(f"SEARCH MODSEQ {m2}")
        line = find(untagged, "* SEARCH")[0]
        top = max(self.modseqs(a.ok("FETCH 1:* (MODSEQ)")[0]).values())
        self.assertEqual(line, f"* SEARCH 1 2 3 (MODSEQ {top})".encode())
        untagged, _ = a.ok(f"UID SEARCH RETURN (COUNT) MODSEQ {top}")
        self.assertRegex(find(untagged, "* ESEARCH")[0], rb"COUNT 1 MODSEQ %d$" % top)
        # STATUS agrees (on the selected mailbox it tells the session's view, so after a NOOP);
        # and it all outlives a restart.
        b.ok("NOOP")
        untagged, _ = b.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
        self.assertIn(f"HIGHESTMODSEQ {top}".encode(), b"".join(untagged))
        untagged, _ = self.raw().ok("STATUS INBOX (HIGHESTMODSEQ)")
        self.assertIn(f"HIGHESTMODSEQ {top}".encode(), b"".join(untagged))
        self.restart_server()
        c = self.raw()
        untagged, _ = c.ok("SELECT INBOX (CONDSTORE)")
        self.assertIn(f"[HIGHESTMODSEQ {top}]".encode(), b"".join(untagged))
        self.assertEqual(max(self.modseqs(c.ok("FETCH 1:* MODSEQ")[0]).values()), top)
        # A flag changed by another program (a rename in cur/) is found and given a new one.
        cur = os.path.join(self.server.maildir("alice"), "cur")
        name = sorted(os.listdir(cur))[0]
        os.rename(os.path.join(cur, name), os.path.join(cur, name.split(":2,")[0] + ":2,D"))
        untagged, _ = c.ok("NOOP")
        self.assertGreater(max(self.modseqs(untagged).values()), top)

    def test_qresync_vanished_and_resync(self):
        # RFC 7162 3.2: after ENABLE QRESYNC expunges are told as VANISHED; a client back with its
        # UIDVALIDITY and last HIGHESTMODSEQ learns at SELECT what vanished and what changed.
        for i in range(4):
            self.deliver(msg(f"q{i}"))
        a, b = self.raw(), self.raw()
        _, tagged = a.cmd("SELECT INBOX (QRESYNC (1 1))")
        self.assertIn(b"BAD", tagged, "QRESYNC not enabled yet")
        untagged, _ = a.ok("ENABLE QRESYNC")
        self.assertIn(b"* ENABLED QRESYNC", untagged)
        untagged, _ = a.ok("SELECT INBOX")
        text = b"".join(untagged)
        uv = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
        h = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
        b.ok("SELECT INBOX")
        b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        b.ok("EXPUNGE")
        b.ok("UID STORE 3 +FLAGS.SILENT (\\Flagged)")
        untagged, _ = a.ok("NOOP")
        self.assertIn(b"* VANISHED 2", untagged)
        self.assertEqual(find(untagged, "* 2 EXPUNGE"), [])
        self.assertIn(b"MODSEQ", b"".join(find(untagged, "* 2 FETCH")), untagged)
        # Its own EXPUNGE is told the same way.
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = a.ok("EXPUNGE")
        self.assertEqual(untagged[-1], b"* VANISHED 1")
        # A client that knew UIDs 1:4 at mod-sequence h.
        c = self.raw()
        c.ok("ENABLE QRESYNC")
        untagged, _ = c.ok(f"SELECT INBOX (QRESYNC ({uv} {h} 1:4))")
        self.assertIn(b"* VANISHED (EARLIER) 1:2", untagged)
        f = fetch_map(untagged)
        self.assertEqual([int(v["UID"]) for v in f.values()], [3])
        self.assertIn("\\Flagged", flagset(f[1]["FLAGS"]))
        # UID FETCH with CHANGEDSINCE and VANISHED says the same.
        untagged, _ = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h} VANISHED)")
        self.assertEqual(untagged[0], b"* VANISHED (EARLIER) 1:2")
        self.assertEqual([int(v["UID"]) for v in fetch_map(untagged).values()], [3])
        # Another UIDVALIDITY: a plain SELECT, nothing of the kind.
        untagged, _ = c.ok(f"SELECT INBOX (QRESYNC ({uv + 1} {h}))")
        self.assertEqual(find(untagged, "* VANISHED"), [])


class MboxNoModseq(ImapCase):
    mailbox = "mbox:{tmp}/spool/%n"
    extra = "imap.folders = {tmp}/folders/%d/%n\n"

    def test_nomodseq(self):
        self.deliver(msg("one"))
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX (CONDSTORE)")
        self.assertIn(b"[NOMODSEQ]", b"".join(untagged))
        _, tagged = r.cmd("FETCH 1 FLAGS (CHANGEDSINCE 1)")
        self.assertIn(b"BAD", tagged)
        r.ok("FETCH 1 (FLAGS)")
        # The Maildir folders beside it keep them.
        untagged, _ = r.ok("SELECT Sent (CONDSTORE)")
        self.assertIn(b"[HIGHESTMODSEQ", b"".join(untagged))


class IdleAndConcurrency(ImapCase):

    def test_a_selected_mailbox_deleted_by_another_session_ends_with_bye(self):
        a, b = self.raw(), self.raw()
        a.ok("CREATE Doomed")
        a.ok("SELECT Doomed")
        b.ok("DELETE Doomed")
        a.send("n1 NOOP\r\n")
        self.assertEqual(a.response(), b"* BYE Mailbox was deleted")
        with self.assertRaises((EOFError, ConnectionError, OSError)):
            a.response()
        b.ok("NOOP")  # the other session goes on

    def test_idle_sees_a_delivery_and_an_append(self):
        self.deliver(msg("first"))
        r = self.raw()
        r.ok("SELECT INBOX")
        r.send("i1 IDLE\r\n")
        self.assertTrue(r.response().startswith(b"+ "), "RFC 2177: a continuation")
        start = time.time()
        self.deliver(msg("second"))
        r.sock.settimeout(8)
        resp = r.response()
        while not resp.endswith(b"EXISTS"):
            resp = r.response()
        self.assertEqual(resp, b"* 2 EXISTS")
        self.assertLess(time.time() - start, 8)
        other = self.raw(user=BOB)  # another user's mail is no concern of this session
        self.append(other, "INBOX", msg("for bob"))
        same = self.raw()
        self.append(same, "INBOX", msg("third"))
        resp = r.response()
        while not resp.endswith(b"EXISTS"):
            resp = r.response()
        self.assertEqual(resp, b"* 3 EXISTS")
        same.ok("SELECT INBOX")
        same.ok("STORE 1 +FLAGS (\\Flagged)")
        resp = r.response()
        while b"FETCH" not in resp:
            resp = r.response()
        self.assertIn("\\Flagged", flagset(fetch_map([resp])[1]["FLAGS"]))
        r.send("DONE\r\n")
        _, tagged = r.until("i1")
        self.assertEqual(status_of(tagged), "OK")
        r.ok("NOOP")

    def test_idle_with_imaplib_style_done_and_bad_continuation(self):
        r = self.raw()
        r.ok("SELECT INBOX")
        r.send("i1 IDLE\r\n")
        r.response()
        r.send("NOTDONE\r\n")
        _, tagged = r.until("i1")
        self.assertEqual(status_of(tagged), "BAD", "RFC 2177: anything but DONE ends IDLE with BAD")
        r.ok("NOOP")

    def test_concurrent_sessions_see_expunges_and_new_mail(self):
        for i in range(3):
            self.deliver(msg(f"m{i}"))
        a, b = self.raw(), self.raw()
        a.ok("SELECT INBOX")
        b.ok("SELECT INBOX")
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = a.ok("EXPUNGE")
        self.assertEqual(find(untagged, "* "), find(untagged, "* 2 EXPUNGE") + find(untagged, "* 2 RECENT"))
        self.assertEqual(expunged(untagged, 3), [2])
        untagged, _ = b.ok("NOOP")
        self.assertIn(b"* 2 EXPUNGE", untagged, "RFC 3501 7.4.1: the other session is told")
        self.deliver(msg("late"))
        untagged, _ = b.ok("NOOP")
        self.assertIn(b"* 3 EXISTS", untagged)
        a.ok("STORE 1 +FLAGS (\\Answered)")
        untagged, _ = b.ok("NOOP")
        f = fetch_map(untagged)
        self.assertIn(1, f, untagged)
        self.assertIn("\\Answered", flagset(f[1]["FLAGS"]))
        # B's view is consistent: FETCH 3 is the late message.
        f = fetch_map(b.ok("FETCH 3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")[0])
        self.assertEqual(f[3]["BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: late\r\n\r\n")
        # An expunge by A during B's FETCH is not announced to B with a FETCH/STORE/SEARCH response
        # (RFC 3501 7.4.1); the message numbers stay stable for B until a NOOP.
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        untagged, tagged = b.cmd("FETCH 1:3 (UID)")
        self.assertEqual(find(untagged, "* 1 EXPUNGE"), [], untagged)
        untagged, _ = b.ok("NOOP")
        self.assertIn(b"* 1 EXPUNGE", untagged)
        untagged, _ = b.ok("FETCH 1:* (UID)")
        self.assertEqual(sorted(fetch_map(untagged)), [1, 2])

    def test_a_message_expunged_by_another_session_is_still_served_until_announced(self):
        # RFC 2180 4.1.1 (what Dovecot does): B has not been told of A's expunge, so a FETCH
        # of it still gives the message, and a STORE on it succeeds as a no-op (4.2.1).
        self.deliver(msg("kept"))
        self.deliver(msg("doomed", body=b"the doomed text\r\n"))
        a, b = self.raw(), self.raw()
        a.ok("SELECT INBOX")
        b.ok("SELECT INBOX")
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        untagged, tagged = b.ok("FETCH 2 (FLAGS BODY[TEXT])")
        self.assertEqual(fetch_map(untagged)[2]["BODY[TEXT]"], b"the doomed text\r\n", untagged)
        self.assertEqual(find(untagged, "* 2 EXPUNGE"), [])
        untagged, tagged = b.ok("STORE 1:2 +FLAGS (\\Flagged)")
        self.assertIn(b"OK", tagged)
        untagged, _ = b.ok("UID FETCH 1:* (FLAGS)")
        self.assertIn(b"* 2 EXPUNGE", untagged, "a UID command may announce it")
        untagged, _ = b.ok("FETCH 1:* (FLAGS)")
        f = fetch_map(untagged)
        self.assertEqual(sorted(f), [1])
        self.assertIn("\\Flagged", flagset(f[1]["FLAGS"]))
        # The file waits in tmp/ (which every Maildir reader passes over), not in cur/ or new/.
        held = os.listdir(os.path.join(self.server.maildir("alice"), "tmp"))
        self.assertEqual(len(held), 1, held)
        self.assertTrue(held[0].endswith(":expunged"), held)

    def test_six_sessions_on_one_mailbox_never_fail_a_command(self):
        # Selecting, fetching, storing, expunging and appending at once (bench/imap_concurrent.py,
        # 6 sessions for 6 s): every command gets OK, none NO [EXPUNGEISSUED].
        for i in range(20):
            self.deliver(msg(f"seed {i}"))
        import subprocess
        import sys
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "bench", "imap_concurrent.py")
        r = subprocess.run([sys.executable, script, "--port", str(self.imap_port), "--user", ALICE[0],
                            "--password", ALICE[1], "--clients", "6", "--seconds", "6", "--label", "test"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.server.read_log()[-3000:])
        self.assertIn("FIGURE imapconc.test.failures 0", r.stdout)
        commands = int(re.search(r"imapconc.test.commands (\d+)", r.stdout).group(1))
        self.assertGreater(commands, 100, r.stdout)

    def test_parallel_appends_and_deliveries_get_distinct_uids(self):
        import threading
        errors = []

        def appender(k):
            try:
                r = RawImap(self.imap_port)
                r.login()
                for i in range(25):
                    tag = r.tag()
                    data = msg(f"p{k}-{i}")
                    r.send(f"{tag} APPEND INBOX {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
                    _, tagged = r.until(tag)
                    if status_of(tagged) != "OK":
                        errors.append(tagged)
                r.close()
            except Exception as e:  # reported below
                errors.append(repr(e))

        def deliverer():
            try:
                for i in range(10):
                    self.deliver(msg(f"smtp-{i}"))
            except Exception as e:
                errors.append(repr(e))

        watcher = self.raw()
        watcher.ok("SELECT INBOX")
        threads = [threading.Thread(target=appender, args=(k,)) for k in range(4)]
        threads.append(threading.Thread(target=deliverer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        untagged, _ = watcher.ok("NOOP")
        self.assertIn(b"* 110 EXISTS", untagged)
        f = fetch_map(watcher.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0])
        uids = [int(f[n]["UID"]) for n in sorted(f)]
        self.assertEqual(len(set(uids)), 110)
        self.assertEqual(uids, sorted(uids), "sequence order is UID order")
        subjects = {f[n]["BODY[HEADER.FIELDS (SUBJECT)]"].strip() for n in f}
        self.assertEqual(len(subjects), 110, "no message lost or doubled")

    def test_uids_follow_delivery_order(self):
        # Maildir names start with the delivery time, seconds then M + microseconds, written
        # without leading zeros (as Dovecot, Postfix and buzon write them): 99999 comes before
        # 100000 in the same second. New files get UIDs in delivery order (RFC 3501 2.3.1.1:
        # each message added gets a higher UID than those added before it), as Dovecot does.
        new = os.path.join(self.server.maildir("alice"), "new")
        os.makedirs(new)
        for sub in ("cur", "tmp"):
            os.makedirs(os.path.join(self.server.maildir("alice"), sub))
        names = ["1700000000.M99999P7Q1.other", "1700000000.M100000P7Q2.other",
                 "1700000001.M5P7Q3.other", "1700000001.M10P7Q10.other", "1700000010.M1P7Q11.other"]
        for i, name in enumerate(names):
            with open(os.path.join(new, name), "wb") as fh:
                fh.write(msg(f"d{i}"))
        r = self.raw()
        r.ok("SELECT INBOX")
        f = fetch_map(r.ok("FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]")[0])
        got = [f[n]["BODY[HEADER.FIELDS (SUBJECT)]"].strip().decode()[9:] for n in sorted(f)]
        self.assertEqual(got, ["d0", "d1", "d2", "d3", "d4"])

    def test_uids_survive_a_restart(self):
        for i in range(3):
            self.deliver(msg(f"m{i}"))
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX")
        uv = re.search(rb"\[UIDVALIDITY (\d+)\]", b"\n".join(untagged)).group(1)
        r.ok("STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)")
        r.ok("STORE 3 +FLAGS.SILENT ($Kept)")
        r.ok("EXPUNGE")
        before = {int(v["UID"]): flagset(v["FLAGS"]) - {"\\Recent"}
                  for v in fetch_map(r.ok("FETCH 1:* (UID FLAGS)")[0]).values()}
        r.ok("LOGOUT")
        r.close()
        self.restart_server()
        self.deliver(msg("after"))
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"[UIDVALIDITY " + uv + b"]", b"\n".join(untagged), "UIDVALIDITY kept")
        after = {int(v["UID"]): flagset(v["FLAGS"]) - {"\\Recent"}
                 for v in fetch_map(r.ok("FETCH 1:* (UID FLAGS)")[0]).values()}
        self.assertEqual({k: after[k] for k in before}, before, "UIDs and flags kept")
        self.assertEqual(len(after), 3)
        self.assertGreater(max(after), 3, "the expunged UID 2 is not reused; the new one is above 3")


class BadInput(ImapCase):

    def test_garbage_gets_bad_and_the_session_goes_on(self):
        # A few errors per connection: the server ends a session after too many (see below).
        r = self.raw()
        for line in (b"a1 FROBNICATE", b"a2 SELECT", b"a3 LOGIN", b"a4 SELECT INBOX extra junk",
                     b"a5 FETCH", b'a6 LIST "" "*" (', b"a7 STATUS INBOX MESSAGES", b"a8 \x01\x02"):
            with self.subTest(line=line):
                r.send(line + b"\r\n")
                _, tagged = r.until(line.split(b" ")[0])
                self.assertEqual(status_of(tagged), "BAD", tagged)
        r.ok("NOOP")
        r = self.raw()
        for line in (b"", b"+ something", b"* NOOP", b"a(b NOOP", b"  "):
            r.send(line + b"\r\n")
            untagged, _ = r.ok("NOOP")
            self.assertTrue(all(u.startswith(b"* BAD") for u in untagged), (line, untagged))
        r = self.raw()
        r.ok("SELECT INBOX")
        for line in (b"b1 FETCH 0 FLAGS", b"b2 FETCH 1 (BODY[)", b"b3 FETCH 1:* NOTANITEM",
                     b"b4 STORE 1 FLAGS", b"b5 FETCH a:b FLAGS", b"b6 UID NOOP"):
            with self.subTest(line=line):
                r.send(line + b"\r\n")
                _, tagged = r.until(line.split(b" ")[0])
                self.assertEqual(status_of(tagged), "BAD", tagged)
        r.ok("NOOP")

    def test_too_many_errors_end_the_session(self):
        r = self.raw()
        with self.assertRaises((EOFError, ConnectionResetError)):
            for i in range(100):
                untagged, tagged = r.cmd("FROBNICATE")
                self.assertEqual(status_of(tagged), "BAD")
        self.assertTrue(untagged == [] and i >= 3, (i, untagged))
        self.raw().ok("NOOP")

    def test_overlong_line_and_huge_literal(self):
        r = self.raw()
        # A huge synchronizing literal is refused before the client sends it.
        r.send("h1 APPEND INBOX {4000000000}\r\n")
        resp = r.response()
        self.assertFalse(resp.startswith(b"+"), "no continuation for a 4 GB literal")
        self.assertRegex(resp, rb"^h1 (NO|BAD)\b")
        r.ok("NOOP")
        r.send("h2 APPEND INBOX {99999999999999999999}\r\n")
        self.assertRegex(r.response(), rb"^h2 (BAD|NO)\b", "a literal size beyond 32 bits")
        r.ok("NOOP")
        # A line far beyond any limit: BAD (or BYE and close), never a hang or a crash.
        try:
            r.send(b"l1 NOOP " + b"x" * (2 * 1024 * 1024) + b"\r\n")
            resp = r.response()
            self.assertRegex(resp, rb"^(l1 BAD|\* BAD|\* BYE)")
        except (ConnectionResetError, BrokenPipeError, EOFError):
            pass
        self.raw().ok("NOOP")  # the server still serves

    def test_names_that_are_not_modified_utf7_name_nothing(self):
        """More invalid names than imap.max_errors allows BADs: each SELECT, STATUS or CREATE gets
        NO, each LIST an empty OK, and the session goes on."""
        r = self.raw()
        for i in range(15):
            name = ['"&Jjo"', '"a&"', '"&AGE"'][i % 3]
            _, tagged = r.cmd(["SELECT", "STATUS", "CREATE"][i % 3] + f" {name}" + (" (MESSAGES)" if i % 3 == 1 else ""))
            self.assertEqual(status_of(tagged), "NO", tagged)
            untagged, tagged = r.cmd(f'LIST "" {name}')
            self.assertEqual((untagged, status_of(tagged)), ([], "OK"))
        r.ok("SELECT INBOX")

    def test_long_command_lines_up_to_64k_and_a_tagged_bad_beyond(self):
        """buzon(8) promises 64 KiB command lines (RFC 7162 4 asks at least 8,192): a 31,807-octet
        ID completes; a longer line is read to its end and answered with a tagged BAD, so the
        client is never left waiting, and the session goes on in step."""
        r = self.raw()
        tag = r.tag()
        r.send(f'{tag} ID ("name" "'.encode() + b"x" * 31790 + b'")\r\n')
        untagged, tagged = r.until(tag)
        self.assertEqual(status_of(tagged), "OK", tagged)
        self.assertTrue(untagged and untagged[0].startswith(b"* ID ("), untagged)
        r.send(b'long1 ID ("name" "' + b"y" * 70000 + b'")\r\nlong2 NOOP\r\n')
        _, tagged = r.until("long1")
        self.assertEqual(status_of(tagged), "BAD", tagged)
        self.assertIn(b"too long", tagged)
        _, tagged = r.until("long2")
        self.assertEqual(status_of(tagged), "OK", "the next command, pipelined behind, is in step")

    def test_no_big_literal_before_login(self):
        # Before authentication only small literals (a user name, a password) are taken.
        r = self.raw(user=None)
        r.send("p1 APPEND INBOX {5000000}\r\n")
        resp = r.response()
        self.assertFalse(resp.startswith(b"+"), "no continuation for 5 MB before LOGIN")
        self.assertRegex(resp, rb"^p1 (NO|BAD)\b")
        r.send("p2 LOGIN {10000000}\r\n")
        resp = r.response()
        self.assertFalse(resp.startswith(b"+"), "no continuation for a 10 MB user name")
        r.login()
        r.send("p3 LOGIN {10000000}\r\n")
        self.assertFalse(r.response().startswith(b"+"))

    def test_pipelined_commands_are_answered_in_order(self):
        self.deliver(msg("one"))
        r = self.raw()
        r.send(b"a1 NOOP\r\na2 SELECT INBOX\r\na3 FETCH 1 (FLAGS)\r\na4 STORE 1 +FLAGS (\\Seen)\r\n"
               b"a5 SEARCH SEEN\r\na6 LOGOUT\r\n")
        for tag in ("a1", "a2", "a3", "a4"):
            self.assertEqual(status_of(r.until(tag)[1]), "OK", tag)
        untagged, tagged = r.until("a5")
        self.assertEqual(search_nums(untagged), [1])
        untagged, tagged = r.until("a6")
        self.assertTrue(find(untagged, "* BYE"))

    def test_path_traversal_names_are_refused(self):
        r = self.raw()
        for name in ("../x", "/etc", "Work/../../x", "..", "a//b", "INBOX/../x", "x\\y/.."):
            with self.subTest(name=name):
                _, tagged = r.cmd(f'CREATE "{name}"')
                self.assertIn(status_of(tagged), ("NO", "BAD"), tagged)
                _, tagged = r.cmd(f'SELECT "{name}"')
                self.assertIn(status_of(tagged), ("NO", "BAD"), tagged)
                _, tagged = r.cmd(f'RENAME INBOX "{name}"')
                self.assertIn(status_of(tagged), ("NO", "BAD"), tagged)
        for name in ("/etc", "../../../../../../etc"):
            _, tagged = r.cmd(f'STATUS "{name}" (MESSAGES)')
            self.assertIn(status_of(tagged), ("NO", "BAD"), tagged)
        _, tagged = r.cmd('LIST "/" "*"')
        self.assertEqual(status_of(tagged), "OK")
        # Nothing was created outside the user's Maildir.
        tmp = self.server.tmp
        made = []
        for root, dirs, files in os.walk(tmp):
            for d in dirs:
                p = os.path.join(root, d)
                if "x" == d or d.endswith("..") or d == "etc":
                    made.append(p)
        self.assertEqual(made, [])
        self.assertFalse(os.path.exists(os.path.join(tmp, "mail", "example.test", "alice", "x")))


class MboxInbox(ImapCase):
    mailbox = "mbox:{tmp}/spool/%n"
    extra = "imap.folders = {tmp}/folders/%d/%n\n"

    def test_an_appended_message_is_recent_once(self):
        self.deliver(msg("delivered"))
        r = self.raw()
        r.ok("SELECT INBOX")
        r.ok("UNSELECT")
        self.append(r, "INBOX", msg("appended"), flags="\\Seen")
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"* 1 RECENT", untagged)
        # An mbox keeps the claim (Status: O) when the session leaves the mailbox.
        r.ok("CLOSE")
        other = self.raw()
        untagged, _ = other.ok("SELECT INBOX")
        self.assertIn(b"* 0 RECENT", untagged)

    def test_read_flags_and_expunge_persist(self):
        body = b"Subject: from line\r\n\r\nFrom the start of a line\r\n>From quoted\r\nend\r\n"
        self.deliver(body)
        self.deliver(msg("second"))
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"* 2 EXISTS", untagged)
        uv = re.search(rb"\[UIDVALIDITY (\d+)\]", b"\n".join(untagged)).group(1)
        f = fetch_map(r.ok("FETCH 1:2 (UID RFC822.SIZE BODY[])")[0])
        self.assertTrue(f[1]["BODY[]"].endswith(body), "mboxrd quoting is undone: " + repr(f[1]["BODY[]"][-80:]))
        for v in f.values():
            self.assertEqual(int(v["RFC822.SIZE"]), len(v["BODY[]"]))
        uids = {n: v["UID"] for n, v in f.items()}
        r.ok("STORE 2 +FLAGS.SILENT ($Later)")
        r.ok("LOGOUT")
        r.close()
        r = self.raw()
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"[UIDVALIDITY " + uv + b"]", b"\n".join(untagged))
        f = fetch_map(r.ok("FETCH 1:2 (UID FLAGS)")[0])
        self.assertEqual({n: v["UID"] for n, v in f.items()}, uids, "UIDs are stable across sessions")
        self.assertIn("\\Seen", flagset(f[1]["FLAGS"]), "\\Seen survives a reconnect")
        self.assertIn("$Later", flagset(f[2]["FLAGS"]))
        self.deliver(msg("third"))
        untagged, _ = r.ok("NOOP")
        self.assertIn(b"* 3 EXISTS", untagged)
        r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(r.ok("EXPUNGE")[0], [b"* 1 EXPUNGE"])
        r.ok("LOGOUT")
        with open(os.path.join(self.server.tmp, "spool", "alice"), "rb") as fh:
            spool = fh.read()
        self.assertNotIn(b"Subject: from line", spool)
        self.assertIn(b"Subject: second", spool)
        self.assertIn(b"Subject: third", spool)
        r = self.raw(tls=True)
        untagged, _ = r.ok("SELECT INBOX")
        self.assertIn(b"* 2 EXISTS", untagged)
        f = fetch_map(r.ok("FETCH 1:2 (UID FLAGS)")[0])
        self.assertEqual(f[1]["UID"], uids[2])
        self.assertIn("$Later", flagset(f[1]["FLAGS"]))


if __name__ == "__main__":
    unittest.main()
