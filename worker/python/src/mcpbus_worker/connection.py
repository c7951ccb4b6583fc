"""How a worker reaches NATS: seed servers, one way of authenticating, TLS.

The same settings under the same environment variables as the Rust binaries
(`bus_schema::connect`; the names are in `contract.py`, held to bus-schema by its mirror
test). Secrets are never shown: `repr` leaves out the password and token and shows URLs with
their userinfo as `***`; errors name the setting and the path, never what a file holds.

nats-py (2.9 or later) supports every setting; `tls_first` needs a server with
`handshake_first` (nats-server 2.10.4 or later). nats-py cannot be told to insist on TLS: it
upgrades when the server's INFO asks, as every server with a `tls` block does, so
`check_connection` refuses, after the fact, a connection that stayed plain text although TLS
files were given.
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import urlsplit

from . import contract as c


class NatsOptionsError(ValueError):
    """The connection settings are not usable; raised before connecting."""


def shown(setting: str) -> str:
    """`--nats-creds (MCPBUS_NATS_CREDS)`, or the variable alone for an environment-only secret."""
    flag = _FLAGS.get(setting)
    return f"{flag} ({setting})" if flag else setting


#: The flag of each variable; the password and token themselves have none (a flag's value
#: shows in `ps`).
_FLAGS = {
    c.ENV_NATS_URL: "--nats",
    c.ENV_NATS_CREDS: "--nats-creds",
    c.ENV_NATS_NKEY: "--nats-nkey",
    c.ENV_NATS_USER: "--nats-user",
    c.ENV_NATS_PASSWORD_FILE: "--nats-password-file",
    c.ENV_NATS_TOKEN_FILE: "--nats-token-file",
    c.ENV_NATS_TLS_CA: "--nats-tls-ca",
    c.ENV_NATS_TLS_CERT: "--nats-tls-cert",
    c.ENV_NATS_TLS_KEY: "--nats-tls-key",
    c.ENV_NATS_TLS_FIRST: "--nats-tls-first",
}

DEFAULT_URL = "nats://127.0.0.1:4222"


def redact_url(url: str) -> str:
    """`url` with any userinfo replaced by `***`: `nats://***@host:4222`."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    rest = url[start:]
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0], default=len(rest))
    at = rest[:end].rfind("@")
    return url if at < 0 else url[:start] + "***" + rest[at:]


