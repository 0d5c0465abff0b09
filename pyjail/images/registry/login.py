"""``docker login``: check credentials against a registry's ``/v2/`` as dockerd does.

The base endpoint answers 200 to a client it accepts. Its 401 challenge says how to log in:
Basic (the credentials go along as they are) or Bearer (a token from the realm, asked for
with no repository scope and ``offline_token``, so a token server may hand back a refresh
token, which becomes the IdentityToken the client stores instead of the password).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from pyjail.images.reference import DEFAULT_DOMAIN
from pyjail.images.registry.auth import Credentials
from pyjail.images.registry.client import RegistryClient
from pyjail.images.registry.errors import RegistryUnauthorized

_HUB_NAMES = ("", "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def server_domain(address: str) -> str:
    """A client's ``serveraddress`` (``host:port``, a URL, Docker Hub's v1 URL) as a domain."""
    host = address.strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.split("/", 1)[0].lower()
    return DEFAULT_DOMAIN if host in _HUB_NAMES else host


def login(credentials: Credentials, *, insecure_registries: Iterable[str] = (),
          certs_dirs: Iterable[str | os.PathLike[str]] = ()) -> tuple[str, str]:
    """("Login Succeeded", identity token or "") or RegistryUnauthorized (401)."""
    domain = server_domain(credentials.serveraddress)
    client = RegistryClient(domain, "", credentials, insecure_registries=insecure_registries,
                            certs_dirs=certs_dirs)
    client.offline = True
    try:
        r = client.request("GET", "/v2/", ok=(401, 403))
        if r.status_code in (401, 403):
            raise RegistryUnauthorized(f"login attempt to {client.base}/v2/ failed with status: "
                                       f"{r.status_code} {r.reason or 'Unauthorized'}")
        return "Login Succeeded", client.refresh_token
    finally:
        client.close()
