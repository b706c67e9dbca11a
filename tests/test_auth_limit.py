"""The AUTH brute-force limiter (auth.max_failures) through the real binary: a SIGHUP reload keeps
the failure table (it only takes the new limits), and inetd mode, one process per connection, counts
the failures of earlier processes (the table is data_dir/auth-failures)."""

import os
import poplib
import signal
import time
import unittest

from harness import Server, SpawningInetd, free_port

LIMITS = "auth.cleartext_networks = 127.0.0.0/8\nauth.max_failures = 3\n"


def login(port, password):
    """USER/PASS as alice; returns None when logged in, else the server's -ERR line."""
    c = poplib.POP3("127.0.0.1", port, timeout=30)
    try:
        c.user("alice@example.test")
        c.pass_(password)
        c.quit()
        return None
    except poplib.error_proto as e:
        return e.args[0].decode("utf-8", "replace")
    finally:
        c.close()


class AuthLimit(unittest.TestCase):

    def test_a_block_survives_sighup(self):
        pop = free_port()
        s = Server(extra=LIMITS + f"pop3.listen = 127.0.0.1:{pop}\n")
        self.addCleanup(s.cleanup)
        s.start()
        self.assertIsNone(login(pop, "secret-alice"))
        for _ in range(3):
            self.assertIsNotNone(login(pop, "wrong"))
        self.assertIn("blocked=true", s.read_log())
        self.assertIsNotNone(login(pop, "secret-alice"), "blocked, even with the right password")
        # A reload that changes the limits (applied) keeps the table.
        with open(s.config, "a") as f:
            f.write("auth.block_time = 20m\n")
        n = s.read_log().count("event=sighup action=config")
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while s.read_log().count("event=sighup action=config") == n and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn('config_reloaded applied="auth.block_time"', s.read_log())
        refused = s.read_log().count("reason=blocked")
        self.assertIsNotNone(login(pop, "secret-alice"), "still blocked after SIGHUP")
        self.assertEqual(s.read_log().count("reason=blocked"), refused + 1)
        self.assertEqual(s.stop(), 0)

    def test_failures_count_across_inetd_processes(self):
        s = Server(extra=LIMITS)
        self.addCleanup(s.cleanup)
        inetd = SpawningInetd(s.config, "pop3d")
        self.addCleanup(inetd.stop)
        self.assertIsNone(login(inetd.port, "secret-alice"))
        # Three connections, three processes, one failure each.
        for _ in range(3):
            self.assertIsNotNone(login(inetd.port, "wrong"))
        self.assertIsNotNone(login(inetd.port, "secret-alice"), "blocked by the earlier processes' failures")
        self.assertEqual(len(inetd.procs), 5)
        with open(os.path.join(s.tmp, "data", "auth-failures")) as f:
            table = f.read()
        self.assertTrue(table.startswith("buzon-auth-failures 1\n127.0.0.1 3 "), table)
        # One entry: the client that failed.
        self.assertEqual(len(table.splitlines()), 2)


if __name__ == "__main__":
    unittest.main()
