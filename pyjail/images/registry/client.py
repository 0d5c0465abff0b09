"""One repository on one registry, spoken to over the OCI distribution API (``/v2/``).

Transport: HTTPS, trusting ``<certs-dir>/<host:port>/ca.crt`` when present (Docker's
``/etc/docker/certs.d`` layout). Registries on loopback and those named as insecure may
also use plain HTTP: HTTPS without verification is tried first, then HTTP, as dockerd does.
Every request answers a 401 once through the challenge it carries (Basic or Bearer).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import requests
import urllib3

from pyjail.images.reference import DEFAULT_DOMAIN
from pyjail.images.registry import auth as auth_mod
from pyjail.images.registry.auth import Credentials
from pyjail.images.registry.errors import (
    ManifestUnknown,
    RegistryError,
    RegistryUnauthorized,
    describe,
)

log = logging.getLogger("pyjail.registry")

# Registries named insecure (and loopback ones) are tried over HTTPS without verification
# on purpose, as dockerd does; one warning per request would only be noise.
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)

DOCKER_HUB_HOST = "registry-1.docker.io"
TIMEOUT = (15, 120)   # connect, read (seconds)
USER_AGENT = "pyjail/0.1 (docker-compatible)"


def registry_host(domain: str) -> str:
    """The host serving a reference's domain (``docker.io`` is served elsewhere)."""
    return DOCKER_HUB_HOST if domain == DEFAULT_DOMAIN else domain


