"""``/networks``: bridge networks (create, list, inspect, connect, disconnect, remove, prune).

The engine side is ``pyjail.network.NetworkManager`` (``engine.networks``); these
handlers only parse requests. Status codes follow dockerd: 201 on create, 403 for
predefined networks and duplicate endpoints, 404 for an unknown network or container,
409 for a name in use or a network with active endpoints.
"""

from __future__ import annotations

from typing import Any

from pyjail import errors

from .base import ApiHandler

ID = r"([^/]+)"


class NetworkListHandler(ApiHandler):
    """``GET /networks``."""

    async def get(self) -> None:
        self.write_json(await self.call(self.engine.networks.list, self.query_filters()))


class NetworkCreateHandler(ApiHandler):
    """``POST /networks/create``."""

    async def post(self) -> None:
        body = self.json_body()
        self.write_json(await self.call(self.engine.networks.create, body), 201)


class NetworkHandler(ApiHandler):
    """``GET`` / ``DELETE /networks/{id}``."""

    async def get(self, ref: str) -> None:
        scope = self.query("scope")
        if scope and scope not in ("local", "swarm", "global"):
            raise errors.InvalidArgument(f"invalid scope: {scope}")
        if scope and scope != "local":
            raise errors.NotFound(f"network {ref} not found")
        self.write_json(await self.call(self.engine.networks.inspect, ref))

    async def delete(self, ref: str) -> None:
        await self.call_blocking(self.engine.networks.remove, ref)
        self.no_content()


class NetworkConnectHandler(ApiHandler):
    """``POST /networks/{id}/connect`` with ``{"Container", "EndpointConfig"}``."""

    async def post(self, ref: str) -> None:
        body = self.json_body()
        container = _container(body)
        endpoint = body.get("EndpointConfig") or {}
        if not isinstance(endpoint, dict):
            raise errors.InvalidArgument("invalid type for EndpointConfig: expected an object")
        await self.call_blocking(self.engine.networks.connect, ref, container, endpoint)
        self.finish()


class NetworkDisconnectHandler(ApiHandler):
    """``POST /networks/{id}/disconnect`` with ``{"Container", "Force"}``."""

    async def post(self, ref: str) -> None:
        body = self.json_body()
        container = _container(body)
        await self.call_blocking(self.engine.networks.disconnect, ref, container,
                                 bool(body.get("Force")))
        self.finish()


class NetworkPruneHandler(ApiHandler):
    """``POST /networks/prune``: custom networks without active endpoints."""

    async def post(self) -> None:
        self.write_json(await self.call_blocking(self.engine.networks.prune,
                                                 self.query_filters()))


def _container(body: dict[str, Any]) -> str:
    container = body.get("Container")
    if not isinstance(container, str) or not container:
        raise errors.InvalidArgument("Container is required")
    return container


# Added to app.ROUTES with ``*networks.ROUTES`` (paths without the /v1.NN prefix).
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (r"/networks", NetworkListHandler),
    (r"/networks/create", NetworkCreateHandler),
    (r"/networks/prune", NetworkPruneHandler),
    (rf"/networks/{ID}/connect", NetworkConnectHandler),
    (rf"/networks/{ID}/disconnect", NetworkDisconnectHandler),
    (rf"/networks/{ID}", NetworkHandler),
]
