#!/usr/bin/env python3
"""Build the IMAP bench mailbox: a Maildir of N realistic messages (stdlib only).

  imap_mkmaildir.py DIR [--count 5000] [--seed 1] [--subject-word invoice]
                        [--body-needle quokka-4711]

Deterministic for a given seed: the same bytes, names and flags every time.
Messages are built with Python's email package, stored with LF line ends in
DIR/cur/ under the names buzon's own delivery writes
("<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<CRLF size>", see src/store/maildir.rs) plus
":2,<flags>" (about 70 % \\Seen, some \\Answered and \\Flagged).  Sizes are
spread around 4 KiB (1.5-9 KiB): 70 % text/plain 7bit, 10 % text/plain
quoted-printable UTF-8, 12 % multipart/alternative (text + HTML), 8 %
multipart/mixed with a small base64 attachment.  Senders, subjects and
dates vary; some display names and subjects are RFC 2047 encoded words.

The search targets are placed so that their hit counts do not depend on
whether a server decodes MIME or not: --subject-word only ever appears in
plain ASCII subjects, --body-needle only in 7bit text parts (never in a
header, never split by a QP soft break, and it cannot occur inside base64).

Prints (and writes to DIR/../imap-manifest.json) a JSON manifest: count,
total size with CRLF line ends (what RFC822.SIZE and BODY[] must add up to),
an order-independent SHA-256 of all CRLF messages, and the expected hits.
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import sys
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

FIRST = ["Ana", "Bruno", "Carmen", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kai", "Lucia", "Marek", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tomas",
         "Ulla", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe"]
LAST = ["Alvarez", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova",
        "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Olsen", "Petrov", "Quinn", "Rossi",
        "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zhang"]
# Non-ASCII display names: the email package writes them as encoded words.
INTL = ["José María Núñez", "Zoë Öberg", "Łukasz Żółw", "Ærin Sørensen", "Renée Françoise"]
DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com", "lists.example.org",
           "corp.example.net", "uni.example.edu"]
LISTS = ["dev", "announce", "users", "ops", "security"]
# Subject vocabulary: the search word is added on purpose only.
WORDS = ["meeting", "notes", "quarterly", "budget", "release", "schedule", "update", "review",
         "draft", "proposal", "backup", "server", "migration", "lunch", "holiday", "travel",
         "contract", "feedback", "question", "patch", "status", "report", "minutes", "plan",
         "agenda", "build", "ticket", "deploy", "workshop", "newsletter"]
INTL_SUBJECTS = ["Café am Freitag?", "Überraschung für das Team", "Réunion de l'équipe",
                 "Año nuevo, planes nuevos", "Smörgåsbord nästa vecka"]
TEXT = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
        "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
        "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
        "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
        "officia deserunt mollit anim id est laborum the server will be down for maintenance on "
        "tuesday please review the attached figures before our call and send comments").split()
UTEXT = "über café naïve façade smörgåsbord año déjà vu jalapeño crème brûlée".split()


def para(rng, nbytes, words=TEXT):
    """Wrapped text of about nbytes (72-column lines)."""
    out, line, size, width = [], [], 0, 0
    while size < nbytes:
        w = rng.choice(words)
        if width + len(w) > 72:
            out.append(" ".join(line))
            line, width = [], 0
        line.append(w)
        width += len(w) + 1
        size += len(w) + 1
    if line:
        out.append(" ".join(line))
    return "\n".join(out) + "\n"


def body_text(rng, nbytes, needle):
    paras = []
    left = nbytes
    while left > 0:
        n = min(left, rng.randint(200, 900))
        paras.append(para(rng, n))
        left -= n
    if needle:
        i = rng.randrange(len(paras))
        paras[i] = paras[i] + f"reference {needle} in this paragraph\n"
    sig = "\n-- \nsent from a benchmark\n"
    return "\n".join(paras) + sig


def address(rng, i):
    if i % 23 == 0:
        name = rng.choice(INTL)
        user = "intl" + str(rng.randrange(100))
    else:
        f, l = rng.choice(FIRST), rng.choice(LAST)
        name = f"{f} {l}" if i % 7 else f'{l}, {f}'  # "Last, First" needs quoting
        user = f"{f}.{l}".lower()
    return Address(display_name=name, addr_spec=f"{user}@{rng.choice(DOMAINS)}")


def subject(rng, i, word):
    if i % 19 == 0:
        return rng.choice(INTL_SUBJECTS), False
    words = rng.sample(WORDS, rng.randint(2, 6))
    hit = rng.random() < 0.1
    if hit:
        words.insert(rng.randrange(len(words) + 1), rng.choice([word, word.capitalize(), word.upper()]))
    s = " ".join(words).capitalize()
    if i % 17 == 0:
        s = f"[{rng.choice(LISTS)}] {s}"
    prefix = rng.random()
    if prefix < 0.25:
        s = "Re: " + s
    elif prefix < 0.30:
        s = "Fwd: " + s
    return s, hit


def make(rng, i, args, t0):
    m = EmailMessage()
    size = int(min(max(rng.lognormvariate(8.3, 0.45), 1500), 9000))  # median ~4 KiB
    kind = rng.random()
    needle_hit = kind < 0.70 and rng.random() < 0.01 * 100 / 70  # ~1 % of all messages
    subj, subj_hit = subject(rng, i, args.subject_word)
    sender = address(rng, i)
    when = t0 + datetime.timedelta(seconds=i * 12_000 + rng.randrange(6000))
    m["Return-Path"] = f"<{sender.addr_spec}>"
    m["Received"] = (f"from mx{rng.randrange(9)}.{sender.domain} (mx.{sender.domain} "
                     f"[192.0.2.{rng.randrange(1, 255)}]) by mail.example.test with ESMTPS id "
                     f"{rng.getrandbits(48):012x} for <bench@example.test>; "
                     f"{format_datetime(when)}")
    m["From"] = sender
    m["To"] = Address("Bench User", "bench", "example.test")
    if rng.random() < 0.3:
        m["Cc"] = [address(rng, i + k + 1) for k in range(rng.randint(1, 3))]
    m["Subject"] = subj
    m["Date"] = format_datetime(when)
    m["Message-ID"] = f"<{i}.{rng.getrandbits(40):010x}@{sender.domain}>"
    if subj.startswith("Re: "):
        m["In-Reply-To"] = f"<{max(i - rng.randint(1, 50), 0)}.parent@{sender.domain}>"
    if rng.random() < 0.4:
        m["List-Id"] = f"<{rng.choice(LISTS)}.lists.example.org>"
    m["X-Mailer"] = rng.choice(["bench-mua 1.0", "Thunderbird-ish 115", "mutt-ish 2.2"])
    text_size = max(size - 1100, 300)
    if kind < 0.70:
        m.set_content(body_text(rng, text_size, args.body_needle if needle_hit else None), cte="7bit")
    elif kind < 0.80:
        m.set_content(para(rng, text_size // 2) + para(rng, text_size // 2, UTEXT),
                      cte="quoted-printable")
    elif kind < 0.92:
        txt = body_text(rng, text_size // 2, None)
        m.set_content(txt, cte="7bit")
        html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in txt.split("\n\n")) + "</body></html>\n"
        m.add_alternative(html, subtype="html", cte="7bit")
    else:
        m.set_content(body_text(rng, text_size // 2, None), cte="7bit")
        blob = rng.randbytes(text_size // 3)
        m.add_attachment(blob, maintype="application", subtype="octet-stream",
                         filename=f"data-{i}.bin")
    raw = m.as_bytes()  # LF line ends
    return raw, subj_hit, needle_hit


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subject-word", default="invoice")
    ap.add_argument("--body-needle", default="quokka-4711")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    random.seed(args.seed)  # the email package draws MIME boundaries from the global generator
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(args.dir, sub), exist_ok=True)
    t0 = datetime.datetime(2023, 1, 2, 8, 0, tzinfo=datetime.timezone.utc)
    digests, total, subj_hits, body_hits, total_lf = [], 0, 0, 0, 0
    needle_b, word_b = args.body_needle.encode(), args.subject_word.lower().encode()
    for i in range(args.count):
        raw, s_hit, b_hit = make(rng, i, args, t0)
        if b"\r" in raw:
            sys.exit(f"message {i}: contains CR")
        # The search targets must be unambiguous (see the module doc).
        head, _, body = raw.partition(b"\n\n")
        subj_line = [h for h in head.split(b"\n") if h.lower().startswith(b"subject:")]
        if (word_b in b"".join(subj_line).lower()) != s_hit or word_b in body.lower():
            sys.exit(f"message {i}: subject word placement is ambiguous")
        if (needle_b in body) != b_hit or needle_b.lower() in head.lower():
            sys.exit(f"message {i}: body needle placement is ambiguous")
        crlf = raw.replace(b"\n", b"\r\n")
        digests.append(hashlib.sha256(crlf).digest())
        total += len(crlf)
        total_lf += len(raw)
        subj_hits += s_hit
        body_hits += b_hit
        secs = 1_672_646_400 + i * 12_000
        flags = ""
        r = rng.random()
        if r < 0.05:
            flags = "FS"
        elif r < 0.15:
            flags = "RS"
        elif r < 0.70:
            flags = "S"
        crlf = len(raw) + raw.count(b"\n")
        name = f"{secs}.M{i * 37 % 1_000_000}P{4000 + i % 50}Q{i + 1}.bench,S={len(raw)},W={crlf}:2,{flags}"
        path = os.path.join(args.dir, "cur", name)
        with open(path, "wb") as f:
            f.write(raw)
        os.utime(path, (secs, secs))
    manifest = {"count": args.count, "seed": args.seed, "bytes_crlf": total, "bytes_lf": total_lf,
                "sha256_sorted": hashlib.sha256(b"".join(sorted(digests))).hexdigest(),
                "subject_word": args.subject_word, "subject_hits": subj_hits,
                "body_needle": args.body_needle, "body_hits": body_hits}
    out = json.dumps(manifest)
    with open(os.path.join(os.path.dirname(os.path.abspath(args.dir)), "imap-manifest.json"), "w") as f:
        f.write(out + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
