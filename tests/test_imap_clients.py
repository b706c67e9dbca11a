"""IMAP with real clients: mbsync (isync) syncing a folder tree both ways,
neomutt driven headless in a pseudo-terminal, getmail6 and offlineimap3 into
Maildirs, curl over STARTTLS and IMAPS. A test whose client is not installed
fails (.ci/run installs them all)."""

import hashlib
import os
import re
import shutil
import ssl
import subprocess
import unittest

from harness import requires
from test_imap import ALICE, SPECIAL, ImapCase, fetch_map, flagset, list_map, msg, status_map

HOST = "127.0.0.1"


def maildir_files(path):
    """{file name: bytes} of a Maildir's cur/ and new/."""
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out[name] = f.read()
    return out


def maildir_flags(name):
    return name.rsplit(":2,", 1)[1] if ":2," in name else ""


def make_maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


class ClientCase(ImapCase):

    def run_tool(self, argv, timeout=90, ok=(0,), env=None, **kw):
        r = subprocess.run(argv, capture_output=True, timeout=timeout, env=env or self.env(), **kw)
        self.assertIn(r.returncode, ok, f"{argv[0]} exited {r.returncode}:\n{r.stdout[-3000:]!r}\n"
                      f"{r.stderr[-3000:]!r}\nserver log:\n{self.server.read_log()[-3000:]}")
        return r

    def env(self):
        return {**os.environ, "HOME": self.server.tmp, "LC_ALL": "C.UTF-8"}

    def server_view(self, user=ALICE):
        """{folder: [(flags, body)]} of every folder, read over IMAP."""
        r = self.raw(user)
        out = {}
        for name, attrs in list_map(r.ok('LIST "" "*"')[0]).items():
            if "\\noselect" in attrs or "\\nonexistent" in attrs:
                continue
            untagged, _ = r.ok(f'EXAMINE "{name}"')
            if b"* 0 EXISTS" in untagged:
                out[name] = []
                continue
            f = fetch_map(r.ok("FETCH 1:* (FLAGS BODY.PEEK[])")[0])
            out[name] = [(flagset(f[n]["FLAGS"]) - {"\\Recent"}, f[n]["BODY[]"]) for n in sorted(f)]
        r.ok("LOGOUT")
        r.close()
        return out

    def cert(self):
        return os.path.join(self.server.tmp, "cert.pem")


