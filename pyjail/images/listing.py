"""``docker images`` / ``rmi`` / ``image prune`` / ``system df`` views over the store.

Why here: the store knows images and names; which images are intermediate build steps
(hidden from ``docker images`` like Docker hides images with children) is known to the
builder's cache, and which are in use to the containers. This module joins the three.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from pyjail.errors import Conflict, InvalidArgument, NotFound, PyjailError
from pyjail.images.store import Image, ImageStore, unix_seconds

UsedBy = Callable[[str], str | None]


def _parents(engine: Any) -> dict[str, str]:
    from pyjail.images.builder import for_engine
    cache = for_engine(engine).cache
    with cache._lock:
        cache._reload()
        return dict(cache.parents)


def used_by(engine: Any) -> UsedBy:
    """image id -> the id of a container using it (None when unused)."""
    users: dict[str, str] = {}
    for c in engine.containers.all():
        users.setdefault(c.record.get("Image", ""), c.id)
    return users.get


def _labels(image: Image) -> dict[str, str]:
    return dict((image.config.get("config") or {}).get("Labels") or {})


def _ref_matches(image: Image, patterns: list[str]) -> bool:
    for ref in image.references:
        name, _, _tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
        for pat in patterns:
            if fnmatch.fnmatchcase(ref, pat) or (":" not in pat and fnmatch.fnmatchcase(
                    name or ref, pat)):
                return True
    return False


def _label_matches(image: Image, wanted: list[str]) -> bool:
    labels = _labels(image)
    for w in wanted:
        key, sep, value = w.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _bool(values: list[str], name: str) -> bool:
    v = values[-1].lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{name}={values[-1]}'")


def entry(image: Image, parent: str, containers: int = -1, shared: int = -1) -> dict[str, Any]:
    return {"Id": image.id, "ParentId": parent, "RepoTags": list(image.references),
            "RepoDigests": list(image.repo_digests),
            "Created": unix_seconds(image.created), "Size": image.size,
            "SharedSize": shared, "VirtualSize": image.size, "Labels": _labels(image) or None,
            "Containers": containers}


def list_images(engine: Any, all_: bool = False,
                filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """``GET /images/json``: filters dangling, label, reference, before, since."""
    store: ImageStore = engine.images
    filters = filters or {}
    known = {"dangling", "label", "reference", "before", "since"}
    for k in filters:
        if k not in known:
            raise InvalidArgument(f"invalid filter '{k}'")
    images = store.list()
    live = {i.id for i in images}
    parents = {c: p for c, p in _parents(engine).items() if c in live and p in live}
    with_children = set(parents.values())
    before = since = None
    if filters.get("before"):
        before = unix_seconds(store.resolve(filters["before"][-1]).created)
    if filters.get("since"):
        since = unix_seconds(store.resolve(filters["since"][-1]).created)
    out = []
    for im in images:
        dangling = not im.references and not im.repo_digests
        if not all_ and dangling and im.id in with_children:
            continue   # an intermediate build step
        if "dangling" in filters and _bool(filters["dangling"], "dangling") != (
                dangling and im.id not in with_children):
            continue
        if filters.get("label") and not _label_matches(im, filters["label"]):
            continue
        if filters.get("reference") and not _ref_matches(im, filters["reference"]):
            continue
        created = unix_seconds(im.created)
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        out.append(entry(im, parents.get(im.id, "")))
    return out


def remove(engine: Any, ref: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
    """``docker rmi``; then the untagged, unused build parents nothing else needs."""
    store: ImageStore = engine.images
    users = used_by(engine)
    records = store.remove(ref, force=force, in_use=users)
    deleted = [r["Deleted"] for r in records if "Deleted" in r and r["Deleted"] in _ids(records)]
    if prune and deleted:
        records.extend(_remove_parents(engine, deleted[0], users))
    return records


def _ids(records: list[dict[str, str]]) -> set[str]:
    return {r["Deleted"] for r in records if "Deleted" in r}


def _remove_parents(engine: Any, image_id: str, users: UsedBy) -> list[dict[str, str]]:
    store: ImageStore = engine.images
    parents = _parents(engine)
    out: list[dict[str, str]] = []
    current = parents.get(image_id)
    while current and store.has_image(current):
        image = store.resolve(current)
        live = {i.id for i in store.list()}
        others = [c for c, p in parents.items() if p == current and c in live]
        if image.references or image.repo_digests or others or users(current):
            break
        try:
            out.extend(store.remove(current, in_use=users))
        except PyjailError:
            break
        current = parents.get(current)
    return out


def prune(engine: Any, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """``POST /images/prune``: dangling images (all unused with dangling=false)."""
    store: ImageStore = engine.images
    filters = filters or {}
    for k in filters:
        if k not in ("dangling", "until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{k}'")
    dangling_only = _bool(filters["dangling"], "dangling") if filters.get("dangling") else True
    until = None
    if filters.get("until"):
        from pyjail.engine import Engine
        until = Engine.parse_time(filters["until"][-1]) // 1_000_000_000
    users = used_by(engine)
    sizes = layer_sizes(store)
    deleted: list[dict[str, str]] = []
    parents = _parents(engine)
    changed = True
    while changed:   # removing a child can make its build parent dangling
        changed = False
        images = store.list()
        live = {i.id for i in images}
        with_children = {p for c, p in parents.items() if c in live}
        for im in images:
            if users(im.id) or im.id in with_children:
                continue
            if dangling_only and (im.references or im.repo_digests):
                continue
            if until is not None and unix_seconds(im.created) >= until:
                continue
            if filters.get("label") and not _label_matches(im, filters["label"]):
                continue
            if filters.get("label!") and _label_matches(im, filters["label!"]):
                continue
            try:
                deleted.extend(store.remove(im.id, force=True, in_use=users))
                changed = True
            except (Conflict, NotFound):
                continue
    reclaimed = sum(sizes.get(r["Deleted"], 0) for r in deleted if "Deleted" in r)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def layer_sizes(store: ImageStore) -> dict[str, int]:
    """chain id -> unpacked size, for every layer of every image."""
    out: dict[str, int] = {}
    for im in store.list():
        for chain_id, size in zip(im.chain_ids, store.layer_sizes(im), strict=True):
            out[chain_id] = size
    return out


def usage(engine: Any) -> tuple[list[dict[str, Any]], int]:
    """``/system/df``: images with exact Size/SharedSize/Containers, and LayersSize."""
    store: ImageStore = engine.images
    images = store.list()
    counts: dict[str, int] = {}
    for c in engine.containers.all():
        counts[c.record.get("Image", "")] = counts.get(c.record.get("Image", ""), 0) + 1
    users: dict[str, int] = {}
    sizes: dict[str, int] = {}
    per_image: dict[str, list[tuple[str, int]]] = {}
    for im in images:
        layers = list(zip(im.chain_ids, store.layer_sizes(im), strict=True))
        per_image[im.id] = layers
        for chain_id, size in layers:
            users[chain_id] = users.get(chain_id, 0) + 1
            sizes[chain_id] = size
    parents = _parents(engine)
    out = []
    for im in images:
        shared = sum(s for c, s in per_image[im.id] if users[c] > 1)
        out.append(entry(im, parents.get(im.id, ""), counts.get(im.id, 0), shared))
    return out, sum(sizes.values())


def intermediates(engine: Any, images: list[Image] | None = None) -> set[str]:
    """Untagged build steps that are the parent of a live image (``docker images`` hides
    them, ``image prune`` keeps them: they go with their child)."""
    images = images if images is not None else engine.images.list()
    live = {i.id for i in images}
    untagged = {i.id for i in images if not i.references and not i.repo_digests}
    return {p for c, p in _parents(engine).items() if c in live and p in untagged}


def reclaimed(sizes: dict[str, int], records: list[dict[str, str]]) -> int:
    """Bytes freed by a removal: the layers its ``Deleted`` records name (sizes taken
    before the removal with ``layer_sizes``)."""
    return sum(sizes.get(r.get("Deleted", ""), 0) for r in records)
