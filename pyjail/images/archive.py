"""``docker save`` and ``docker load``: Docker's and OCI's archive formats.

save writes what Docker 25+ writes: an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/…``) that is also a docker-archive (``manifest.json``, ``repositories``),
with the config and manifest blobs byte for byte as stored, so ids and digests survive a
round trip. load reads that, dockerd 20.10's legacy layout (``<id>/layer.tar``,
``<id>.json``) and plain OCI layouts. Every file is checked against its digest (and every
layer against the config's diff_ids) before anything is registered: a bad archive
stores nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pyjail.errors import InvalidArgument, PyjailError
from pyjail.images import reference as refs_mod
from pyjail.images import tarstream
from pyjail.images.blobs import BlobWriter, canonical_json
from pyjail.images.store import MEDIA_MANIFEST, Image, ImageStore, goarch

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_CHUNK = 1 << 20
_BLOCK = 512
_SMALL = 64 << 10      # archive files up to this size stay in memory (configs, manifests)
_MEMORY = 64 << 20     # ... up to this much in all; the rest goes to pending blobs


# -- save ------------------------------------------------------------------------------------

def _header(name: str, size: int = 0, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mtime = 0
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    return bytes(-size % _BLOCK)


def _file(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + _pad(len(data))


def _selection(store: ImageStore, names: list[str]) -> list[tuple[Image, list[str]]]:
    """(image, the tags to record for it) in request order, one entry per image."""
    chosen: dict[str, tuple[Image, list[str]]] = {}
    for name in names:
        image = store.resolve(name)
        tags: list[str] = []
        if not refs_mod.is_full_id(name) and not image.id[7:].startswith(
                name.removeprefix("sha256:")):
            ref = refs_mod.parse(name)
            if not ref.digest:
                tags.append(ref.familiar())
        entry = chosen.setdefault(image.id, (image, []))
        entry[1].extend(t for t in tags if t not in entry[1])
    return list(chosen.values())


def save(store: ImageStore, names: list[str]) -> Iterator[bytes]:
    """A tar stream (in chunks) of the named images; resolves every name first."""
    selection = _selection(store, names)
    return _save_stream(store, selection)


def _save_stream(store: ImageStore, selection: list[tuple[Image, list[str]]]) -> Iterator[bytes]:
    yield _header("blobs/", directory=True) + _header("blobs/sha256/", directory=True)
    written: set[str] = set()
    index: list[dict[str, Any]] = []
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image, tags in selection:
        layers = store.layer_descriptors(image)
        for desc in layers:
            digest = desc["digest"]
            if digest in written:
                continue
            written.add(digest)
            path = store.blobs.path(digest)
            size = os.path.getsize(path)
            yield _header(f"blobs/sha256/{digest[7:]}", size)
            with open(path, "rb", buffering=0) as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
            yield _pad(size)
        config = store.config_bytes(image.id)
        manifest = store.manifest_bytes(image)
        for digest, data in ((image.id, config), (image.manifest_digest, manifest)):
            if digest not in written:
                written.add(digest)
                yield _file(f"blobs/sha256/{digest[7:]}", data)
        media = json.loads(manifest).get("mediaType") or MEDIA_MANIFEST
        desc = {"mediaType": media, "digest": image.manifest_digest, "size": len(manifest)}
        for tag in tags or [None]:
            if tag is None:
                index.append(dict(desc))
                continue
            ref = refs_mod.parse(tag)
            index.append({**desc, "annotations": {
                "io.containerd.image.name": str(ref), "org.opencontainers.image.ref.name":
                ref.tag or "latest"}})
            if layers:
                repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = \
                    layers[-1]["digest"][7:]
        manifest_json.append({"Config": f"blobs/sha256/{image.id[7:]}",
                              "RepoTags": list(tags) or None,
                              "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in layers]})
    yield _file("index.json", canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                              "manifests": index}))
    yield _file("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
    yield _file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    if repositories:
        yield _file("repositories", json.dumps(repositories, separators=(",", ":")).encode())
    yield bytes(2 * _BLOCK)


# -- load ------------------------------------------------------------------------------------

class _Archive:
    """An archive read in one pass: small files in memory, large ones straight into the
    blob store as pending (temp, unsynced) blobs, hashed while written.

    So a layer is read once, hashed once and written once before it is extracted; nothing
    is visible in the store until ``ImageStore.add_distribution_image`` commits it.
    """

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.small: dict[str, bytes] = {}
        self.spooled: dict[str, BlobWriter] = {}
        self.links: dict[str, str] = {}
        self._in_memory = 0

    def unpack(self, raw: BinaryIO) -> None:
        try:
            kind, chunks = tarstream.decompressed_chunks(raw)
            src = tarstream.Source(chunks)
            for m in tarstream.members(src):
                rel = posixpath.normpath("/" + m.name).lstrip("/")
                if not rel or m.type not in tarstream.REGULAR:
                    if rel and m.type in (tarstream.SYM, tarstream.LNK):
                        base = posixpath.dirname(rel) if m.type == tarstream.SYM else ""
                        self.links[rel] = posixpath.normpath(
                            "/" + posixpath.join(base, m.linkname)).lstrip("/")
                    elif m.size:
                        src.skip(m.size)
                    continue
                self._file(rel, m.size, src)
            getattr(chunks, "close", lambda: None)()
        except PyjailError as exc:
            raise InvalidArgument(f"invalid archive: {exc}") from None

    def _file(self, rel: str, size: int, src: tarstream.Source) -> None:
        self.small.pop(rel, None)
        old = self.spooled.pop(rel, None)
        if old is not None:
            old.abort()
        if size <= _SMALL and self._in_memory + size <= _MEMORY:
            data = src.read(size)
            if len(data) < size:
                raise InvalidArgument("unexpected end of tar archive")
            self.small[rel] = data
            self._in_memory += size
            return
        w = self.store.blobs.writer()
        self.spooled[rel] = w
        for view in src.views(size):
            w.write(view)
        w.finish()

    def close(self) -> None:
        for w in self.spooled.values():
            w.abort()

    def resolve(self, rel: str) -> str:
        rel = posixpath.normpath("/" + rel).lstrip("/")
        for _ in range(10):
            if rel in self.links:
                rel = self.links[rel]
        if rel not in self.small and rel not in self.spooled:
            raise InvalidArgument(f"invalid archive: {rel} is missing")
        return rel

    def has(self, rel: str) -> bool:
        try:
            self.resolve(rel)
            return True
        except InvalidArgument:
            return False

    def read(self, rel: str) -> bytes:
        rel = self.resolve(rel)
        if rel in self.small:
            return self.small[rel]
        return self.spooled[rel].path.read_bytes()

    def json(self, rel: str) -> Any:
        try:
            return json.loads(self.read(rel))
        except ValueError as exc:
            raise InvalidArgument(f"invalid archive: {rel}: {exc}") from None

    def blob(self, rel: str) -> BlobWriter:
        """The file as a pending blob (small files are written out on demand)."""
        rel = self.resolve(rel)
        w = self.spooled.get(rel)
        if w is None:
            w = self.store.blobs.writer()
            self.spooled[rel] = w
            w.write(self.small.pop(rel))
            w.finish()
        return w

    def head(self, rel: str) -> bytes:
        """The first bytes of a file (its compression magic)."""
        rel = self.resolve(rel)
        if rel in self.small:
            return self.small[rel][:8]
        with open(self.spooled[rel].path, "rb") as f:
            return f.read(8)

    def digest(self, rel: str) -> str:
        rel = self.resolve(rel)
        if rel in self.small:
            return "sha256:" + hashlib.sha256(self.small[rel]).hexdigest()
        digest = self.spooled[rel].digest
        assert digest is not None
        return digest


def _blob(arc: _Archive, digest: str) -> str:
    """blobs/<alg>/<hex>, checked against its digest; returns its path in the archive."""
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64:
        raise InvalidArgument(f"unsupported digest {digest}")
    rel = f"blobs/sha256/{hexpart}"
    actual = arc.digest(rel)
    if actual != digest:
        raise InvalidArgument(f"invalid archive: blob {digest} has digest {actual}")
    return rel


def _media(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "application/vnd.oci.image.layer.v1.tar+gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return "application/vnd.oci.image.layer.v1.tar"


class _Plan:
    """One image to register: verified config, manifest, layers (archive paths) and names."""

    def __init__(self, config: bytes, manifest: bytes, layers: list[str],
                 tags: list[str]) -> None:
        self.config, self.manifest, self.layers, self.tags = config, manifest, layers, tags
        self.id = "sha256:" + hashlib.sha256(config).hexdigest()


def _synth_manifest(arc: _Archive, config: bytes, layers: list[str]) -> bytes:
    descs = []
    for rel in layers:
        w = arc.blob(rel)
        descs.append({"mediaType": _media(arc.head(rel)), "digest": w.digest, "size": w.size})
    return canonical_json({
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": descs})


def _plans_docker(arc: _Archive) -> list[_Plan]:
    """manifest.json (Docker's legacy and current formats)."""
    entries = arc.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    oci: dict[str, bytes] = {}   # config digest -> manifest bytes, from index.json
    if arc.has("index.json"):
        for _desc, data in _index_manifests(arc):
            oci[json.loads(data)["config"]["digest"]] = data
    plans = []
    for e in entries:
        config = arc.read(e["Config"])
        config_id = "sha256:" + hashlib.sha256(config).hexdigest()
        stem = posixpath.basename(e["Config"]).removesuffix(".json")
        if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) and stem != \
                config_id[7:]:
            raise InvalidArgument(f"invalid archive: config {e['Config']} has digest "
                                  f"{config_id}")
        layers = []
        for rel in e.get("Layers") or []:
            parts = rel.split("/")
            if len(parts) == 3 and parts[0] == "blobs":
                rel = _blob(arc, f"{parts[1]}:{parts[2]}")
            layers.append(arc.resolve(rel))
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument(f"invalid archive: bad image config {e['Config']}") from None
        if len(diff_ids) != len(layers):
            raise InvalidArgument(f"invalid archive: {e['Config']} lists {len(diff_ids)} "
                                  f"layers, manifest.json {len(layers)}")
        for rel, want in zip(layers, diff_ids, strict=True):
            if _media(arc.head(rel)).endswith(".tar"):   # plain tar: its digest is the diff_id
                got = arc.digest(rel)
                if got != want:
                    raise InvalidArgument(f"invalid archive: layer {rel} has diff_id {got}, "
                                          f"the config says {want}")
        manifest = oci.get(config_id) or _synth_manifest(arc, config, layers)
        plans.append(_Plan(config, manifest, layers, list(e.get("RepoTags") or [])))
    return plans


