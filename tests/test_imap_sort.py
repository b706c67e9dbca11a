"""IMAP SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267) with Python's
imaplib against the real server, on a Maildir of messages with crafted dates (time zones, a
missing and an invalid Date), subjects (Re:, [list] blobs, (fwd), [Fwd: ...], encoded words) and
references (chains, a missing parent, a loop, a duplicate Message-ID): exact orders are asserted.

When Debian's dovecot-imapd is installed, a private Dovecot (tests/test_imap_dovecot.py) serves a
copy of the same Maildir, and every SORT and THREAD answer must be the same as Dovecot's, also on
the shared message corpus when it is there.
"""

import imaplib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import Server, free_port
from test_imap_dovecot import CORPUS, DOVECOT, PASSWORD, USER, Dovecot, maildir_from_corpus

T0 = 946_684_800  # 1 Jan 2000 00:00:00 UTC: INTERNALDATEs are T0 + k days, in delivery order

# (headers, body); every message gets a body so the sizes differ.
MESSAGES = [
    ("From: Carol <carol@example.org>\nTo: bob@example.org\nSubject: Lunch plans\n"
     "Date: Mon, 3 Jan 2000 10:00:00 +0000\nMessage-ID: <a1@example.org>\n", "first\n"),
    ("From: alice@example.org\nTo: Zed <zed@example.org>\nSubject: Re: Lunch plans\n"
     "Date: Mon, 3 Jan 2000 12:00:00 +0200\nMessage-ID: <a2@example.org>\nReferences: <a1@example.org>\n",
     "a reply with the same UTC time as the first\n"),
    ("From: Bob <bob@example.org>\nCc: dave@example.org\nSubject: [team] Report\n"
     "Date: Sun, 2 Jan 2000 09:00:00 -0500\nMessage-ID: <r1@example.org>\n", "r\n"),
    ("From: dave@example.org\nTo: Amy <amy@example.org>\nSubject: RE: lunch plans\n"
     "Date: Tue, 4 Jan 2000 08:00:00 +0000\nMessage-ID: <a3@example.org>\nIn-Reply-To: <a1@example.org>\n",
     "in-reply-to only\n"),
    ("From: erin@example.org\nSubject: Fwd: report\nMessage-ID: <f1@example.org>\n",
     "no Date: field, so INTERNALDATE\n"),
    ("From: Frank <frank@example.org>\nSubject: cycle\nDate: Wed, 5 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <c1@example.org>\nReferences: <c2@example.org>\n", "loop 1\n"),
    ("From: Gina <gina@example.org>\nSubject: Re: cycle\nDate: Thu, 6 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <c2@example.org>\nReferences: <c1@example.org>\n", "loop 2\n"),
    ("From: hal@example.org\nSubject: first dup\nDate: Fri, 7 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <dup@example.org>\n", "dup one\n"),
    ("From: ivy@example.org\nSubject: second dup\nDate: Sat, 8 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <dup@example.org>\n", "dup two, a longer body\n"),
    ("From: jon@example.org\nSubject: Re: orphan\nDate: Sun, 9 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <o1@example.org>\nReferences: <missing@example.org>\n", "o1\n"),
    ("From: kim@example.org\nSubject: Re: orphan\nDate: Mon, 10 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <o2@example.org>\nReferences: <missing@example.org>\n", "o2\n"),
    ("From: =?utf-8?q?=C3=81lvaro?= <alvaro@example.org>\nTo: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>\n"
     "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= (fwd)\nDate: 11 Jan 2000 00:30 +0100\n"
     "Message-ID: <e1@example.org>\n", "encoded words\n"),
    ("From: Lou <lou@example.org>\nSubject: [Fwd: Lunch plans]\nDate: yesterday\n", "no id, bad date\n"),
    ("From: mia@example.org\nSubject:\nDate: Wed, 12 Jan 2000 00:00:00 +0000\n"
     "Message-ID: <s1@example.org>\n", "empty subject\n"),
    ("From: ned@example.org\nTo: bob@example.org\nSubject: Re: Lunch plans\n"
     "Date: Mon, 3 Jan 2000 11:00:00 +0000\nMessage-ID: <s2@example.org>\n"
     "References: <a1@example.org> <a2@example.org>\n", "under a2\n"),
]

