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


FILTERS = frozenset({"until", "id", "parent", "type", "description", "inuse", "shared",
                     "private"})


def _record(key: str, im: Any, parent: Any, iid: str, used: set[str], named: set[str],
            parents: dict[str, str], size: int) -> dict[str, Any]:
    return {"ID": key[:25], "Parents": [parents[iid]] if iid in parents else None,
            "Type": "regular", "Description": f"pyjail build step {iid[7:19]}",
            "InUse": iid in used, "Shared": iid in named, "Size": size,
            "CreatedAt": im.created, "LastUsedAt": None, "UsageCount": 0}


def _own_size(engine: Any, im: Any, parent: Any) -> int:
    """The bytes of the step's own layer (0 when it added none)."""
    own = im.chain_ids[-1:] if im.chain_ids else []
    if own and (parent is None or own[0] not in parent.chain_ids):
        return int(engine.images.layer_sizes(im)[-1])
    return 0


def records(engine: Any) -> list[dict[str, Any]]:
    """``BuildCache`` entries of ``GET /system/df`` (Docker's BuildCache shape)."""
    cache, images, used, parents = _state(engine)
    named = _named(images, parents)
    out = []
    for key, iid in sorted(cache.entries.items()):
        im = images.get(iid)
        if im is None:
            continue
        parent = images.get(parents.get(iid, ""))
        out.append(_record(key, im, parent, iid, used, named, parents,
                           _own_size(engine, im, parent)))
    return out


def matcher(engine: Any, filters: dict[str, list[str]]) -> Any:
    """A predicate on a cache record for ``docker builder prune --filter``: ``until``
    (a time or a duration ago), ``id`` and ``parent`` (prefixes), ``type``, ``description``
    (substring), ``inuse``, ``shared``, ``private``; several values of one key: any."""
    from .. import errors
    for key in filters:
        if key not in FILTERS:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    until = max((engine.parse_time(v) for v in filters.get("until", [])), default=0)

    def flag(name: str, value: bool) -> bool:
        return name not in filters or value

    def match(r: dict[str, Any]) -> bool:
        from ..images.store import unix_seconds
        return ((not until or unix_seconds(r["CreatedAt"]) * 1_000_000_000 < until)
                and (not filters.get("id") or any(r["ID"].startswith(v) for v in filters["id"]))
                and (not filters.get("parent") or any(p.startswith(v) or p[7:].startswith(v)
                                                      for p in r["Parents"] or []
                                                      for v in filters["parent"]))
                and (not filters.get("type") or r["Type"] in filters["type"])
                and (not filters.get("description")
                     or any(v in r["Description"] for v in filters["description"]))
                and flag("inuse", r["InUse"]) and flag("shared", r["Shared"])
                and flag("private", not r["Shared"]))

    return match


def prune(engine: Any, *, all_keys: bool = False, match: Any = None,
          keep_storage: int = 0) -> dict[str, Any]:
    """``POST /build/prune``: ``{"CachesDeleted": [keys], "SpaceReclaimed": bytes}``.

    ``match``: only records it accepts (see ``matcher``); ``keep_storage``: oldest steps
    first, and stop once the cache holds no more than that many bytes."""
    from .. import errors
    cache, images, used, parents = _state(engine)
    keys = {iid: key for key, iid in cache.entries.items()}
    total = sum(_own_size(engine, images[i], images.get(parents.get(i, "")))
                for i in set(keys) & set(images)) if keep_storage else 0
    reclaimed = 0
    changed = True

    def wanted(iid: str, named: set[str]) -> bool:
        if match is None:
            return True
        parent = images.get(parents.get(iid, ""))
        return bool(match(_record(keys[iid], images[iid], parent, iid, used, named, parents,
                                  0)))

    while changed:   # removing a leaf step can leave its parent a leaf
        changed = False
        named = _named(images, parents)
        children = {p for c, p in parents.items() if c in images}
        steps = sorted(set(keys) & set(images), key=lambda i: (images[i].created, i))
        for iid in steps:
            if keep_storage and total <= keep_storage:
                break
            if iid in used or iid in named or iid in children or not wanted(iid, named):
                continue
            before = {d: tree_size(d) for d in _layer_dirs(engine, images[iid])}
            own = _own_size(engine, images[iid], images.get(parents.get(iid, "")))
            try:
                engine.images.remove(iid, force=True, in_use=lambda i: i in used)
            except errors.PyjailError:
                continue
            reclaimed += gone_size(before)
            total -= own
            engine.events.publish("image", "delete", iid, {"name": iid})
            del images[iid]
            changed = True
    live = set(images)
    named = _named(images, parents)
    dropped = [k for k, v in cache.entries.items()
               if v not in live or (all_keys and not keep_storage
                                    and (match is None or wanted(v, named)))]
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
