"""``Client``: one daemon connection — docker-py for the Docker API, plain HTTP for pyjail's.

The Docker-API part goes through ``docker.DockerClient`` so the same commands work against
dockerd or podman. pyjail's own endpoints (``/pyjail/v1/…``) go through the same
requests session (docker-py's ``APIClient`` is one), so there is one connection pool and
one transport. docker-py is imported on first use, not at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import errors
from .hosts import (
    describe_os_error,
    host_source,
    http_connection,
    resolve_host,
    unix_path,
    unreachable_message,
)

if TYPE_CHECKING:
    import docker
    import requests

MAX_API_VERSION = "1.44"
PYJAIL_PREFIX = "/pyjail/v1/"


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split("."))
    except ValueError:
        return (0,)


class Client:
    """A daemon at ``host`` (see ``hosts.resolve_host`` for the default)."""

    def __init__(self, host: str | None = None, *, timeout: float = 120.0) -> None:
        self.host = resolve_host(host)
        self.source = host_source(host)
        self.timeout = timeout

    # -- connecting -------------------------------------------------------------------------
    def _unreachable(self, reason: str) -> errors.DaemonUnavailable:
        return errors.DaemonUnavailable(unreachable_message(self.host, reason, self.source))

    @cached_property
    def version(self) -> dict[str, Any]:
        """``GET /version``, read once: the API version to speak, and who the server is."""
        path = unix_path(self.host)
        if path and not os.path.exists(path):
            raise self._unreachable("no such socket")
        if os.environ.get("DOCKER_TLS_VERIFY") and not path:
            return self.docker.version()
        conn = http_connection(self.host, timeout=10)
        try:
            conn.request("GET", "/version")
            resp = conn.getresponse()
            body = resp.read()
        except OSError as exc:
            raise self._unreachable(describe_os_error(exc)) from None
        finally:
            conn.close()
        if resp.status != 200:
            raise self._unreachable(f"/version answered HTTP {resp.status}")
        try:
            return json.loads(body)
        except ValueError:
            raise self._unreachable("/version did not answer JSON: not a Docker API") from None

    @property
    def api_version(self) -> str:
        server = self.version.get("ApiVersion") or MAX_API_VERSION
        return min(server, MAX_API_VERSION, key=_version_tuple)

    @property
    def is_pyjail(self) -> bool:
        """Whether the daemon is pyjaild (pyjail-only features need one)."""
        version = self.version
        names = [str((version.get("Platform") or {}).get("Name", ""))]
        names += [str(c.get("Name", "")) for c in version.get("Components") or []]
        return any("pyjail" in n.lower() for n in names)

    @property
    def server_name(self) -> str:
        """E.g. ``pyjail 0.1.0``, ``Docker Engine 20.10.24``, ``Podman Engine 4.3.1``."""
        version = self.version
        platform = str((version.get("Platform") or {}).get("Name", "")).strip()
        components = version.get("Components") or []
        name = platform or (components[0].get("Name", "") if components else "") or "Docker"
        if "docker" not in name.lower() and "pyjail" not in name.lower() and not components:
            name = "Docker " + name
        return f"{name} {version.get('Version', '')}".strip()

    @cached_property
    def docker(self) -> docker.DockerClient:
        """The docker-py client, made on first use (after ``version`` proved the daemon up)."""
        import docker
        if os.environ.get("DOCKER_TLS_VERIFY") and not unix_path(self.host):
            env = dict(os.environ, DOCKER_HOST=self.host)
            return docker.from_env(environment=env, timeout=int(self.timeout))
        return docker.DockerClient(base_url=self.host, version=self.api_version,
                                   timeout=int(self.timeout))

    @property
    def api(self) -> docker.APIClient:
        return self.docker.api

    def close(self) -> None:
        if "docker" in self.__dict__:
            self.docker.close()
            del self.__dict__["docker"]
        self.__dict__.pop("version", None)

    # -- errors -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Turn docker-py / requests failures into one-line ``ClientError``s."""
        import requests
        try:
            yield
        except errors.ClientError:
            raise
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else exc
            inner = getattr(reason, "reason", None) or getattr(reason, "args", [None])[-1]
            text = describe_os_error(inner) if isinstance(inner, BaseException) else str(reason)
            raise self._unreachable(text) from None
        except Exception as exc:  # noqa: BLE001 - docker-py raises many kinds; map them all
            from docker import errors as derr
            if isinstance(exc, derr.DockerException | requests.RequestException):
                raise errors.from_docker(exc, self.host) from None
            raise

    # -- pyjail's own endpoints ---------------------------------------------------------------
    def pyjail_request(self, method: str, path: str, *, feature: str,
                       params: dict[str, Any] | None = None, json_body: Any = None,
                       stream: bool = False, data: Any = None) -> requests.Response:
        """A request under ``/pyjail/v1/``; a missing endpoint is one clear ``NotSupported``."""
        if not self.is_pyjail:
            raise errors.NotSupported(
                f"{feature} need a pyjail daemon; {self.host} is {self.server_name}, "
                "which has no /pyjail/v1 API")
        api = self.api
        url = api.base_url + PYJAIL_PREFIX + path.lstrip("/")
        with self.translated():
            resp = api.request(method, url, params=params, json=json_body, stream=stream,
                               data=data, timeout=None if stream or data is not None
                               else self.timeout)
        if resp.status_code < 400:
            return resp
        message = _error_message(resp)
        if resp.status_code in (404, 405, 501) and (
                resp.status_code != 404 or message == "page not found"):
            raise errors.NotSupported(
                f"{feature}: this pyjail daemon ({self.server_name}) does not serve "
                f"{PYJAIL_PREFIX}{path.lstrip('/')} yet (HTTP {resp.status_code})")
        raise errors.for_status(resp.status_code, message)


def _error_message(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("message", "")) or resp.reason
    except ValueError:
        return resp.text.strip()[:200] or resp.reason


def json_lines(resp: requests.Response) -> Iterator[dict[str, Any]]:
    """A streamed answer of JSON objects, one per line (pyjail's progress streams)."""
    for line in resp.iter_lines():
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                yield {"status": line.decode(errors="replace")}