def _index_manifests(arc: _Archive, index: dict[str, Any] | None = None,
                     ) -> Iterator[tuple[dict, bytes]]:
    """Image manifests reachable from index.json (nested indexes: this platform's)."""
    index = index if index is not None else arc.json("index.json")
    for desc in index.get("manifests") or []:
        data = arc.read(_blob(arc, desc["digest"]))
        body = json.loads(data)
        media = desc.get("mediaType") or body.get("mediaType", "")
        if media in (MEDIA_INDEX, _DOCKER_LIST) or "manifests" in body:
            chosen = [d for d in body.get("manifests") or []
                      if (d.get("platform") or {}).get("architecture", goarch()) == goarch()]
            yield from _index_manifests(arc, {"manifests": chosen[:1]})
            continue
        yield desc, data


def _plans_oci(arc: _Archive) -> list[_Plan]:
    plans: dict[str, _Plan] = {}
    for desc, data in _index_manifests(arc):
        body = json.loads(data)
        config = arc.read(_blob(arc, body["config"]["digest"]))
        layers = [_blob(arc, d["digest"]) for d in body.get("layers") or []]
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ""
        ref_name = ann.get("org.opencontainers.image.ref.name") or ""
        if not name and ref_name and ("/" in ref_name or ":" in ref_name):
            name = ref_name
        plan = plans.setdefault(hashlib.sha256(data).hexdigest(),
                                _Plan(config, data, layers, []))
        if name:
            plan.tags.append(refs_mod.parse(name).familiar())
    return list(plans.values())