@requires(shutil.which("mbsync"), "mbsync (package isync)")
class Mbsync(ClientCase):

    def write_rc(self, near, tls):
        rc = os.path.join(self.server.tmp, "mbsyncrc")
        if tls == "IMAPS":
            conn = f"Port {self.imaps_port}\nSSLType IMAPS\nCertificateFile {self.cert()}\n"
        elif tls == "STARTTLS":
            conn = f"Port {self.imap_port}\nSSLType STARTTLS\nCertificateFile {self.cert()}\n"
        else:
            conn = f"Port {self.imap_port}\nSSLType None\n"
        with open(rc, "w") as f:
            f.write(f"IMAPAccount buzon\nHost {HOST}\n{conn}User {ALICE[0]}\nPass {ALICE[1]}\n"
                    f"AuthMechs LOGIN PLAIN\nTimeout 20\n\n"
                    "IMAPStore remote\nAccount buzon\n\n"
                    f"MaildirStore local\nPath {near}/\nInbox {near}/INBOX\nSubFolders Verbatim\n\n"
                    "Channel buzon\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n"
                    "SyncState *\n")
        return rc

    def sync(self, rc):
        return self.run_tool(["mbsync", "-c", rc, "-a"])

    def test_sync_a_folder_tree_both_ways(self):
        for i, tls in enumerate(("IMAPS", "STARTTLS")):
            if i:  # a fresh server and fresh state for each round
                self.server.cleanup()
                self.start_server()
            with self.subTest(tls=tls):
                self.tree_both_ways(tls)

    def tree_both_ways(self, tls):
        self.deliver(msg("inbox one"))
        self.deliver(msg("inbox two"))
        near = os.path.join(self.server.tmp, "near")
        work, w2024 = os.path.join(near, "Work"), os.path.join(near, "Work", "2024")
        make_maildir(work)
        make_maildir(w2024)
        local_work = msg("local work", b"written locally\nwith LF line ends\n").replace(b"\r\n", b"\n")
        local_2024 = msg("local 2024", b"a year folder\n").replace(b"\r\n", b"\n")
        with open(os.path.join(work, "cur", "1700000001.1.near:2,S"), "wb") as f:
            f.write(local_work)
        with open(os.path.join(w2024, "new", "1700000002.2.near"), "wb") as f:
            f.write(local_2024)
        rc = self.write_rc(near, tls)
        self.sync(rc)

        # Both sides now hold the whole tree.
        inbox = maildir_files(os.path.join(near, "INBOX"))
        self.assertEqual(len(inbox), 2, inbox.keys())
        self.assertTrue(any(b"Subject: inbox one" in v for v in inbox.values()))
        for name in SPECIAL:
            self.assertTrue(os.path.isdir(os.path.join(near, name, "cur")), f"{name} created locally")
        view = self.server_view()
        self.assertIn("Work", view)
        self.assertIn("Work/2024", view)
        self.assertEqual(len(view["Work"]), 1)
        flags, body = view["Work"][0]
        # mbsync adds an X-TUID header to find the message again (it takes it off when fetching).
        self.assertEqual(re.sub(rb"X-TUID: \S+\r\n", b"", body), crlf(local_work), "uploaded whole, CRLF")
        self.assertEqual(flags, {"\\Seen"}, "the S flag became \\Seen")
        self.assertEqual(len(view["Work/2024"]), 1)
        self.assertEqual(view["Work/2024"][0][0], set())
        self.assertEqual(len(view["INBOX"]), 2)

        # Change both sides.
        m = self.imap()
        m.select("INBOX")
        m.store("1", "+FLAGS", "(\\Flagged)")
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.logout()
        self.deliver(msg("inbox three"))
        with open(os.path.join(work, "cur", "1700000003.3.near:2,"), "wb") as f:
            f.write(msg("second local work").replace(b"\r\n", b"\n"))
        (name,) = maildir_files(w2024)
        sub = "cur" if os.path.exists(os.path.join(w2024, "cur", name)) else "new"
        base, _, flags = name.partition(":2,")
        os.rename(os.path.join(w2024, sub, name),
                  os.path.join(w2024, "cur", base + ":2," + "".join(sorted(flags + "T"))))
        self.sync(rc)

        inbox = maildir_files(os.path.join(near, "INBOX"))
        subjects = {re.search(rb"Subject: ([^\r\n]*)", v).group(1): maildir_flags(k) for k, v in inbox.items()}
        self.assertEqual(set(subjects), {b"inbox one", b"inbox three"}, "the expunge reached the Maildir")
        self.assertIn("F", subjects[b"inbox one"], "\\Flagged reached the Maildir")
        view = self.server_view()
        self.assertEqual(sorted(re.search(rb"Subject: ([^\r\n]*)", b).group(1) for _, b in view["Work"]),
                         [b"local work", b"second local work"])
        self.assertEqual(view["Work/2024"], [], "the trashed message was expunged on the server")
        self.assertEqual(maildir_files(w2024), {})

        # A third run changes nothing.
        before = (maildir_files(os.path.join(near, "INBOX")), self.server_view())
        self.sync(rc)
        self.assertEqual((maildir_files(os.path.join(near, "INBOX")), self.server_view()), before)


