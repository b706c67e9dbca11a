"""A raw IMAP client for the integration tests (exact bytes in, exact responses out) and a
small parser for IMAP data (RFC 3501 9 / RFC 9051 9), used by tests/test_imap*.py."""

import calendar
import re
import socket
import ssl
import time

HOST = "127.0.0.1"
ALICE = ("alice@example.test", "secret-alice")


# ---------------------------------------------------------------------------------------------
# A raw IMAP client: exact bytes in, exact responses out, literals read in place.
# ---------------------------------------------------------------------------------------------

def tls_context():
    return ssl._create_unverified_context()


class RawImap:
    """Sends tagged commands and reads responses; a response keeps any literal it carries in
    place as `{n}\\r\\n` + n bytes, which `parse` understands."""

    def __init__(self, port, tls=False, timeout=10):
        sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock = tls_context().wrap_socket(sock) if tls else sock
        self.buf = b""
        self.n = 0
        self.greeting = self.response()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; buffered {self.buf[:300]!r}")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One response (line plus the literals it announces), without the final CRLF."""
        out = self._line()
        while True:
            m = re.search(rb"~?\{(\d+)\+?\}$", out)
            if not m:
                return out
            out += b"\r\n" + self._take(int(m.group(1)))
            out += self._line()

    def tag(self):
        self.n += 1
        return f"t{self.n}"

    def cmd(self, text, tag=None):
        """Sends `tag text`; returns (untagged responses, tagged response) as bytes."""
        tag = tag or self.tag()
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        untagged = []
        tag = tag.encode() if isinstance(tag, str) else tag
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r
            untagged.append(r)

    def ok(self, text):
        untagged, tagged = self.cmd(text)
        assert re.match(rb"t\d+ OK\b", tagged), (text, tagged, untagged)
        return untagged, tagged

    def login(self, user=ALICE):
        return self.ok(f'LOGIN "{user[0]}" "{user[1]}"')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def status_of(tagged):
    """b't3 OK [X] text' -> 'OK'."""
    return tagged.split(b" ", 2)[1].decode()


# ---------------------------------------------------------------------------------------------
# A small parser for IMAP data (RFC 3501 9): lists, quoted strings, literals, NIL, atoms
# (an atom may carry a [section] with spaces and a <partial>, as in BODY[HEADER.FIELDS (A B)]<0>).
# ---------------------------------------------------------------------------------------------

def parse(data):
    items, pos = _parse_list(data, 0, None)
    return items


def _parse_list(data, pos, close):
    out = []
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            sub, pos = _parse_list(data, pos + 1, b")")
            out.append(sub)
        elif c == b")":
            if close != b")":
                raise ValueError(f"unbalanced ) at {pos} in {data[:200]!r}")
            return out, pos + 1
        elif c == b'"':
            pos += 1
            s = bytearray()
            while data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                s += data[pos:pos + 1]
                pos += 1
                if pos >= n:
                    raise ValueError(f"unterminated string in {data[:200]!r}")
            out.append(bytes(s))
            pos += 1
        elif c == b"{" or data[pos:pos + 2] == b"~{":
            m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(data, pos)
            if not m:
                raise ValueError(f"bad literal at {pos} in {data[:200]!r}")
            size = int(m.group(1))
            out.append(data[m.end():m.end() + size])
            pos = m.end() + size
        else:
            start = pos
            depth = 0
            while pos < n:
                c = data[pos:pos + 1]
                if c == b"[":
                    depth += 1
                elif c == b"]":
                    depth -= 1
                elif depth == 0 and c in (b" ", b"(", b")"):
                    break
                pos += 1
            atom = data[start:pos]
            out.append(None if atom.upper() == b"NIL" else atom)
    if close is not None:
        raise ValueError(f"unterminated list in {data[:200]!r}")
    return out, pos


def fetch_map(untagged):
    """`* n FETCH (K V ...)` responses -> {n: {K (upper): V}} (several FETCH for one n are merged)."""
    out = {}
    for r in untagged:
        m = re.match(rb"\* (\d+) FETCH ", r, re.I)
        if not m:
            continue
        (items,) = parse(r[m.end():])
        d = out.setdefault(int(m.group(1)), {})
        for k, v in zip(items[0::2], items[1::2]):
            d[k.upper().decode()] = v
    return out


def flagset(v):
    return {f.decode() if f[:1] == b"\\" else f.decode() for f in v}


def find(untagged, prefix):
    """The untagged responses that start with `prefix` (case-insensitive)."""
    p = prefix.encode().upper() if isinstance(prefix, str) else prefix.upper()
    return [r for r in untagged if r.upper().startswith(p)]


def list_map(untagged):
    """`* LIST (attrs) "/" name [ext]` -> {name: set(attrs)} ."""
    out = {}
    for r in untagged:
        m = re.match(rb"\* (LIST|LSUB) ", r, re.I)
        if not m:
            continue
        items = parse(r[m.end():])
        out[items[2].decode()] = {a.decode().lower() for a in items[0]}
    return out


def search_nums(untagged):
    """`* SEARCH 1 2 3` -> [1, 2, 3] ."""
    lines = find(untagged, "* SEARCH")
    assert len(lines) == 1, untagged
    return [int(x) for x in lines[0].split()[2:]]


def esearch(untagged):
    """`* ESEARCH (TAG "x") [UID] K V ...` -> {K: V} (with 'UID': True when present)."""
    lines = find(untagged, "* ESEARCH")
    assert len(lines) == 1, untagged
    items = parse(lines[0][len(b"* ESEARCH"):])
    out = {}
    if items and isinstance(items[0], list):
        out["TAG"] = items[0][1].decode()
        items = items[1:]
    if items and items[0].upper() == b"UID":
        out["UID"] = True
        items = items[1:]
    for k, v in zip(items[0::2], items[1::2]):
        out[k.upper().decode()] = v.decode()
    return out


def expunged(untagged, count):
    """Applies the `* n EXPUNGE` responses, in order, to messages 1..count; returns the numbers
    (as they were before) that were expunged. Any order is valid if each number is right when sent."""
    left = list(range(1, count + 1))
    gone = []
    for u in untagged:
        m = re.match(rb"\* (\d+) EXPUNGE$", u)
        if m:
            gone.append(left.pop(int(m.group(1)) - 1))
    return sorted(gone)


def seqset(s):
    """'1:3,5' -> [1, 2, 3, 5]."""
    out = []
    for part in s.split(","):
        a, _, b = part.partition(":")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def status_map(untagged):
    """`* STATUS name (K V ...)` -> {name: {K: int}}."""
    out = {}
    for u in find(untagged, "* STATUS "):
        items = parse(u[9:])
        out[items[0].decode()] = {k.decode().upper(): int(v) for k, v in zip(items[1][0::2], items[1][1::2])}
    return out


def low(x):
    """Lower-cases every string in a parsed structure (for case-insensitive MIME names)."""
    if isinstance(x, list):
        return [low(i) for i in x]
    return x.lower() if isinstance(x, bytes) else x


def internaldate_epoch(v):
    return calendar.timegm(time.strptime(v.decode()[:20], "%d-%b-%Y %H:%M:%S")) - _zone(v.decode()[21:])


def _zone(z):
    sign = -1 if z[0] == "-" else 1
    return sign * (int(z[1:3]) * 3600 + int(z[3:5]) * 60)
