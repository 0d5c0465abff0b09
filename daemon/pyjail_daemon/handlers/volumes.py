"""``/volumes``: named local volumes; removal refused (409) while a container uses one."""

from __future__ import annotations

from typing import Any

from pyjail import errors

from ..filters import labels_match
from .base import ApiHandler

LIST_FILTERS = {"dangling", "name", "label", "driver"}
PRUNE_FILTERS = {"label", "label!", "all"}


def _check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise errors.InvalidArgument(f"invalid filter '{key}'")


class VolumeListHandler(ApiHandler):
    async def get(self) -> None:
        filters = self.query_filters()
        _check_filters(filters, LIST_FILTERS)
        self.write_json({"Volumes": await self.call(self._list, filters), "Warnings": []})

    def _list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        engine = self.engine
        dangling = [v.lower() in ("1", "true") for v in filters.get("dangling", [])]
        out = []
        for vol in engine.volumes.list():
            name = vol["Name"]
            if filters.get("name") and not any(n in name for n in filters["name"]):
                continue
            if filters.get("driver") and vol["Driver"] not in filters["driver"]:
                continue
            if not labels_match(vol.get("Labels") or {}, filters):
                continue
            if dangling and bool(engine.containers.volume_users(name)) == dangling[0]:
                continue
            out.append(vol)
        return out


class VolumeCreateHandler(ApiHandler):
    async def post(self) -> None:
        body = self.json_body()
        name = body.get("Name") or None
        labels = body.get("Labels") or {}
        options = body.get("DriverOpts") or {}
        driver = body.get("Driver") or "local"
        if name is not None and not isinstance(name, str):
            raise errors.InvalidArgument("invalid type for Name: expected string")
        for field, value in (("Labels", labels), ("DriverOpts", options)):
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise errors.InvalidArgument(f"invalid type for {field}: expected an object "
                                             "of strings")
        if not isinstance(driver, str):
            raise errors.InvalidArgument("invalid type for Driver: expected string")
        volume = await self.call(self._create, name, labels, driver, options)
        self.write_json(volume, 201)

    def _create(self, name: str | None, labels: dict, driver: str, options: dict) -> dict:
        existed = name is not None and self.engine.volumes.exists(name)
        volume = self.engine.volumes.create(name, labels=labels, driver=driver, options=options)
        if not existed:
            self.engine.events.publish("volume", "create", volume["Name"],
                                       {"driver": volume["Driver"]})
        return volume


class VolumeHandler(ApiHandler):
    """``GET`` / ``DELETE /volumes/{name}``."""

    async def get(self, name: str) -> None:
        self.write_json(await self.call(self.engine.volumes.inspect, name))

    async def delete(self, name: str) -> None:
        await self.call(self._remove, name, self.query_bool("force"))
        self.no_content()

    def _remove(self, name: str, force: bool) -> None:
        engine = self.engine
        engine.volumes.remove(name, in_use_by=engine.containers.volume_users(name), force=force)
        engine.events.publish("volume", "destroy", name, {"driver": "local"})


class VolumePruneHandler(ApiHandler):
    """Unused volumes; since API 1.42 only anonymous ones unless ``all=true``."""

    async def post(self) -> None:
        filters = self.query_filters()
        _check_filters(filters, PRUNE_FILTERS)
        every = any(v.lower() in ("1", "true") for v in filters.get("all", []))
        if self.api_version < (1, 42):
            every = True
        self.write_json(await self.call_blocking(self._prune, filters, every))

    def _prune(self, filters: dict[str, list[str]], every: bool) -> dict[str, Any]:
        engine = self.engine
        deleted, reclaimed = [], 0
        for vol in engine.volumes.list():
            name = vol["Name"]
            labels = vol.get("Labels") or {}
            if not every and "com.docker.volume.anonymous" not in labels:
                continue
            if not labels_match(labels, filters) or engine.containers.volume_users(name):
                continue
            size = engine.volumes.size(name)
            try:
                engine.volumes.remove(name, in_use_by=engine.containers.volume_users(name))
            except errors.PyjailError:
                continue
            engine.events.publish("volume", "destroy", name, {"driver": "local"})
            deleted.append(name)
            reclaimed += size
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}