@requires(shutil.which("neomutt") or shutil.which("mutt"), "neomutt (or mutt)")
@requires(shutil.which("script"), "script(1) (util-linux), which gives mutt a terminal,")
class Mutt(ClientCase):
    """mutt has no batch mode for reading: it runs in a pseudo-terminal made by script(1), and
    `push` feeds it the keys a user would type; what it reads is piped to files."""

    def mutt(self, url, keys, mailbox="INBOX"):
        prog = shutil.which("neomutt") or shutil.which("mutt")
        rc = os.path.join(self.server.tmp, "muttrc")
        certs = os.path.join(self.server.tmp, "mutt-certs")
        shutil.copy(self.cert(), certs)
        with open(rc, "w") as f:
            f.write(f'set imap_user="{ALICE[0]}"\nset imap_pass="{ALICE[1]}"\n'
                    f'set folder="{url}"\nset spoolfile="+{mailbox}"\nset certificate_file="{certs}"\n'
                    "set ssl_verify_host=no\nset ssl_starttls=yes\nset ssl_force_tls=yes\n"
                    "set imap_passive=yes\nset mail_check=0\nset timeout=1\nset confirmappend=no\n"
                    "set confirmcreate=no\nset quit=yes\nset delete=yes\nset move=no\nset wait_key=no\n"
                    "set pipe_split=yes\nset pipe_decode=no\nset sort=date-sent\nset mark_old=no\n"
                    "set header_cache=\"\"\nset message_cachedir=\"\"\nset record=\"\"\nset beep=no\n"
                    "set sleep_time=0\n")
        cmd = f"{prog} -n -F {rc} -e 'push \"{keys}\"'"
        env = {**self.env(), "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
        r = subprocess.run(["timeout", "60", "script", "-qfec", cmd, "/dev/null"], capture_output=True,
                           env=env, stdin=subprocess.DEVNULL, timeout=90)
        self.assertEqual(r.returncode, 0, f"{prog} exited {r.returncode}; screen:\n{r.stdout[-4000:]!r}\n"
                         f"server log:\n{self.server.read_log()[-3000:]}")
        return r.stdout

    def test_list_read_save_and_delete_over_imaps_and_starttls(self):
        self.deliver(msg("first for mutt", b"hello from the first\r\n"))
        self.deliver(msg("second for mutt", b"hello from the second\r\n"))
        out = os.path.join(self.server.tmp, "piped")
        # Tag every message, pipe them all (the listing), then pipe the first one (reading it).
        screen = self.mutt(f"imaps://{HOST}:{self.imaps_port}/",
                           f"<tag-pattern>~A<enter><tag-prefix><pipe-entry>cat >> {out}.all<enter>"
                           f"<first-entry><pipe-entry>cat > {out}.one<enter><quit>")
        with open(out + ".all", "rb") as f:
            everything = f.read()
        self.assertIn(b"Subject: first for mutt", everything)
        self.assertIn(b"Subject: second for mutt", everything)
        with open(out + ".one", "rb") as f:
            one = f.read()
        self.assertIn(b"hello from the first", one)
        self.assertIn(b"first for mutt", screen, "the index lists the messages")
        # Over STARTTLS: save the first message to Archive, delete the second, sync and quit.
        self.mutt(f"imap://{HOST}:{self.imap_port}/",
                  "<first-entry><save-message>=Archive<enter><last-entry><delete-message>"
                  "<sync-mailbox><quit>")
        view = self.server_view()
        self.assertEqual([re.search(rb"Subject: ([^\r\n]*)", b).group(1) for _, b in view["Archive"]],
                         [b"first for mutt"])
        self.assertEqual(view["INBOX"], [], "save-message deletes the original; delete + sync expunges")


@requires(shutil.which("getmail"), "getmail6")
class Getmail(ClientCase):

    def getmail(self, retriever, port, delete, name):
        dest = os.path.join(self.server.tmp, name) + "/"
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dest, sub), exist_ok=True)
            os.chmod(os.path.join(dest, sub), 0o777)
        # getmail will not deliver as root: as root, it writes as the user named here.
        os.chmod(self.server.tmp, 0o755)
        os.chmod(dest, 0o777)
        as_user = "user = nobody\n" if os.geteuid() == 0 else ""
        rcdir = os.path.join(self.server.tmp, "getmail-" + name)
        os.makedirs(rcdir, exist_ok=True)
        with open(os.path.join(rcdir, "getmailrc"), "w") as f:
            f.write(f"[retriever]\ntype = {retriever}\nserver = {HOST}\nport = {port}\n"
                    f"username = {ALICE[0]}\npassword = {ALICE[1]}\nmailboxes = (\"INBOX\", \"Work\")\n\n"
                    f"[destination]\ntype = Maildir\npath = {dest}\n{as_user}\n"
                    f"[options]\ndelete = {str(delete).lower()}\nread_all = false\n")
        r = self.run_tool(["getmail", "--getmaildir", rcdir, "--rcfile", "getmailrc"])
        return dest, r

    def test_simple_imap_and_imap_ssl_retrievers(self):
        self.deliver(msg("for getmail one"))
        self.deliver(msg("for getmail two"))
        m = self.imap()
        m.create("Work")
        m.append("Work", None, None, msg("in work"))
        dest, r = self.getmail("SimpleIMAPRetriever", self.imap_port, False, "plain")
        got = maildir_files(dest)
        self.assertEqual(len(got), 3, r.stdout)
        # Kept on the server; a second run fetches nothing new (it remembers the UIDs).
        self.getmail("SimpleIMAPRetriever", self.imap_port, False, "plain")
        self.assertEqual(len(maildir_files(dest)), 3)
        st = status_map(self.raw().ok("STATUS INBOX (MESSAGES)")[0])
        self.assertEqual(st["INBOX"]["MESSAGES"], 2)
        # Over IMAPS with delete: fetched, then expunged on the server.
        dest, r = self.getmail("SimpleIMAPSSLRetriever", self.imaps_port, True, "ssl")
        got = maildir_files(dest)
        self.assertEqual(len(got), 3, r.stdout)
        self.assertTrue(any(v.endswith(b"\n\nbody\n") or v.endswith(b"\r\n\r\nbody\r\n") for v in got.values()))
        r = self.raw()
        self.assertEqual(status_map(r.ok("STATUS INBOX (MESSAGES)")[0])["INBOX"]["MESSAGES"], 0)
        self.assertEqual(status_map(r.ok("STATUS Work (MESSAGES)")[0])["Work"]["MESSAGES"], 0)


