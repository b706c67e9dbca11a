"""The webmail end to end in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium under /usr/bin/python3, see browser_webmail.py) logs in,
reads a message whose HTML carries a script, composes with an attachment and sends it, at a phone
width and a desktop width; the message is then found over IMAP in the recipient's INBOX and the
sender's Sent. Screenshots of the inbox, a message and the compose page at both widths are kept
in $BUZON_SHOTS (default: target/web-screenshots)."""

import email
import imaplib
import json
import os
import shutil
import smtplib
import subprocess
import time
import unittest
from email import policy
from email.message import EmailMessage

from harness import ROOT, Server, free_port, requires

SYSTEM_PYTHON = "/usr/bin/python3"


def have_selenium():
    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import selenium"], capture_output=True)
    return r.returncode == 0


@requires(have_selenium(), "Chromium and selenium (packages chromium chromium-driver python3-selenium)")
class Browser(unittest.TestCase):

    def test_log_in_read_compose_send_in_chromium(self):
        web = free_port()
        s = Server(extra=f"web.listen = 127.0.0.1:{web}\n")
        self.addCleanup(s.cleanup)
        imap = free_port()
        with open(s.config, "a") as f:
            f.write(f"imap.listen = 127.0.0.1:{imap}\nauth.cleartext_networks = 127.0.0.0/8\n"
                    f"dns.servers = 127.0.0.1:{free_port()}\n")
        s.start()
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "Carol <carol@example.org>", "alice@example.test", "Lunch on Friday?"
        m.set_content("Shall we meet at noon?")
        m.add_alternative("<h2>Lunch</h2><p>Shall we meet at <b>noon</b>?</p>"
                          "<script>parent.document.title='pwned';new Image().src='/pwned'</script>", subtype="html")
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            c.send_message(m)
        shots = os.environ.get("BUZON_SHOTS") or os.path.join(ROOT, "target", "web-screenshots")
        shutil.rmtree(shots, ignore_errors=True)
        os.makedirs(shots)
        attachment = os.path.join(s.tmp, "notes.txt")
        with open(attachment, "wb") as f:
            f.write(b"attached from the browser\n" * 100)
        r = subprocess.run([SYSTEM_PYTHON, os.path.join(ROOT, "tests", "browser_webmail.py"),
                            f"http://127.0.0.1:{web}", "alice@example.test", "secret-alice", shots, attachment,
                            "bob@example.test"], capture_output=True, text=True, timeout=240)
        self.assertEqual(r.returncode, 0, f"{r.stderr[-4000:]}\nserver log:\n{s.read_log()[-3000:]}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        for label in ("phone", "desktop"):
            for page in ("inbox", "message", "compose"):
                path = os.path.join(shots, f"{label}-{page}.png")
                self.assertTrue(os.path.getsize(path) > 2000, path)
            self.assertLessEqual(out["sizes"][f"{label}_inbox_overflow"], 0, f"{label}: no horizontal scroll")
            self.assertLessEqual(out["sizes"][f"{label}_message_overflow"], 0, f"{label}: no horizontal scroll")
        self.assertLessEqual(out["sizes"]["phone_compose_overflow"], 0)
        self.assertNotEqual(out["title_after_message"], "pwned", "the mail's script never ran")
        self.assertEqual(out["frames"], ["allow-popups allow-popups-to-escape-sandbox"],
                         "the HTML is in a sandboxed frame: no script, no same origin; its links open apart")
        self.assertNotIn("/pwned", s.read_log(), "nor loaded anything")
        self.assertTrue(out["after_send"].startswith("/folder?f=INBOX"), out)
        self.assertIn("Message sent", out["notice"])
        self.assertTrue(all("leads to /login" in st for st in out["steps"] if "after logout" in st), out["steps"])
        # The message, as bob's IMAP client sees it.
        deadline = time.time() + 15
        while time.time() < deadline and not s.new_messages("bob"):
            time.sleep(0.1)
        c = imaplib.IMAP4("127.0.0.1", imap)
        c.login("bob@example.test", "secret-bob")
        c.select("INBOX")
        typ, data = c.fetch("1", "(RFC822)")
        self.assertEqual(typ, "OK", s.read_log()[-3000:])
        got = email.message_from_bytes(data[0][1], policy=policy.default)
        self.assertEqual(got["Subject"], "Sent from Chromium")
        self.assertIn("Hello from a real browser.", got.get_body(("plain",)).get_content())
        att = list(got.iter_attachments())[0]
        self.assertEqual(att.get_filename(), "notes.txt")
        self.assertEqual(att.get_content(), "attached from the browser\n" * 100)
        c.logout()
        c = imaplib.IMAP4("127.0.0.1", imap)
        c.login("alice@example.test", "secret-alice")
        self.assertEqual(c.select("Sent")[1], [b"1"])
        c.logout()


if __name__ == "__main__":
    unittest.main()
