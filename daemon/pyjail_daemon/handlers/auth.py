"""``POST /auth``: ``docker login`` checks the credentials against the registry itself.

dockerd keeps nothing: the client stores what it logged in with (or the IdentityToken a
token server handed out) and sends it along with each pull and push.
"""

from __future__ import annotations

from pyjail import errors
from pyjail.images.registry import Credentials, login

from .base import ApiHandler


class AuthHandler(ApiHandler):
    """Body: Docker's AuthConfig (``username``, ``password``, ``serveraddress``, or an
    ``identitytoken``); answer ``{"Status": "Login Succeeded", "IdentityToken": ...}``."""

    async def post(self) -> None:
        body = {str(k).lower(): v for k, v in self.json_body().items()}
        fields = {k: body.get(k) or "" for k in ("username", "password", "identitytoken",
                                                 "registrytoken", "serveraddress")}
        if any(not isinstance(v, str) for v in fields.values()):
            raise errors.InvalidArgument("invalid auth config: fields must be strings")
        creds = Credentials(**fields)
        engine = self.engine
        status, token = await self.call_blocking(
            login, creds, insecure_registries=engine.insecure_registries,
            certs_dirs=engine.registry_certs_dirs)
        self.write_json({"Status": status, "IdentityToken": token})