@dataclass(frozen=True)
class NatsOptions:
    """Everything `nats.connect` needs. Make it with `NatsOptions.from_env()` (and flags with
    `add_arguments`/`from_arguments`), or directly; `Worker.run` validates it first."""

    #: Seed server URLs: tried in turn; the rest of a cluster is learnt from them.
    servers: tuple[str, ...] = (DEFAULT_URL,)
    #: Path of a NATS `.creds` file (user JWT and nkey seed).
    creds: str | None = None
    #: Path of a file holding a user nkey seed (`SU...`).
    nkey: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    #: CA certificates (PEM) to trust for the server's certificate instead of the system's.
    tls_ca: str | None = None
    #: Client certificate and its key (PEM), for servers that verify clients.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: TLS before the server's INFO (servers with `handshake_first`).
    tls_first: bool = False
    #: Prefix of this client's reply subjects; default `_INBOX`. For per-role permissions.
    inbox_prefix: str | None = None

    def __repr__(self) -> str:
        parts = [f"servers={[redact_url(s) for s in self.servers]!r}"]
        for name in ("creds", "nkey", "user", "tls_ca", "tls_cert", "tls_key", "inbox_prefix"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)!r}")
        parts += [f"{n}=***" for n in ("password", "token") if getattr(self, n) is not None]
        if self.tls_first:
            parts.append("tls_first=True")
        return f"NatsOptions({', '.join(parts)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> "NatsOptions":
        """Each setting from `given` (the names of `from_settings`), else its environment
        variable; password and token files are read here."""
        env = os.environ if environ is None else environ
        got = lambda key, name: given.get(key) if given.get(key) not in (None, "") else (env.get(name) or None)
        tls_first = given.get("tls_first") or (env.get(c.ENV_NATS_TLS_FIRST, "").lower() in ("1", "true", "yes", "on"))
        return cls.from_settings(
            servers=got("servers", c.ENV_NATS_URL) or DEFAULT_URL,
            creds=got("creds", c.ENV_NATS_CREDS),
            nkey=got("nkey", c.ENV_NATS_NKEY),
            user=got("user", c.ENV_NATS_USER),
            password=env.get(c.ENV_NATS_PASSWORD) or None,
            password_file=got("password_file", c.ENV_NATS_PASSWORD_FILE),
            token=env.get(c.ENV_NATS_TOKEN) or None,
            token_file=got("token_file", c.ENV_NATS_TOKEN_FILE),
            tls_ca=got("tls_ca", c.ENV_NATS_TLS_CA),
            tls_cert=got("tls_cert", c.ENV_NATS_TLS_CERT),
            tls_key=got("tls_key", c.ENV_NATS_TLS_KEY),
            tls_first=bool(tls_first),
        )

    @classmethod
    def from_settings(
        cls,
        *,
        servers: str,
        password: str | None = None,
        password_file: str | None = None,
        token: str | None = None,
        token_file: str | None = None,
        **rest: Any,
    ) -> "NatsOptions":
        """Comma-separated `servers`; a password or token either given or read from a file."""
        options = cls(
            servers=tuple(s.strip() for s in servers.split(",") if s.strip()),
            password=_one_secret(c.ENV_NATS_PASSWORD, password, c.ENV_NATS_PASSWORD_FILE, password_file),
            token=_one_secret(c.ENV_NATS_TOKEN, token, c.ENV_NATS_TOKEN_FILE, token_file),
            **rest,
        )
        # The file, not the variable, names a password that came from one.
        if password_file and options.user is None:
            raise NatsOptionsError(f"{shown(c.ENV_NATS_PASSWORD_FILE)} needs a user: {shown(c.ENV_NATS_USER)}")
        options.validate()
        return options

    def with_inbox_prefix(self, prefix: str) -> "NatsOptions":
        return replace(self, inbox_prefix=prefix)

    @property
    def tls_required(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_first)

    def validate(self) -> None:
        """Refuses what cannot work, before connecting: no server, unreadable files, more
        than one way of authenticating, a password without a user, a certificate without its key."""
        if not self.servers:
            raise NatsOptionsError(f"{shown(c.ENV_NATS_URL)} names no NATS server")
        in_url = any(urlsplit(s if "://" in s else "nats://" + s).username for s in self.servers)
        ways = [
            shown(c.ENV_NATS_CREDS) if self.creds else None,
            shown(c.ENV_NATS_NKEY) if self.nkey else None,
            shown(c.ENV_NATS_USER) if self.user is not None else (c.ENV_NATS_PASSWORD if self.password else None),
            c.ENV_NATS_TOKEN if self.token else None,
            f"credentials in {shown(c.ENV_NATS_URL)}" if in_url else None,
        ]
        given = [w for w in ways if w]
        if len(given) > 1:
            raise NatsOptionsError(
                f"{' and '.join(given)} cannot be combined. Authenticate one way: --nats-creds, "
                "--nats-nkey, --nats-user with a password (MCPBUS_NATS_PASSWORD or "
                "--nats-password-file), a token (MCPBUS_NATS_TOKEN or --nats-token-file), or "
                "user:password@ in the --nats URL; a TLS client certificate (--nats-tls-cert with "
                "--nats-tls-key) goes with any of them"
            )
        if self.user is not None and not self.password:
            raise NatsOptionsError(
                f"{shown(c.ENV_NATS_USER)} needs a password: {c.ENV_NATS_PASSWORD} or {shown(c.ENV_NATS_PASSWORD_FILE)}"
            )
        if self.password and self.user is None:
            raise NatsOptionsError(f"{c.ENV_NATS_PASSWORD} needs a user: {shown(c.ENV_NATS_USER)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            have, lacks = (c.ENV_NATS_TLS_CERT, c.ENV_NATS_TLS_KEY) if self.tls_cert else (c.ENV_NATS_TLS_KEY, c.ENV_NATS_TLS_CERT)
            raise NatsOptionsError(f"{shown(have)} needs {shown(lacks)}")
        for setting, path in (
            (c.ENV_NATS_CREDS, self.creds),
            (c.ENV_NATS_NKEY, self.nkey),
            (c.ENV_NATS_TLS_CA, self.tls_ca),
            (c.ENV_NATS_TLS_CERT, self.tls_cert),
            (c.ENV_NATS_TLS_KEY, self.tls_key),
        ):
            if path is not None:
                _read(setting, path)
        if self.nkey is not None:
            try:
                import nkeys  # noqa: F401  (nats-py signs with it)
            except ImportError as e:
                raise NatsOptionsError(f"{shown(c.ENV_NATS_NKEY)} needs the `nkeys` package: pip install nkeys") from e

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect` (the caller adds `name` and callbacks)."""
        kw: dict[str, Any] = {"servers": list(self.servers)}
        if self.creds:
            kw["user_credentials"] = self.creds
        if self.nkey:
            kw["nkeys_seed"] = self.nkey
        if self.user is not None:
            kw["user"], kw["password"] = self.user, self.password
        if self.token:
            kw["token"] = self.token
        if self.tls_required:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            kw["tls"] = context
        if self.tls_first:
            kw["tls_handshake_first"] = True
        if self.inbox_prefix:
            kw["inbox_prefix"] = self.inbox_prefix
        return kw

    def check_connection(self, server_info: Mapping[str, Any]) -> None:
        """Refuses a connection that stayed plain text although TLS files were given."""
        if self.tls_required and not self.tls_first and not server_info.get("tls_required"):
            raise NatsOptionsError(
                "TLS files were given but the server did not ask for TLS: refusing a plain-text connection"
            )


def _read(setting: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise NatsOptionsError(f"{shown(setting)}: cannot read {path}: {e.strerror}") from None


def _one_secret(env: str, value: str | None, file_setting: str, path: str | None) -> str | None:
    if value and path:
        raise NatsOptionsError(f"{shown(env)} and {shown(file_setting)} both give it: give one")
    if not path:
        return value or None
    # `kubectl create secret --from-file` and editors leave a final newline.
    text = _read(file_setting, path).decode().rstrip("\r\n")
    if not text:
        raise NatsOptionsError(f"{shown(file_setting)}: {path} is empty")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection flags of the Rust binaries; each defaults to its variable."""
    group = parser.add_argument_group("NATS", "each also from its MCPBUS_NATS_* variable")
    group.add_argument("--nats", dest="nats_servers", metavar="URLS",
                       help=f"server URLs, comma-separated (default {DEFAULT_URL})")
    group.add_argument("--nats-creds", metavar="FILE", help="NATS credentials file (.creds)")
    group.add_argument("--nats-nkey", metavar="FILE", help="file holding a user nkey seed")
    group.add_argument("--nats-user", help="user; the password from MCPBUS_NATS_PASSWORD or --nats-password-file")
    group.add_argument("--nats-password-file", metavar="FILE")
    group.add_argument("--nats-token-file", metavar="FILE", help="file holding a token (or MCPBUS_NATS_TOKEN)")
    group.add_argument("--nats-tls-ca", metavar="FILE", help="CA certificates (PEM) to trust")
    group.add_argument("--nats-tls-cert", metavar="FILE", help="client certificate (PEM)")
    group.add_argument("--nats-tls-key", metavar="FILE", help="client certificate key (PEM)")
    group.add_argument("--nats-tls-first", action="store_true", help="TLS before the server's INFO")


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> NatsOptions:
    """The options from flags added by `add_arguments`, else from the environment."""
    return NatsOptions.from_env(
        environ,
        servers=args.nats_servers,
        creds=args.nats_creds,
        nkey=args.nats_nkey,
        user=args.nats_user,
        password_file=args.nats_password_file,
        token_file=args.nats_token_file,
        tls_ca=args.nats_tls_ca,
        tls_cert=args.nats_tls_cert,
        tls_key=args.nats_tls_key,
        tls_first=args.nats_tls_first,
    )