# (command arguments, buzon's expected answer): checked exactly, and against Dovecot.
SORTS = [
    ("(DATE) UTF-8 ALL", "3 1 2 15 4 5 6 7 8 9 10 11 12 14 13"),
    ("(REVERSE DATE) UTF-8 ALL", "13 14 12 11 10 9 8 7 5 6 4 15 1 2 3"),
    ("(ARRIVAL) UTF-8 ALL", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"),
    ("(REVERSE ARRIVAL) UTF-8 ALL", "15 14 13 12 11 10 9 8 7 6 5 4 3 2 1"),
    ("(SUBJECT) UTF-8 ALL", "14 6 7 8 12 1 2 4 13 15 10 11 3 5 9"),
    ("(SUBJECT DATE) UTF-8 ALL", "14 6 7 8 12 1 2 15 4 13 10 11 3 5 9"),
    ("(FROM) UTF-8 ALL", "2 12 3 1 4 5 6 7 8 9 10 11 13 14 15"),
    ("(TO) UTF-8 ALL", "3 5 6 7 8 9 10 11 13 14 4 1 15 2 12"),
    ("(CC DATE) UTF-8 ALL", None),
    ("(SIZE) UTF-8 ALL", None),
    ("(REVERSE SIZE SUBJECT) UTF-8 ALL", None),
    ("(DISPLAYFROM) UTF-8 ALL", None),
    ("(DISPLAYTO REVERSE DATE) UTF-8 ALL", None),
    ("(DATE) UTF-8 SUBJECT lunch", "1 2 15 4 13"),
    ("(REVERSE DATE) US-ASCII OR FROM carol FROM dave", "4 1"),
    ("(DATE) UTF-8 SUBJECT nothing-matches", ""),
]

# Answers of Dovecot that buzon's may differ from, with the reason: (command) -> (Dovecot's answer
# exactly, why). When Dovecot's answer changes the entry no longer applies and the test fails.
UNICODE_CASEMAP = ("Dovecot compares names by RFC 5051 i;unicode-casemap (titlecase and NFKD, so an "
                   "accented capital sorts with its base letter); buzon uses the RFC 4790 "
                   "i;ascii-casemap comparator, which orders octets above 0x7F after all ASCII.")
ALLOWED = {
    "UID SORT (DISPLAYFROM) UTF-8 ALL": ("2 12 3 1 4 5 6 7 8 9 10 11 13 14 15", UNICODE_CASEMAP),
}
THREADS = [
    ("REFERENCES UTF-8 ALL", "(3 5)(1 (2 15)(4)(13))(7 6)(8)(9)((10)(11))(12)(14)"),
    ("ORDEREDSUBJECT UTF-8 ALL", None),
    ("REFERENCES UTF-8 NOT SUBJECT lunch", None),
    ("REFERENCES UTF-8 SINCE 9-Jan-2000", None),
]


def write_maildir(dest):
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dest, s))
    for k, (head, body) in enumerate(MESSAGES):
        t = T0 + k * 86400
        path = os.path.join(dest, "cur", f"{t}.M{k}P1.sorttest:2,S")
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + "\n" + body)
        os.utime(path, (t, t))


def answer(data):
    """The numbers or thread lists of an imaplib SORT/THREAD answer, as one string."""
    return b" ".join(d for d in data if d is not None).decode().strip()