@requires(shutil.which("offlineimap"), "offlineimap3")
class OfflineImap(ClientCase):

    def test_sync_both_ways(self):
        self.deliver(msg("for offlineimap"))
        m = self.imap()
        m.create("Work/2024")
        m.append("Work/2024", "(\\Flagged)", None, msg("deep"))
        local = os.path.join(self.server.tmp, "oi-mail")
        with open(self.cert(), "rb") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read().decode())
        fingerprint = hashlib.sha512(der).hexdigest()
        rc = os.path.join(self.server.tmp, "offlineimaprc")
        with open(rc, "w") as f:
            f.write(f"[general]\naccounts = buzon\nmetadata = {self.server.tmp}/oi-meta\nui = basic\n\n"
                    "[Account buzon]\nlocalrepository = local\nremoterepository = remote\n\n"
                    f"[Repository local]\ntype = Maildir\nlocalfolders = {local}\nsep = /\n\n"
                    f"[Repository remote]\ntype = IMAP\nremotehost = {HOST}\nremoteport = {self.imaps_port}\n"
                    f"ssl = yes\ncert_fingerprint = {fingerprint}\nremoteuser = {ALICE[0]}\n"
                    f"remotepass = {ALICE[1]}\n")
        self.run_tool(["offlineimap", "-c", rc, "-o", "-u", "basic"])
        inbox = maildir_files(os.path.join(local, "INBOX"))
        self.assertEqual(len(inbox), 1)
        self.assertIn(b"Subject: for offlineimap", list(inbox.values())[0])
        deep = maildir_files(os.path.join(local, "Work", "2024"))
        self.assertEqual(len(deep), 1)
        self.assertIn("F", maildir_flags(list(deep)[0]))
        # A local change goes up: a new message and a flag.
        with open(os.path.join(local, "Work", "2024", "new", "1700000009.9.local"), "wb") as f:
            f.write(msg("written locally").replace(b"\r\n", b"\n"))
        (name,) = inbox
        os.rename(os.path.join(local, "INBOX", "cur" if os.path.exists(os.path.join(local, "INBOX", "cur", name))
                               else "new", name),
                  os.path.join(local, "INBOX", "cur", name.partition(":2,")[0] + ":2,S"))
        self.run_tool(["offlineimap", "-c", rc, "-o", "-u", "basic"])
        view = self.server_view()
        self.assertEqual(len(view["Work/2024"]), 2)
        self.assertIn("\\Seen", view["INBOX"][0][0])


@requires(shutil.which("curl"), "curl")
class Curl(ClientCase):

    def curl(self, *args):
        return self.run_tool(["curl", "-s", "-S", "--max-time", "20", "-u", f"{ALICE[0]}:{ALICE[1]}", *args],
                             timeout=30).stdout

    def test_fetch_list_search_and_append(self):
        body = msg("for curl", b"curl reads this\r\n")
        self.deliver(body)
        self.deliver(msg("another"))
        got = self.curl("--ssl-reqd", "-k", f"imap://{HOST}:{self.imap_port}/INBOX;UID=1")
        self.assertTrue(got.endswith(body), got)
        got = self.curl("-k", f"imaps://{HOST}:{self.imaps_port}/INBOX;UID=2;SECTION=HEADER.FIELDS%20(SUBJECT)")
        self.assertEqual(got.strip(), b"Subject: another")
        got = self.curl("-k", f"imaps://{HOST}:{self.imaps_port}/")
        self.assertIn(b'"INBOX"', got.replace(b" INBOX", b' "INBOX"'))
        self.assertRegex(got, rb"\\Sent")
        got = self.curl("-k", f"imaps://{HOST}:{self.imaps_port}/INBOX?SUBJECT%20curl")
        self.assertEqual(got.strip(), b"* SEARCH 1")
        got = self.curl("-k", f"imaps://{HOST}:{self.imaps_port}/", "-X", "STATUS INBOX (MESSAGES UNSEEN)")
        self.assertRegex(got, rb'\* STATUS "?INBOX"? \(MESSAGES 2 UNSEEN 0\)', "curl fetches with BODY[], which sets \\Seen")
        # Upload: curl APPENDs the file.
        path = os.path.join(self.server.tmp, "upload.eml")
        with open(path, "wb") as f:
            f.write(msg("uploaded by curl"))
        self.curl("-k", "-T", path, f"imaps://{HOST}:{self.imaps_port}/Drafts")
        view = self.server_view()
        self.assertEqual(len(view["Drafts"]), 1)
        self.assertIn(b"Subject: uploaded by curl", view["Drafts"][0][1])
        # A wrong password fails (curl exit 67: login denied).
        r = subprocess.run(["curl", "-s", "-k", "--max-time", "20", "-u", "alice@example.test:nope",
                            f"imaps://{HOST}:{self.imaps_port}/INBOX;UID=1"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 67, r.stderr)


if __name__ == "__main__":
    unittest.main()