def load(store: ImageStore, src: BinaryIO, progress: Callable[[str], None]) -> list[str]:
    """Load every image of an archive; returns the image ids. ``progress`` gets lines."""
    arc = _Archive(store)
    try:
        arc.unpack(src)
        if arc.has("manifest.json"):
            plans = _plans_docker(arc)
        elif arc.has("index.json"):
            plans = _plans_oci(arc)
        else:
            raise InvalidArgument("invalid archive: no manifest.json or index.json")
        for plan in plans:   # validate everything before storing anything
            json.loads(plan.config)
            for t in plan.tags:
                refs_mod.parse(t)
        ids = []
        for plan in plans:
            refs = [refs_mod.parse(t) for t in plan.tags]
            for t in plan.tags:
                with contextlib.suppress(PyjailError):
                    old = store.resolve(t).id
                    if old != plan.id:
                        progress(f"The image {t} already exists, renaming the old one with "
                                 f"ID {old} to empty string\n")
            image = store.add_distribution_image(plan.config, plan.manifest,
                                                 [arc.blob(rel) for rel in plan.layers], refs)
            ids.append(image.id)
            if plan.tags:
                for t in plan.tags:
                    progress(f"Loaded image: {t}\n")
            else:
                progress(f"Loaded image ID: {image.id}\n")
        return ids
    finally:
        arc.close()