class SortThread(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="buzon-sort-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.mail = os.path.join(cls.tmp, "mail")
        write_maildir(cls.mail)
        port = free_port()
        cls.server = Server(mailbox="maildir:" + cls.mail,
                            extra=f"imap.listen = 127.0.0.1:{port}\nauth.cleartext_networks = 127.0.0.0/8\n")
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.port = port

    def setUp(self):
        self.imap = imaplib.IMAP4("127.0.0.1", self.port)
        self.addCleanup(self.imap.logout)
        self.imap.login("alice@example.test", "secret-alice")
        typ, _ = self.imap.select("INBOX")
        self.assertEqual(typ, "OK")

    def test_capabilities(self):
        caps = self.imap.capabilities
        for c in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"):
            self.assertIn(c, caps)

    def test_sort_orders(self):
        for args, want in SORTS:
            if want is None:
                continue
            crit, rest = args.split(") ", 1)
            charset, search = rest.split(" ", 1)
            crit += ")"
            typ, data = self.imap.sort(crit, charset, search)
            self.assertEqual(typ, "OK", args)
            self.assertEqual(answer(data), want, args)

    def test_imaplib_forms_and_uids(self):
        typ, data = self.imap.sort("DATE", "UTF-8", "ALL")
        self.assertEqual((typ, answer(data)), ("OK", SORTS[0][1]))
        # UIDs are 1..15 here too, in the same order.
        typ, data = self.imap.uid("SORT", "(DATE)", "UTF-8", "ALL")
        self.assertEqual((typ, answer(data)), ("OK", SORTS[0][1]))
        typ, data = self.imap.uid("SORT", "(DATE)", "UTF-8", "UID", "100:200")
        self.assertEqual((typ, answer(data)), ("OK", ""))
        typ, data = self.imap.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual((typ, answer(data)), ("OK", THREADS[0][1]))
        typ, data = self.imap.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
        self.assertEqual((typ, answer(data)), ("OK", THREADS[0][1]))
        typ, data = self.imap.thread("ORDEREDSUBJECT", "UTF-8", "FROM", "example.org")
        self.assertEqual(typ, "OK")
        self.assertEqual(sorted(int(n) for n in answer(data).replace("(", " ").replace(")", " ").split()),
                         list(range(1, 16)))

    def test_refusals(self):
        # RFC 5256 3: NO [BADCHARSET] (imaplib returns a NO; only a BAD raises).
        typ, data = self.imap.sort("(DATE)", "KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET (UTF-8 US-ASCII)]", data[0])
        typ, data = self.imap.thread("REFERENCES", "ISO-8859-5", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"BADCHARSET", data[0])
        with self.assertRaisesRegex(imaplib.IMAP4.error, "unknown sort key"):
            self.imap.sort("(WHEN)", "UTF-8", "ALL")
        with self.assertRaisesRegex(imaplib.IMAP4.error, "unknown threading algorithm"):
            self.imap.thread("REFS", "UTF-8", "ALL")
        # The session goes on.
        self.assertEqual(self.imap.noop()[0], "OK")

    def test_second_run_reads_nothing(self):
        # The keys are cached by UID: the same answer again (timed by bench/imap_sort.py).
        first = [answer(self.imap.sort("DATE", "UTF-8", "ALL")[1]) for _ in range(3)]
        self.assertEqual(first, [SORTS[0][1]] * 3)


@unittest.skipUnless(DOVECOT, "dovecot (package dovecot-imapd) is not installed")
class AgainstDovecot(unittest.TestCase):
    """Every SORT and THREAD of the lists above, and over the message corpus, answered as Dovecot."""

    def serve(self, maildir_of):
        tmp = tempfile.mkdtemp(prefix="buzon-sortdove-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        master = os.path.join(tmp, "master")
        maildir_of(master)
        dmail, bmail = os.path.join(tmp, "dovecot-mail"), os.path.join(tmp, "buzon-mail")
        subprocess.run(["cp", "-a", master, dmail], check=True)
        subprocess.run(["cp", "-a", master, bmail], check=True)
        os.makedirs(os.path.join(tmp, "dovecot"))
        dovecot = Dovecot(os.path.join(tmp, "dovecot"), dmail)
        self.addCleanup(dovecot.stop)
        port = free_port()
        buzon = Server(mailbox="maildir:" + bmail,
                       extra=f"imap.listen = 127.0.0.1:{port}\nauth.cleartext_networks = 127.0.0.0/8\n")
        self.addCleanup(buzon.cleanup)
        buzon.start()
        clients = {}
        for who, p in (("dovecot", dovecot.port), ("buzon", port)):
            c = imaplib.IMAP4("127.0.0.1", p)
            self.addCleanup(c.logout)
            c.login(USER, PASSWORD)
            c.select("INBOX")
            clients[who] = c
        return clients

    def compare(self, clients, commands):
        diffs = []
        for kind, args in commands:
            got = {}
            for who, c in clients.items():
                if kind == "ESORT":
                    # RFC 5267: the answer is an ESEARCH response; its TAG differs per client.
                    typ, _ = c.uid("SORT", *args.split(" ", 3))
                    esearch = c.untagged_responses.pop("ESEARCH", [b""])
                    got[who] = (typ, re.sub(rb"^\(TAG \S+\) ?", b"", esearch[-1]).decode())
                    continue
                typ, data = c.uid(kind, *args.split(" ", 2))
                got[who] = (typ, answer(data))
            allowed = ALLOWED.get(f"UID {kind} {args}")
            if got["dovecot"] != got["buzon"] and not (allowed and got["dovecot"] == ("OK", allowed[0])):
                diffs.append(f"UID {kind} {args}:\n  dovecot: {got['dovecot']}\n  buzon:   {got['buzon']}")
        return diffs

    def test_crafted_messages(self):
        clients = self.serve(write_maildir)
        commands = [("SORT", a) for a, _ in SORTS] + [("THREAD", a) for a, _ in THREADS]
        commands += [("ESORT", "RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL"),
                     ("ESORT", "RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL"),
                     ("ESORT", "RETURN (MIN COUNT) (FROM) UTF-8 SUBJECT lunch"),
                     ("ESORT", "RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing-matches")]
        diffs = self.compare(clients, commands)
        self.assertEqual(diffs, [], "\n".join(diffs))

    @unittest.skipUnless(os.path.isdir(CORPUS), f"no corpus at {CORPUS}")
    def test_corpus(self):
        clients = self.serve(maildir_from_corpus)
        commands = [("SORT", f"({c}) UTF-8 ALL") for c in
                    ("DATE", "ARRIVAL", "SUBJECT", "FROM", "TO", "CC", "SIZE", "DISPLAYFROM", "DISPLAYTO",
                     "REVERSE DATE", "SUBJECT REVERSE DATE")]
        commands += [("THREAD", "REFERENCES UTF-8 ALL"), ("THREAD", "ORDEREDSUBJECT UTF-8 ALL")]
        diffs = self.compare(clients, commands)
        self.assertEqual(diffs, [], "\n".join(diffs))


if __name__ == "__main__":
    unittest.main()
