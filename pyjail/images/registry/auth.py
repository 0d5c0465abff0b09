"""Registry credentials and the ``WWW-Authenticate`` challenge flow (Basic and Bearer).

Credentials arrive as Docker clients send them: the ``X-Registry-Auth`` header, base64url
JSON of ``{username, password, serveraddress}`` or ``{identitytoken}``. A registry that
answers 401 names its scheme; for Bearer we fetch a token for the scope from its realm
(GET with Basic credentials, or an OAuth2 refresh-token POST for an identity token).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from pyjail.errors import InvalidArgument

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """What a client gave us to log in with; empty means anonymous."""

    username: str = ""
    password: str = ""
    identitytoken: str = ""
    registrytoken: str = ""
    serveraddress: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identitytoken or self.registrytoken)


def decode_registry_auth(header: str | None) -> Credentials | None:
    """Decode ``X-Registry-Auth`` (base64url or standard base64, padding optional)."""
    if not header or not header.strip():
        return None
    raw = header.strip()
    raw += "=" * (-len(raw) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_")))
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from None
    if not isinstance(data, dict):
        return None
    lower = {str(k).lower(): v for k, v in data.items() if isinstance(v, str)}
    user, password = lower.get("username", ""), lower.get("password", "")
    if not user and lower.get("auth"):   # the "auth" field of a config.json: user:pass
        try:
            user, _, password = base64.b64decode(lower["auth"]).decode().partition(":")
        except (binascii.Error, ValueError):
            pass
    return Credentials(user, password, lower.get("identitytoken", ""),
                       lower.get("registrytoken", ""), lower.get("serveraddress", ""))


def encode_registry_auth(creds: Credentials) -> str:
    """The header a client would send (used by tests and the CLI)."""
    body = {k: v for k, v in vars(creds).items() if v}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """``Bearer realm="…",service="…",scope="…"`` -> [("bearer", {...})]."""
    out: list[tuple[str, dict[str, str]]] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not m:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end():]
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(rest)
            if not p:
                break
            params[p.group(1).lower()] = (p.group(2).replace('\\"', '"') if p.group(2) is not None
                                          else p.group(3))
            rest = rest[p.end():]
        out.append((scheme, params))
    return out


def basic_header(creds: Credentials) -> str:
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


def token_from_response(body: Any) -> str:
    """Token servers answer ``{"token": …}`` or OAuth2's ``{"access_token": …}``."""
    if isinstance(body, dict):
        return str(body.get("token") or body.get("access_token") or "")
    return ""