def is_insecure(host: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Loopback registries and the configured ones may be plain HTTP (Docker's default
    includes 127.0.0.0/8; entries may be ``host[:port]`` or a CIDR)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        addr = None
    if addr is not None and addr.is_loopback:
        return True
    for entry in insecure_registries:
        entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry in (host, name):
            return True
        if addr is not None and "/" in entry:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


class RegistryClient:
    """Manifests and blobs of one repository; ``actions`` is the token scope we ask for."""

    def __init__(self, domain: str, repository: str, credentials: Credentials | None = None, *,
                 actions: str = "pull", insecure_registries: Iterable[str] = (),
                 certs_dirs: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.host = registry_host(domain)
        self.repository = repository
        self.credentials = credentials or Credentials()
        self.actions = actions
        self.insecure = is_insecure(self.host, insecure_registries)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._auth_header: str | None = None
        self._tokens: dict[str, str] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None
        self.base: str | None = None
        self._verify: bool | str = True
        self.offline = False      # login: ask the token server for a refresh token too
        self.refresh_token = ""   # ... which it may send along with the access token
        ca = self._find_ca(certs_dirs)
        if ca:
            self._verify = ca

    def _find_ca(self, certs_dirs: Iterable[str | os.PathLike[str]]) -> str | None:
        for d in certs_dirs:
            path = Path(d) / self.host / "ca.crt"
            if path.is_file():
                return str(path)
        return None

    def close(self) -> None:
        self.session.close()

    # -- transport -------------------------------------------------------------------------

    def _connect(self) -> None:
        """Find the scheme (``GET /v2/``) and remember the auth challenge it shows."""
        if self.base is not None:
            return
        attempts: list[tuple[str, bool | str]] = [("https", self._verify)]
        if self.insecure:
            attempts = [("https", False), ("http", True)]
        last: Exception | None = None
        for scheme, verify in attempts:
            base = f"{scheme}://{self.host}"
            try:
                r = self.session.get(base + "/v2/", verify=verify, timeout=TIMEOUT)
            except requests.exceptions.SSLError as exc:
                last = exc
                continue
            except requests.exceptions.ConnectionError as exc:
                last = exc
                if scheme == "https" and self.insecure:
                    continue
                break
            self.base, self._verify = base, verify
            if r.status_code == 401:
                self._set_challenge(r)
            return
        raise RegistryError(f'Get "https://{self.host}/v2/": {_short(last)}')

    def _set_challenge(self, r: requests.Response) -> None:
        for scheme, params in auth_mod.parse_challenges(r.headers.get("WWW-Authenticate", "")):
            if scheme in ("basic", "bearer"):
                self._challenge = (scheme, params)
                return

    def _scope(self, extra: Iterable[str]) -> str:
        own = [f"repository:{self.repository}:{self.actions}"] if self.repository else []
        return " ".join([*own, *extra])

    def _authorization(self, scopes: Iterable[str]) -> str | None:
        if self._challenge is None:
            return None
        scheme, params = self._challenge
        creds = self.credentials
        if scheme == "basic":
            return None if creds.anonymous else auth_mod.basic_header(creds)
        if creds.registrytoken:
            return f"Bearer {creds.registrytoken}"
        scope = self._scope(scopes)
        if scope not in self._tokens:
            self._tokens[scope] = self._fetch_token(params, scope)
        return f"Bearer {self._tokens[scope]}"

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.host}: bearer challenge without a realm")
        creds = self.credentials
        query = {"scope": scope} if scope else {}
        if params.get("service"):
            query["service"] = params["service"]
        if self.offline:
            query.update({"offline_token": "true", "client_id": "pyjail"})
        try:
            if creds.identitytoken:
                r = self.session.post(realm, data={
                    **query, "grant_type": "refresh_token", "refresh_token": creds.identitytoken,
                    "client_id": "pyjail"}, verify=self._verify, timeout=TIMEOUT)
            else:
                headers = {} if creds.anonymous else {"Authorization": auth_mod.basic_header(creds)}
                r = self.session.get(realm, params={**query, "account": creds.username}
                                     if creds.username else query, headers=headers,
                                     verify=self._verify, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RegistryError(f'Get "{realm}": {_short(exc)}') from None
        if r.status_code in (401, 403):
            raise RegistryUnauthorized(
                f'Get "{realm}": {describe(_json(r), "unauthorized: incorrect username or password")}')
        if r.status_code != 200:
            raise RegistryError(f'Get "{realm}": token server answered {r.status_code}')
        body = _json(r)
        token = auth_mod.token_from_response(body)
        if not token:
            raise RegistryError(f'Get "{realm}": the token server sent no token')
        if isinstance(body, dict) and body.get("refresh_token"):
            self.refresh_token = str(body["refresh_token"])
        return token

    def url(self, path: str) -> str:
        self._connect()
        assert self.base is not None
        return f"{self.base}/v2/{self.repository}/{path}"

    def request(self, method: str, url: str, *, scopes: Iterable[str] = (), ok: Iterable[int] = (),
                **kwargs: Any) -> requests.Response:
        """One request; a 401 is answered through its challenge and retried once. Statuses in
        ``ok`` (and all 2xx) are returned; anything else raises a RegistryError."""
        self._connect()
        scopes = list(scopes)
        if not url.startswith(("http://", "https://")):
            url = urljoin(self.base + "/", url.lstrip("/")) if url.startswith("/") else url
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in range(2):
            auth = self._authorization(scopes)
            if auth:
                headers["Authorization"] = auth
            try:
                r = self.session.request(method, url, headers=headers, verify=self._verify,
                                         timeout=TIMEOUT, allow_redirects=True, **kwargs)
            except requests.RequestException as exc:
                raise RegistryError(f'{method.title()} "{url}": {_short(exc)}') from None
            if r.status_code == 401 and attempt == 0 and not hasattr(kwargs.get("data"), "read"):
                before = self._challenge
                self._set_challenge(r)
                self._tokens.pop(self._scope(scopes), None)
                if self._challenge is not None and (before is None or not self.credentials.anonymous
                                                    or self._challenge != before):
                    continue
            break
        if 200 <= r.status_code < 300 or r.status_code in set(ok):
            return r
        self._raise(method, url, r)
        raise AssertionError("unreachable")

    def _raise(self, method: str, url: str, r: requests.Response) -> None:
        body = _json(r) if method != "HEAD" else None
        where = f'{method.title()} "{url}"'
        if r.status_code in (401, 403):
            default = ("unauthorized: authentication required" if r.status_code == 401
                       else "denied: requested access to the resource is denied")
            raise RegistryUnauthorized(f"{where}: {describe(body, default)}")
        if r.status_code == 404 and "/manifests/" in url:
            raise ManifestUnknown(f"{where}: {describe(body, 'manifest unknown')}")
        if r.status_code == 404:
            raise RegistryError(f"{where}: {describe(body, 'blob unknown: blob unknown to registry')}")
        raise RegistryError(f"{where}: {describe(body, f'unexpected status {r.status_code}')}")

    # -- distribution API ------------------------------------------------------------------

    def get_manifest(self, ref: str, accept: Iterable[str]) -> tuple[bytes, str, str | None]:
        """(bytes, media type, Docker-Content-Digest) of a manifest by tag or digest."""
        r = self.request("GET", self.url(f"manifests/{ref}"),
                         headers={"Accept": ", ".join(accept)})
        media = r.headers.get("Content-Type", "").split(";")[0].strip()
        return r.content, media, r.headers.get("Docker-Content-Digest")

    def blob_exists(self, digest: str) -> bool:
        r = self.request("HEAD", self.url(f"blobs/{digest}"), ok=(404,))
        return r.status_code != 404

    def open_blob(self, digest: str) -> requests.Response:
        """A streaming GET of a blob (redirects to storage backends are followed)."""
        return self.request("GET", self.url(f"blobs/{digest}"), stream=True)

    def mount_blob(self, digest: str, source: str) -> str | None:
        """Cross-repository mount; None when done, else the upload URL the registry opened."""
        r = self.request("POST", self.url("blobs/uploads/?" + urlencode(
            {"mount": digest, "from": source})), scopes=[f"repository:{source}:pull"])
        if r.status_code == 201:
            return None
        return self._location(r)

    def start_upload(self) -> str:
        return self._location(self.request("POST", self.url("blobs/uploads/")))

    def _location(self, r: requests.Response) -> str:
        loc = r.headers.get("Location")
        if not loc:
            raise RegistryError(f"registry {self.host}: upload started without a Location")
        assert self.base is not None
        return urljoin(self.base + "/", loc)

    def upload(self, location: str, digest: str, chunks: Iterator[bytes], size: int,
               chunk_size: int | None) -> None:
        """Monolithic PUT, or PATCH chunks then PUT when the blob is over ``chunk_size``."""
        sep = "&" if "?" in location else "?"
        if chunk_size is None or size <= chunk_size:
            data = b"".join(chunks)
            self.request("PUT", f"{location}{sep}{urlencode({'digest': digest})}", data=data,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(len(data))})
            return
        offset = 0
        for chunk in chunks:
            r = self.request("PATCH", location, data=chunk, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            offset += len(chunk)
            location = self._location(r)
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}{urlencode({'digest': digest})}",
                     headers={"Content-Length": "0"})

    def put_manifest(self, ref: str, body: bytes, media_type: str) -> str | None:
        r = self.request("PUT", self.url(f"manifests/{ref}"), data=body,
                         headers={"Content-Type": media_type})
        return r.headers.get("Docker-Content-Digest")


def _json(r: requests.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def _short(exc: BaseException | None) -> str:
    """A connection error without urllib3's nested reprs."""
    if exc is None:
        return "no route to the registry"
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1].rstrip(")'\"")
    return text
