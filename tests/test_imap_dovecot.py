"""buzon's IMAP message rendering proven against Dovecot's, the reference implementation.

One Maildir is built from the shared message corpus (../shared/corpus/eml: nested multiparts,
message/rfc822, attachments, 8-bit, broken MIME, odd headers, groups, encoded words); a private
Dovecot and buzon each serve their own copy of it, and for every message the test compares
ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[HEADER], BODY[TEXT], BODY[1], BODY[1.MIME], the
deepest part and its MIME header, BODY[HEADER.FIELDS (From Subject)] and BINARY.SIZE[1], and then
SEARCH results over the whole folder for a set of keys.

Only what RFC 3501 leaves free is normalised: the case of the media type, subtype, encoding and
parameter names in BODY/BODYSTRUCTURE, quoted versus literal strings, and the order of FETCH items.
Everything else must be equal, or be listed in ALLOWED below with the reason it is acceptable.

Dovecot runs from its own config in a temp dir (no system instance is used or touched); the test
fails when it is not installed (Debian: dovecot-imapd; .ci/run installs it). With BUZON_DOVECOT_DIFF=<file> every
difference is also appended to that file, and the parts and SEARCH hit counts are printed.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Server, free_port, requires

HERE = os.path.dirname(os.path.abspath(__file__))
# The shared message corpus, read in place (it is not copied into the project): beside the checkout
# (../shared), where BUZON_CORPUS says, or the machine's shared folder, as tests/test_corpus.py.
_CANDIDATES = [os.environ.get("BUZON_CORPUS", ""),
               os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "corpus", "eml"),
               "/work/shared/corpus/eml"]
CORPUS = next((c for c in _CANDIDATES if c and os.path.isdir(c)), _CANDIDATES[1])
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
USER, PASSWORD = "alice@example.test", "secret-alice"

# The accepted differences: (message file, item) -> (Dovecot's answer exactly as the comparison
# sees it, why buzon's differs). When Dovecot's answer changes the entry no longer applies and the
# test fails, so every entry stays checked.
PARSE_NO = (None, b"NO [PARSE]")
LENIENT = ("Dovecot answers NO [PARSE] 'Invalid data in MIME part' when any encoded part of the "
           "message (not necessarily the one asked for) fails its strict base64/quoted-printable "
           "decoder; buzon decodes leniently as RFC 2045 6.7 and 6.8 advise, and answers. RFC 3516 "
           "asks for NO only for an unknown encoding ([UNKNOWN-CTE]), where both agree.")
INVALID_CT = ("Content-Type 'multipart/mixed' folded into its parameters without ';' does not parse. "
              "Dovecot then writes empty type and subtype strings (\"\" \"\"); buzon uses the RFC 2045 5.2 "
              "default text/plain; charset=us-ascii recommended for an invalid Content-Type, which "
              "clients can show.")
ALLOWED = {
    ("malformed/017.eml", "BODY"): ([b"", b"", None, None, None, b"7bit", "197"], INVALID_CT),
    ("malformed/017.eml", "BODYSTRUCTURE"):
        ([b"", b"", None, None, None, b"7bit", "197", None, None, None, None], INVALID_CT),
    ("malformed/018.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("rfc/000.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("thirdparty/002.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("thirdparty/016.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("thirdparty/017.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("thirdparty/018.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
    ("thirdparty/019.eml", "BINARY.SIZE[1]"): (PARSE_NO, LENIENT),
}

# SEARCH keys compared over the whole folder (bytes: sent as is; a tuple: the part after the
# command, then a literal).
SEARCH_KEYS = [
    b"SUBJECT multipart",
    b"SUBJECT \"Map of Argentina\"",
    b"SUBJECT sprint",
    b"FROM example",
    b"FROM \"Nathaniel\"",
    b"TO example.com",
    b"TO \"Ned Freed\"",
    b"CC example",
    b"BODY hello",
    b"BODY \"Proxmox\"",
    b"BODY attachment",
    b"TEXT hello",
    b"TEXT \"Content-Type\"",
    b"TEXT boundary",
    b"HEADER Content-Type multipart",
    b"HEADER X-Mailer \"\"",
    b"HEADER Message-ID example",
    b"HEADER MIME-Version 1.0",
    b"LARGER 2000",
    b"SMALLER 500",
    b"LARGER 1000 SMALLER 3000",
    b"SENTBEFORE 1-Jan-2000",
    b"SENTSINCE 1-Jan-2020",
    b"SENTON 19-Aug-2022",
    b"SENTSINCE 30-Dec-2017 SENTBEFORE 31-Dec-2017",
    b"NOT SUBJECT multipart",
    b"NOT BODY hello",
    b"OR SUBJECT sprint FROM nathaniel",
    b"OR LARGER 5000 HEADER Content-Type digest",
    b"NOT OR BODY hello SUBJECT hello",
    (b"CHARSET UTF-8 SUBJECT", "こんにちは".encode()),
    (b"CHARSET UTF-8 BODY", "höhö".encode()),  # quoted-printable UTF-8
    (b"CHARSET UTF-8 BODY", "päivää".encode()),  # quoted-printable
    (b"CHARSET UTF-8 BODY", "Einschätzugen".encode()),  # 8bit UTF-8
    (b"CHARSET UTF-8 TEXT", "♛".encode()),  # 8bit UTF-8
    (b"CHARSET UTF-8 BODY", "人権".encode()),  # raw UTF-8 in a part without a charset
    (b"CHARSET UTF-8 TEXT", "áóúäöüß".encode()),
]


class Imap:
    """A raw IMAP client: every response kept as the bytes the server sent, literals inline."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def read(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """One whole response: a line plus the literals it announces."""
        out = self.line()
        while True:
            m = re.search(rb"~?\{(\d+)\}\r\n$", out)
            if not m:
                return out
            out += self.read(int(m.group(1)))
            out += self.line()

    def command(self, text, literal=None):
        """Sends `tag text` (then a synchronising literal); returns (untagged, tagged status line)."""
        self.n += 1
        tag = b"t%d" % self.n
        if literal is not None:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            cont = self.response()
            if not cont.startswith(b"+"):
                return [], cont
            self.sock.sendall(literal + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)

    def ok(self, text, literal=None):
        untagged, status = self.command(text, literal)
        if not status.startswith(b"OK"):
            raise AssertionError(f"{text!r}: {status!r}")
        return untagged

    def close(self):
        try:
            self.command(b"LOGOUT")
        except OSError:
            pass
        self.sock.close()


class Atom(str):
    """An IMAP atom (NIL excepted), kept apart from strings."""


def parse(data, i=0, until=None):
    """Parses IMAP data into Python values: lists, Atom, bytes (quoted or literal), None (NIL).
    Returns (values, index)."""
    out = []
    n = len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\r", b"\n"):
            i += 1
        elif c == b"(":
            v, i = parse(data, i + 1, b")")
            out.append(v)
        elif c == b")":
            if until == b")":
                return out, i + 1
            i += 1
        elif c == b'"':
            j, s = i + 1, bytearray()
            while j < n and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                s += data[j:j + 1]
                j += 1
            out.append(bytes(s))
            i = j + 1
        elif c in (b"{", b"~") and re.match(rb"~?\{(\d+)\}\r\n", data[i:]):
            m = re.match(rb"~?\{(\d+)\}\r\n", data[i:])
            start = i + m.end()
            out.append(data[start:start + int(m.group(1))])
            i = start + int(m.group(1))
        else:
            j, depth = i, 0
            while j < n:
                ch = data[j:j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b"(", b")", b"\r"):
                    break
                j += 1
            word = data[i:j].decode("latin-1")
            out.append(None if word.upper() == "NIL" else Atom(word))
            i = j
    return out, i


def fetch_items(untagged):
    """The items of the `* n FETCH (...)` responses, as {name: value}."""
    items = {}
    for r in untagged:
        vals, _ = parse(r)
        if len(vals) >= 4 and vals[0] == "*" and str(vals[2]).upper() == "FETCH":
            lst = vals[3]
            for k in range(0, len(lst) - 1, 2):
                items[str(lst[k]).upper()] = lst[k + 1]
    return items


def lower(v):
    return v.lower() if isinstance(v, bytes) else v


def norm_params(p):
    # RFC 2045 5.1: parameter names are case-insensitive; values are not.
    if not isinstance(p, list):
        return p
    return [lower(x) if k % 2 == 0 else x for k, x in enumerate(p)]


def norm_body(b):
    """BODY/BODYSTRUCTURE with the case of type, subtype, encoding and parameter names folded
    (RFC 2045: case-insensitive; RFC 3501 does not fix how a server writes them)."""
    if not isinstance(b, list) or not b:
        return b
    if isinstance(b[0], list):
        k = 0
        while k < len(b) and isinstance(b[k], list):
            k += 1
        out = [norm_body(x) for x in b[:k]]
        rest = list(b[k:])
        if rest:
            rest[0] = lower(rest[0])
        if len(rest) > 1:
            rest[1] = norm_params(rest[1])
        if len(rest) > 2:
            rest[2] = norm_dsp(rest[2])
        return out + rest
    out = list(b)
    for k in (0, 1, 5):
        if k < len(out):
            out[k] = lower(out[k])
    if len(out) > 2:
        out[2] = norm_params(out[2])
    tail = 7
    if out[:2] == [b"message", b"rfc822"] and len(out) > 9:
        out[8] = norm_body(out[8])
        tail = 10
    elif out[:1] == [b"text"]:
        tail = 8
    # body-ext-1part: md5, then disposition.
    if len(out) > tail + 1:
        out[tail + 1] = norm_dsp(out[tail + 1])
    return out


def norm_dsp(d):
    # RFC 2183: the disposition type and parameter names are case-insensitive.
    if isinstance(d, list) and len(d) == 2:
        return [lower(d[0]), norm_params(d[1])]
    return d


def deepest(b, path=()):
    """The part number of the deepest part in a BODYSTRUCTURE (message/rfc822 parts descended)."""
    best = path or (1,)
    if not isinstance(b, list) or not b:
        return best
    if isinstance(b[0], list):
        # The parts are the leading lists; the subtype and extension data follow.
        k = 0
        while k < len(b) and isinstance(b[k], list):
            p = deepest(b[k], path + (k + 1,))
            k += 1
            if len(p) > len(best):
                best = p
        return best
    if lower(b[0]) == b"message" and lower(b[1]) == b"rfc822" and len(b) > 8 and isinstance(b[8], list):
        # A top-level message/rfc822 is part 1 itself; the message in it is numbered below.
        inner, base = b[8], path or (1,)
        p = deepest(inner, base) if inner and isinstance(inner[0], list) else base + (1,)
        if len(p) > len(best):
            best = p
    return best


def maildir_from_corpus(dest):
    names = []
    for sub in sorted(os.listdir(CORPUS)):
        d = os.path.join(CORPUS, sub)
        if os.path.isdir(d):
            names += [os.path.join(sub, f) for f in sorted(os.listdir(d)) if f.endswith(".eml")]
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dest, s))
    for k, name in enumerate(names):
        # Seen, in cur/, one second apart: both servers give UIDs in this order.
        base = f"{1700000000 + k}.M{k}P1.corpus:2,S"
        path = os.path.join(dest, "cur", base)
        shutil.copyfile(os.path.join(CORPUS, name), path)
        os.utime(path, (1700000000 + k, 1700000000 + k))
    return names


class Dovecot:
    """A private Dovecot: its own config, passwd-file, base_dir and logs in a temp dir."""

    def __init__(self, tmp, maildir):
        self.tmp, self.port = tmp, free_port()
        me = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            # Dovecot refuses to run its login processes as root: the package's own users.
            # The auth process then reads the passwd-file in our private (0700) temp dir as root.
            login, internal, group = "dovenull", "dovecot", "dovecot"
            auth_user = "service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}\n"
            # Nor will it give mail access as root: its mail, index and home go to nobody.
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            for d in ("index", "control", "home"):
                os.makedirs(os.path.join(tmp, d))
            for path in (maildir, os.path.join(tmp, "index"), os.path.join(tmp, "control"),
                         os.path.join(tmp, "home")):
                subprocess.run(["chown", "-R", f"{uid}:{gid}", path], check=True)
            for d in (tmp, os.path.dirname(tmp), os.path.dirname(maildir)):
                # Only our own directories: a shared one like /tmp (sticky) keeps its mode.
                if not os.stat(d).st_mode & 0o1000:
                    os.chmod(d, 0o711)
        else:
            login, internal, group = me, me, grp.getgrgid(os.getgid()).gr_name
            auth_user = ""
            uid, gid = os.getuid(), os.getgid()
        with open(os.path.join(tmp, "passwd"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}:::::\n")
        self.config = os.path.join(tmp, "dovecot.conf")
        with open(self.config, "w") as f:
            f.write(f"""# generated by tests/test_imap_dovecot.py
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
instance_name = buzon-test-{self.port}
log_path = {tmp}/dovecot.log
info_log_path = {tmp}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {group}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{maildir}:INDEX={tmp}/index:CONTROL={tmp}/control
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/passwd
}}
userdb {{
  driver = static
  args = home={tmp}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
{auth_user}""")
        for d in ("run", "state", "home", "index", "control"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        with open(os.path.join(tmp, "dovecot.err"), "w") as err:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.config], stdout=subprocess.DEVNULL,
                                         stderr=err)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening:\n" + self.log())

    def log(self):
        out = ""
        for name in ("dovecot.err", "dovecot.log"):
            p = os.path.join(self.tmp, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read()
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@requires(DOVECOT, "dovecot (package dovecot-imapd)")
@unittest.skipUnless(os.path.isdir(CORPUS), f"no corpus at {CORPUS}")
class AgainstDovecot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="buzon-dovecot-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        master = os.path.join(cls.tmp, "master")
        cls.names = maildir_from_corpus(master)
        # Each server gets its own copy: both write index/uidlist files and rename on flag changes.
        dmail, bmail = os.path.join(cls.tmp, "dovecot-mail"), os.path.join(cls.tmp, "buzon-mail")
        subprocess.run(["cp", "-a", master, dmail], check=True)
        subprocess.run(["cp", "-a", master, bmail], check=True)
        os.makedirs(os.path.join(cls.tmp, "dovecot"))
        cls.dovecot = Dovecot(os.path.join(cls.tmp, "dovecot"), dmail)
        cls.addClassCleanup(cls.dovecot.stop)
        port = free_port()
        cls.buzon = Server(mailbox="maildir:" + bmail,
                           extra=f"imap.listen = 127.0.0.1:{port}\nauth.cleartext_networks = 127.0.0.0/8\n")
        cls.addClassCleanup(cls.buzon.cleanup)
        cls.buzon.start()
        cls.clients = {}
        for who, p in (("dovecot", cls.dovecot.port), ("buzon", port)):
            c = Imap(p)
            cls.addClassCleanup(c.close)
            c.ok(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
            c.ok(b"SELECT INBOX")
            cls.clients[who] = c

    def both(self, text, literal=None):
        return {who: c.command(text, literal) for who, c in self.clients.items()}

    def report(self, diffs):
        lines = []
        for name, item, d, b in diffs:
            lines.append(f"{name} {item}:\n  dovecot: {d!r}\n  buzon:   {b!r}")
        text = "\n".join(lines)
        # BUZON_DOVECOT_DIFF=path: the whole report in a file too (the assertion message is long).
        if os.environ.get("BUZON_DOVECOT_DIFF"):
            with open(os.environ["BUZON_DOVECOT_DIFF"], "a") as f:
                f.write(text + "\n")
        return text

    def compare(self, diffs, name, item, d, b):
        if d == b:
            return
        allowed = ALLOWED.get((name, item))
        if allowed is not None and allowed[0] == d:
            return
        diffs.append((name, item, d, b))

    def test_fetch_matches_dovecot(self):
        n = len(self.names)
        for who, c in self.clients.items():
            status = [r for r in c.ok(b"STATUS INBOX (MESSAGES)")]
            self.assertIn(b"MESSAGES %d" % n, b"".join(status), who)
        diffs = []
        items = (b"ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] "
                 b"BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (From Subject)] BODY.PEEK[]")
        for seq, name in enumerate(self.names, 1):
            got = {}
            for who, (untagged, status) in self.both(b"FETCH %d (%s)" % (seq, items)).items():
                self.assertTrue(status.startswith(b"OK"), f"{who} {name}: {status!r}")
                got[who] = fetch_items(untagged)
            d, b = got["dovecot"], got["buzon"]
            for key in sorted(set(d) | set(b)):
                dv, bv = d.get(key), b.get(key)
                if key in ("BODYSTRUCTURE", "BODY"):
                    dv, bv = norm_body(dv), norm_body(bv)
                self.compare(diffs, name, key, dv, bv)
            # The deepest part, found in Dovecot's structure, and its MIME header.
            path = b".".join(b"%d" % k for k in deepest(d.get("BODYSTRUCTURE")))
            if os.environ.get("BUZON_DOVECOT_DIFF"):
                print(name, "deepest", path.decode())
            dd = self.both(b"FETCH %d (BODY.PEEK[%s] BODY.PEEK[%s.MIME])" % (seq, path, path))
            for suffix in (b"", b".MIME"):
                key = "BODY[%s%s]" % (path.decode(), suffix.decode())
                self.compare(diffs, name, "BODY[deepest%s]" % suffix.decode(),
                             (key, fetch_items(dd["dovecot"][0]).get(key), dd["dovecot"][1][:2]),
                             (key, fetch_items(dd["buzon"][0]).get(key), dd["buzon"][1][:2]))
            # BINARY.SIZE apart: an unknown encoding is a NO ([UNKNOWN-CTE]) for the whole FETCH.
            bs = self.both(b"FETCH %d (BINARY.SIZE[1])" % seq)
            status = {who: b" ".join(r[1].split(b" ")[:2 if r[1].startswith(b"NO [") else 1])
                      for who, r in bs.items()}
            self.compare(diffs, name, "BINARY.SIZE[1]",
                         (fetch_items(bs["dovecot"][0]).get("BINARY.SIZE[1]"), status["dovecot"]),
                         (fetch_items(bs["buzon"][0]).get("BINARY.SIZE[1]"), status["buzon"]))
        self.assertEqual(diffs, [], "differences from Dovecot:\n" + self.report(diffs))

    def test_search_matches_dovecot(self):
        diffs = []
        for key in SEARCH_KEYS:
            text, literal = (key if isinstance(key, tuple) else (key, None))
            got = {}
            for who, (untagged, status) in self.both(b"SEARCH " + text, literal).items():
                self.assertTrue(status.startswith(b"OK"), f"{who} SEARCH {text!r}: {status!r}")
                nums = set()
                for r in untagged:
                    if r.upper().startswith(b"* SEARCH"):
                        nums |= {int(x) for x in r[8:].split()}
                got[who] = sorted(nums)
            names = {who: [self.names[k - 1] for k in v] for who, v in got.items()}
            if os.environ.get("BUZON_DOVECOT_DIFF"):
                print("SEARCH", text, literal, len(got["dovecot"]))
            self.compare(diffs, "SEARCH", (text + (b" " + literal if literal else b"")).decode(),
                         names["dovecot"], names["buzon"])
        self.assertEqual(diffs, [], "differences from Dovecot:\n" + self.report(diffs))


if __name__ == "__main__":
    unittest.main()
