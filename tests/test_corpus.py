"""Every message of the shared corpus (real-world and malformed mail) goes in
over SMTP and comes out of the Maildir byte for byte (with LF line ends)."""

import glob
import os
import smtplib
import unittest

from harness import ROOT, ServerTest

# Beside the checkout (../shared), or where BUZON_CORPUS says, or the machine's shared folder.
CANDIDATES = [os.environ.get("BUZON_CORPUS", ""), os.path.join(os.path.dirname(ROOT), "shared", "corpus", "eml"),
              "/work/shared/corpus/eml"]
CORPUS = next((c for c in CANDIDATES if c and os.path.isdir(c)), CANDIDATES[1])


class Corpus(ServerTest):
    extra = "message_size_limit = 50M"

    def test_corpus_round_trip(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "**", "*.eml"), recursive=True))
        if not files:
            self.skipTest(f"no corpus at {CORPUS}")
        newdir = os.path.join(self.server.maildir("alice"), "new")
        seen = set()
        with smtplib.SMTP("127.0.0.1", self.server.port) as s:
            for path in files:
                with open(path, "rb") as f:
                    raw = f.read()
                wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                if not wire.endswith(b"\r\n"):
                    wire += b"\r\n"
                expected = wire.replace(b"\r\n", b"\n")
                s.sendmail("corpus@remote.test", ["alice@example.test"], wire)
                fresh = set(os.listdir(newdir)) - seen
                self.assertEqual(len(fresh), 1, path)
                name = fresh.pop()
                seen.add(name)
                with open(os.path.join(newdir, name), "rb") as f:
                    stored = f.read()
                self.assertTrue(stored.endswith(expected), f"{path}: stored copy differs")
                self.assertTrue(stored.startswith(b"Return-Path: <corpus@remote.test>\nReceived: "), path)
                self.assertEqual(len(stored) - len(expected), stored.index(b";\n\t") + stored[stored.index(b";\n\t"):]
                                 .index(b"\n", 3) + 1, f"{path}: only the trace headers were added")
        print(f"corpus: {len(files)} messages round-tripped")


if __name__ == "__main__":
    unittest.main()
