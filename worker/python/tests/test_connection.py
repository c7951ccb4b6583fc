"""The connection settings: the Rust binaries' variables and flags, refused before connecting
with messages that name the setting and path, and never shown with their secrets.

The real servers (TLS, nkeys, passwords) are in tests/tests/nats_auth.rs. Run:
`PYTHONPATH=worker/python/src .venv/bin/python -m unittest discover -s worker/python/tests`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import unittest

from mcpbus_worker.connection import NatsOptions, NatsOptionsError, add_arguments, from_arguments, redact_url


class Files:
    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def missing(self) -> str:
        return os.path.join(self.dir.name, "missing")


class Settings(unittest.TestCase):
    def setUp(self) -> None:
        self.files = Files()
        self.addCleanup(self.files.dir.cleanup)

    def test_every_setting_comes_from_its_variable(self) -> None:
        seed = self.files.write("user.nk", "SU...")
        pem = self.files.write("c.pem", "x")
        options = NatsOptions.from_env({
            "MCPBUS_NATS_URL": "nats://a:1, nats://b:2",
            "MCPBUS_NATS_NKEY": seed,
            "MCPBUS_NATS_TLS_CA": pem,
            "MCPBUS_NATS_TLS_CERT": pem,
            "MCPBUS_NATS_TLS_KEY": pem,
            "MCPBUS_NATS_TLS_FIRST": "true",
        })
        self.assertEqual(options.servers, ("nats://a:1", "nats://b:2"))
        self.assertEqual((options.nkey, options.tls_ca, options.tls_first), (seed, pem, True))
        options = NatsOptions.from_env({"MCPBUS_NATS_USER": "u", "MCPBUS_NATS_PASSWORD": "hunter2"})
        self.assertEqual((options.servers, options.user, options.password), (("nats://127.0.0.1:4222",), "u", "hunter2"))
        token = self.files.write("token", "t0ken\n")
        self.assertEqual(NatsOptions.from_env({"MCPBUS_NATS_TOKEN_FILE": token}).token, "t0ken")

    def test_flags_win_over_variables(self) -> None:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        password = self.files.write("pw", "hunter2\n")
        args = parser.parse_args(["--nats", "nats://x:1", "--nats-user", "u", "--nats-password-file", password])
        options = from_arguments(args, {"MCPBUS_NATS_URL": "nats://y:2", "MCPBUS_NATS_USER": "v"})
        self.assertEqual((options.servers, options.user, options.password), (("nats://x:1",), "u", "hunter2"))

    def test_an_unreadable_file_names_its_flag_and_path(self) -> None:
        missing = self.files.missing()
        for variable, flag in [
            ("MCPBUS_NATS_CREDS", "--nats-creds"),
            ("MCPBUS_NATS_NKEY", "--nats-nkey"),
            ("MCPBUS_NATS_TOKEN_FILE", "--nats-token-file"),
            ("MCPBUS_NATS_TLS_CA", "--nats-tls-ca"),
        ]:
            with self.assertRaises(NatsOptionsError) as e:
                NatsOptions.from_env({variable: missing})
            self.assertTrue(str(e.exception).startswith(f"{flag} ({variable}): cannot read {missing}"), e.exception)

    def test_one_way_of_authenticating(self) -> None:
        seed = self.files.write("user.nk", "SU...")
        with self.assertRaises(NatsOptionsError) as e:
            NatsOptions.from_env({"MCPBUS_NATS_NKEY": seed, "MCPBUS_NATS_TOKEN": "s3cret"})
        message = str(e.exception)
        self.assertTrue(message.startswith("--nats-nkey (MCPBUS_NATS_NKEY) and MCPBUS_NATS_TOKEN cannot be combined."))
        self.assertIn("goes with any of them", message)
        self.assertNotIn("s3cret", message)
        with self.assertRaises(NatsOptionsError) as e:
            NatsOptions.from_env({"MCPBUS_NATS_URL": "nats://u:p@h", "MCPBUS_NATS_NKEY": seed})
        self.assertIn("credentials in --nats (MCPBUS_NATS_URL)", str(e.exception))

    def test_pairs_are_given_together(self) -> None:
        pem = self.files.write("c.pem", "x")
        with self.assertRaises(NatsOptionsError) as e:
            NatsOptions.from_env({"MCPBUS_NATS_TLS_CERT": pem})
        self.assertEqual(str(e.exception), "--nats-tls-cert (MCPBUS_NATS_TLS_CERT) needs --nats-tls-key (MCPBUS_NATS_TLS_KEY)")
        with self.assertRaises(NatsOptionsError) as e:
            NatsOptions.from_env({"MCPBUS_NATS_USER": "u"})
        self.assertIn("needs a password", str(e.exception))
        with self.assertRaises(NatsOptionsError) as e:
            NatsOptions.from_env({"MCPBUS_NATS_PASSWORD": "hunter2"})
        self.assertEqual(str(e.exception), "MCPBUS_NATS_PASSWORD needs a user: --nats-user (MCPBUS_NATS_USER)")

    def test_secrets_are_never_shown(self) -> None:
        options = NatsOptions(servers=("nats://u:hunter2@h:1",))
        self.assertNotIn("hunter2", repr(options))
        options = NatsOptions(user="u", password="hunter2", token=None)
        self.assertNotIn("hunter2", repr(options))
        self.assertEqual(redact_url("tls://tok@h:1/x@y"), "tls://***@h:1/x@y")

    def test_connect_arguments(self) -> None:
        seed = self.files.write("user.nk", "SU...")
        kw = NatsOptions.from_env({"MCPBUS_NATS_URL": "nats://a:1,nats://b:2", "MCPBUS_NATS_NKEY": seed}).with_inbox_prefix("_INBOX_py").connect_kwargs()
        self.assertEqual(kw, {"servers": ["nats://a:1", "nats://b:2"], "nkeys_seed": seed, "inbox_prefix": "_INBOX_py"})
        options = NatsOptions(tls_first=True)
        self.assertTrue(options.connect_kwargs()["tls_handshake_first"])
        self.assertIn("tls", options.connect_kwargs())
        # TLS files given, a server that did not ask for TLS: refused after the fact.
        NatsOptions().check_connection({})
        with self.assertRaises(NatsOptionsError):
            NatsOptions(tls_ca=self.files.write("ca.pem", "x")).check_connection({"tls_required": False})


if __name__ == "__main__":
    unittest.main()
