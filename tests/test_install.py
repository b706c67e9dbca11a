"""`make install` and `make uninstall` into a DESTDIR: the binary, its classic
names, every man page, the systemd units with the installed path, the
examples; uninstall leaves only the configuration."""

import os
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class Install(unittest.TestCase):
    def test_install_and_uninstall(self):
        with tempfile.TemporaryDirectory() as d:
            make = ["make", "-s", "-C", ROOT, f"DESTDIR={d}", "PREFIX=/usr/local"]
            r = subprocess.run(make + ["install"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            sbin = os.path.join(d, "usr/local/sbin")
            self.assertTrue(os.access(os.path.join(sbin, "buzon"), os.X_OK))
            for name in ("mailq", "sendmail", "newaliases"):
                self.assertEqual(os.readlink(os.path.join(sbin, name)), "buzon", name)
            man = os.path.join(d, "usr/local/share/man")
            for page in os.listdir(os.path.join(ROOT, "man")):
                section = page.rsplit(".", 1)[1]
                self.assertTrue(os.path.exists(os.path.join(man, "man" + section, page)), page)
            unit = os.path.join(d, "usr/local/lib/systemd/system/buzon.service")
            with open(unit) as f:
                self.assertIn("ExecStart=/usr/local/sbin/buzon serve", f.read())
            self.assertTrue(os.path.exists(os.path.join(d, "usr/local/lib/systemd/system/buzon.socket")))
            self.assertTrue(os.path.exists(os.path.join(d, "usr/local/share/doc/buzon/examples/inetd.conf")))
            # data_dir and the sendmail drop box exist before the server's first start.
            data = os.path.join(d, "var/lib/buzon")
            self.assertEqual(os.stat(data).st_mode & 0o7777, 0o711)
            self.assertEqual(os.stat(os.path.join(data, "maildrop")).st_mode & 0o7777, 0o1733)
            conf = os.path.join(d, "etc/buzon/buzon.conf")
            r = subprocess.run([os.path.join(sbin, "buzon"), "check-config", "-c", conf],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            # A second install keeps the administrator's configuration.
            with open(conf, "a") as f:
                f.write("# edited\n")
            r = subprocess.run(make + ["install"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(conf) as f:
                self.assertIn("# edited", f.read())
            r = subprocess.run(make + ["uninstall"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            left = sorted(os.path.relpath(os.path.join(p, f), d)
                          for p, _, files in os.walk(d) for f in files)
            self.assertEqual(left, ["etc/buzon/buzon.conf"])
            self.assertFalse(os.path.lexists(os.path.join(sbin, "sendmail")))


if __name__ == "__main__":
    unittest.main()
