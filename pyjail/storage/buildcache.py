"""The build cache as ``system df`` and ``builder prune`` see it.

pyjail's builder caches steps as images: ``<images>/builder/cache.json`` maps a step's
key to the image it produced, and remembers each step image's parent. A cache record is
*in use* when a container runs its image, *shared* when a named image (or a descendant of
one) needs it. Pruning removes the step images only the cache keeps alive (untagged,
unused, no child left), bottom-up, then forgets cache keys whose image is gone; ``all``
also forgets every other key, so the next build runs every step again. Space reclaimed is
measured on disk: each layer's ``diff`` size before, counted if it is gone after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .usage import gone_size, tree_size


def _cache(engine: Any) -> Any:
    from ..images.builder import for_engine
    cache = for_engine(engine).cache
    with cache._lock:
        cache._reload()
    return cache


def _state(engine: Any) -> tuple[Any, dict[str, Any], set[str], dict[str, str]]:
    cache = _cache(engine)
    images = {im.id: im for im in engine.images.list()}
    used = {c.record.get("Image", "") for c in engine.containers.all()}
    return cache, images, used, dict(cache.parents)


def _named(images: dict[str, Any], parents: dict[str, str]) -> set[str]:
    """Images a name keeps: tagged ones and every ancestor of one."""
    keep: set[str] = set()
    for iid, im in images.items():
        if im.references or im.repo_digests:
            cur: str | None = iid
            while cur and cur not in keep:
                keep.add(cur)
                cur = parents.get(cur)
    return keep


def records(engine: Any) -> list[dict[str, Any]]:
    """``BuildCache`` entries of ``GET /system/df`` (Docker's BuildCache shape)."""
    cache, images, used, parents = _state(engine)
    named = _named(images, parents)
    out = []
    for key, iid in sorted(cache.entries.items()):
        im = images.get(iid)
        if im is None:
            continue
        own = im.chain_ids[-1:] if im.chain_ids else []
        parent = images.get(parents.get(iid, ""))
        size = 0
        if own and (parent is None or own[0] not in parent.chain_ids):
            size = engine.images.layer_sizes(im)[-1]
        out.append({"ID": key[:25], "Parents": [parents[iid]] if iid in parents else None,
                    "Type": "regular", "Description": f"pyjail build step {iid[7:19]}",
                    "InUse": iid in used, "Shared": iid in named, "Size": size,
                    "CreatedAt": im.created, "LastUsedAt": None, "UsageCount": 0})
    return out


def prune(engine: Any, *, all_keys: bool = False) -> dict[str, Any]:
    """``POST /build/prune``: ``{"CachesDeleted": [keys], "SpaceReclaimed": bytes}``."""
    from .. import errors
    cache, images, used, parents = _state(engine)
    cached = set(cache.entries.values())
    reclaimed = 0
    changed = True
    while changed:   # removing a leaf step can leave its parent a leaf
        changed = False
        named = _named(images, parents)
        children = {p for c, p in parents.items() if c in images}
        for iid in sorted(cached & set(images)):
            if iid in used or iid in named or iid in children:
                continue
            before = {d: tree_size(d) for d in _layer_dirs(engine, images[iid])}
            try:
                engine.images.remove(iid, force=True, in_use=lambda i: i in used)
            except errors.PyjailError:
                continue
            reclaimed += gone_size(before)
            engine.events.publish("image", "delete", iid, {"name": iid})
            del images[iid]
            changed = True
    live = set(images)
    dropped = [k for k, v in cache.entries.items() if all_keys or v not in live]
    keep = {k: v for k, v in cache.entries.items() if k not in dropped}
    with cache._lock:
        cache.entries = keep
    cache.update({}, {}, live=live)
    return {"CachesDeleted": dropped, "SpaceReclaimed": reclaimed}


def _layer_dirs(engine: Any, image: Any) -> list[Path]:
    try:
        return engine.images.layer_dirs(image)
    except Exception:  # noqa: BLE001 - a damaged image still gets removed, unmeasured
        return []
