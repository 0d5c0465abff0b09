"""``POST /build``: the legacy builder's streamed JSON progress over a tar context body.

The build runs on its own thread (RUN steps wait on containers); each progress message is
flushed as one JSON line, ending with ``{"aux":{"ID":…}}`` and ``Successfully built``. A
failed step is reported in the stream as ``errorDetail`` (the CLI prints it and exits 1).
"""

from __future__ import annotations

import json
from typing import Any

from pyjail import errors
from pyjail.images.builder import BuildOptions, for_engine

from .distribution import _ProgressStream


def _json_map(raw: str | None, name: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid {name}: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"invalid {name}: expected a JSON object")
    return value


class BuildHandler(_ProgressStream):
    """``POST /build?t=…&dockerfile=…&buildargs=…&labels=…&target=…&nocache=…&q=…``."""

    async def post(self) -> None:
        network = self.query("networkmode") or "none"
        if network == "default":
            network = "none"
        opts = BuildOptions(
            dockerfile=self.query("dockerfile") or "Dockerfile",
            tags=[t for t in self.get_query_arguments("t") if t],
            buildargs=_json_map(self.query("buildargs"), "buildargs"),
            labels={k: str(v) for k, v in _json_map(self.query("labels"), "labels").items()},
            target=self.query("target") or "",
            nocache=self.query_bool("nocache"),
            pull=self.query_bool("pull"),
            rm=self.query_bool("rm", True),
            forcerm=self.query_bool("forcerm"),
            quiet=self.query_bool("q"),
            network_mode=network,
        )
        if self.query("remote"):
            raise errors.InvalidArgument("remote build contexts are not supported")
        body = self.request.body
        builder = for_engine(self.engine)
        await self.stream(lambda progress: builder.build(body, opts, progress))
