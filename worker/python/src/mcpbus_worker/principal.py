"""Who is calling: the principal the gateway verified from the client's access token.

A call carries it as `principal` (PROTOCOL 5.1) when the gateway checks tokens, and never
the token itself: gateways do not pass tokens through. This module only reads what arrives
on the bus, and reads it strictly: a principal of the wrong shape makes the whole call
unreadable (`MalformedPrincipal`), as it does for the Rust SDK, rather than letting a handler
run with a caller half understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import contract as c


class MalformedPrincipal(ValueError):
    """The call's `principal` is not the shape PROTOCOL.md gives it."""


@dataclass(frozen=True)
class Principal:
    """A verified caller. Two principals are the same caller when issuer and subject agree."""

    #: The token's `iss`: the authorization server that vouched for the subject.
    issuer: str
    #: The token's `sub` (or, for an introspected token without one, its `client_id`).
    subject: str
    #: Scopes granted to the token, in the order the authorization server listed them.
    scopes: tuple[str, ...] = ()
    #: The claims the operator allow-listed (e.g. `groups`). A copy per call: changing it
    #: changes nothing else. Left out of the hash, as a dict cannot be hashed.
    claims: dict[str, Any] = field(default_factory=dict, hash=False)

    def has_scope(self, scope: str) -> bool:
        """Whether the token was granted `scope`."""
        return scope in self.scopes


def principal_of(request: dict[str, Any]) -> Principal | None:
    """The principal a call carries, `None` without one; `MalformedPrincipal` if it is there
    but not a principal. Unknown fields are ignored, as everywhere in protocol version 1."""
    value = request.get(c.CALL_PRINCIPAL)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedPrincipal(f"principal is a {type(value).__name__}, not an object")
    issuer = value.get(c.PRINCIPAL_ISSUER)
    subject = value.get(c.PRINCIPAL_SUBJECT)
    for name, text in ((c.PRINCIPAL_ISSUER, issuer), (c.PRINCIPAL_SUBJECT, subject)):
        if not isinstance(text, str):
            raise MalformedPrincipal(f"principal.{name} is missing or not a string")
    # Left out means empty; `null` is refused, as bus-schema refuses it.
    scopes = value.get(c.PRINCIPAL_SCOPES, [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise MalformedPrincipal(f"principal.{c.PRINCIPAL_SCOPES} is not a list of strings")
    claims = value.get(c.PRINCIPAL_CLAIMS, {})
    if not isinstance(claims, dict):
        raise MalformedPrincipal(f"principal.{c.PRINCIPAL_CLAIMS} is not an object")
    return Principal(issuer=issuer, subject=subject, scopes=tuple(scopes), claims=dict(claims))
