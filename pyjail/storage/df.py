"""``GET /system/df`` measured on disk: every size is what the directories hold now.

Image sizes come from walking each layer's ``diff`` once (a layer shared by several
images is measured once and counted once in ``LayersSize``), containers from their
writable layer, volumes from their data. Sizes follow Docker's rule (``tree_size``).
"""

from __future__ import annotations

from typing import Any

from .. import errors
from .buildcache import records
from .usage import tree_size


def usage(engine: Any) -> dict[str, Any]:
    from ..images import listing
    store = engine.images
    images, _ = listing.usage(engine)
    layer_size: dict[str, int] = {}
    users: dict[str, int] = {}
    chains: dict[str, list[str]] = {}
    for im in store.list():
        try:
            dirs = list(reversed(store.layer_dirs(im)))   # bottom first, like chain_ids
        except Exception:  # noqa: BLE001 - a damaged image counts what is there
            dirs = []
        chains[im.id] = list(im.chain_ids)
        for chain_id, path in zip(im.chain_ids, dirs, strict=False):
            if chain_id not in layer_size:
                layer_size[chain_id] = tree_size(path)
        for chain_id in im.chain_ids:
            users[chain_id] = users.get(chain_id, 0) + 1
    image_size = {}
    for entry in images:
        ids = chains.get(entry["Id"], [])
        size = sum(layer_size.get(c, 0) for c in ids)
        image_size[entry["Id"]] = size
        entry.update(Size=size, VirtualSize=size,
                     SharedSize=sum(layer_size.get(c, 0) for c in ids if users.get(c, 0) > 1))
    containers = engine.list_containers(all=True, size=False)
    for entry in containers:
        try:
            rw = tree_size(engine.containers.get(entry["Id"]).dir / "diff")
        except errors.NotFound:   # removed meanwhile
            rw = 0
        entry.update(SizeRw=rw, SizeRootFs=rw + image_size.get(entry.get("ImageID", ""), 0))
    volumes = []
    for vol in engine.volumes.list():
        refs = len(engine.containers.volume_users(vol["Name"]))
        volumes.append({**vol, "UsageData": {"Size": tree_size(vol["Mountpoint"]),
                                             "RefCount": refs}})
    return {"LayersSize": sum(layer_size.values()), "Images": images,
            "Containers": containers, "Volumes": volumes, "BuildCache": records(engine)}
