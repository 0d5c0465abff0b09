"""``docker push``: layers (gzip-compressed when stored plain), config, then the manifest.

Each blob is skipped when the registry has it (HEAD), mounted from another repository of
the same registry that we know holds it (a tag or RepoDigest in our store), or uploaded —
monolithic, or in PATCH chunks for big blobs. Plain layers are gzipped into a temp file
with the digest computed while compressing; the config keeps the uncompressed diff_ids,
so the image id is unchanged and a pull elsewhere yields the same id.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pyjail.errors import InvalidArgument
from pyjail.fsutil import atomic_write_json, read_json
from pyjail.images import reference as refs_mod
from pyjail.images.registry import media
from pyjail.images.registry import progress as p
from pyjail.images.registry.auth import Credentials
from pyjail.images.registry.client import RegistryClient
from pyjail.images.store import Image, ImageStore

CHUNK = 1 << 20
DEFAULT_CHUNK_SIZE = 64 << 20   # blobs above this go up in PATCH chunks of this size


def push(store: ImageStore, reference: str, *, credentials: Credentials | None = None,
         insecure_registries: Iterable[str] = (), certs_dirs: Iterable[str | os.PathLike[str]] = (),
         progress: p.Progress = p.ignore, chunk_size: int | None = DEFAULT_CHUNK_SIZE,
         all_tags: bool = False) -> list[str]:
    """Push ``reference`` (or, with ``all_tags``, every tag of its repository); returns the
    manifest digests pushed."""
    ref = refs_mod.parse(reference, default_tag=not all_tags)
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    if all_tags and not ref.tag:
        tags = sorted({t for im in store.list() for t in im.references
                       if refs_mod.parse(t).name == ref.name})
        if not tags:
            raise InvalidArgument(f"An image does not exist locally with the tag: {ref.familiar()}")
        targets = [refs_mod.parse(t) for t in tags]
    else:
        targets = [ref]
    images = [(t, store.resolve(str(t))) for t in targets]
    progress(p.status(f"The push refers to repository [{ref.name}]"))
    client = RegistryClient(ref.domain, ref.path, credentials, actions="pull,push",
                            insecure_registries=insecure_registries, certs_dirs=certs_dirs)
    try:
        return [_push_one(store, client, t, image, progress, chunk_size) for t, image in images]
    finally:
        client.close()


def _push_one(store: ImageStore, client: RegistryClient, ref: refs_mod.Reference, image: Image,
              progress: p.Progress, chunk_size: int | None) -> str:
    layers = store.layer_descriptors(image)
    ids = [p.short(d) for d in image.diff_ids]
    for id_ in reversed(ids):
        progress(p.status("Preparing", id_))
    sources = _mount_sources(store, ref)
    pushed: list[dict[str, Any]] = [{}] * len(layers)
    for i in reversed(range(len(layers))):
        pushed[i] = _push_layer(store, client, layers[i], ids[i], sources, progress, chunk_size)
    config = store.blobs.get(image.id)
    if not client.blob_exists(image.id):
        _upload(client, image.id, iter([config]), len(config), chunk_size)
    zstd = any(d["mediaType"] == media.OCI_LAYER_ZSTD for d in pushed)
    if zstd:
        manifest = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
                    "config": {"mediaType": media.OCI_CONFIG, "digest": image.id,
                               "size": len(config)},
                    "layers": pushed}
    else:
        manifest = {"schemaVersion": 2, "mediaType": media.DOCKER_MANIFEST,
                    "config": {"mediaType": media.DOCKER_CONFIG, "digest": image.id,
                               "size": len(config)},
                    "layers": [{**d, "mediaType": media.DOCKER_LAYER_GZIP} for d in pushed]}
    body = json.dumps(manifest, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client.put_manifest(ref.tag or refs_mod.DEFAULT_TAG, body, manifest["mediaType"])
    store.add_references(image.id, [refs_mod.Reference(ref.domain, ref.path, None, digest)])
    tag = ref.tag or refs_mod.DEFAULT_TAG
    progress(p.status(f"{tag}: digest: {digest} size: {len(body)}"))
    progress({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(body)}})
    return digest


def _mount_sources(store: ImageStore, ref: refs_mod.Reference) -> dict[str, str]:
    """Blob digest -> another repository of the same registry whose image has it."""
    out: dict[str, str] = {}
    for image in store.list():
        for name in (*image.references, *image.repo_digests):
            other = refs_mod.parse(name, default_tag=False)
            if other.domain != ref.domain or other.path == ref.path:
                continue
            for desc in store.layer_descriptors(image):
                out.setdefault(desc["digest"], other.path)
    return out


def _push_layer(store: ImageStore, client: RegistryClient, desc: dict[str, Any], id_: str,
                sources: dict[str, str], progress: p.Progress,
                chunk_size: int | None) -> dict[str, Any]:
    """Push one layer; returns its descriptor as the manifest lists it."""
    path = store.blobs.path(desc["digest"])
    temp: Path | None = None
    plain = desc["mediaType"] in (media.OCI_LAYER, media.DOCKER_LAYER)
    known = _gzip_cache(store).get(desc["digest"]) if plain else None
    if known and client.blob_exists(known["digest"]):   # skip compressing it again
        progress(p.status("Layer already exists", id_))
        return {"mediaType": media.OCI_LAYER_GZIP, **known}
    try:
        if plain:
            temp, digest, size = _gzip(store, path)
            path, kind = temp, media.OCI_LAYER_GZIP
            _remember_gzip(store, desc["digest"], digest, size)
        else:
            digest, size, kind = desc["digest"], int(desc["size"]), desc["mediaType"]
        out = {"mediaType": kind, "digest": digest, "size": size}
        if client.blob_exists(digest):
            progress(p.status("Layer already exists", id_))
            return out
        location = None
        source = sources.get(desc["digest"])
        if source is not None:   # our gzip is deterministic: the same digest there
            location = client.mount_blob(digest, source)
            if location is None:
                progress(p.status(f"Mounted from {source}", id_))
                return out
        progress(p.status("Pushing", id_))
        with open(path, "rb") as f:
            meter = p.Throttle(progress, "Pushing", id_, size)
            _upload(client, digest, _read_chunks(f, meter, chunk_size), size, chunk_size,
                    location)
        progress(p.status("Pushed", id_))
        return out
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()


def _upload(client: RegistryClient, digest: str, chunks: Iterator[bytes], size: int,
            chunk_size: int | None, location: str | None = None) -> None:
    client.upload(location or client.start_upload(), digest, chunks, size, chunk_size)


def _read_chunks(f: BinaryIO, meter: p.Throttle, chunk_size: int | None) -> Iterator[bytes]:
    n = chunk_size or CHUNK
    while data := f.read(n):
        meter.add(len(data))
        yield data


class _HashingFile:
    """A write-only file that hashes and counts what gzip writes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.hash, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _gzip(store: ImageStore, src: Path) -> tuple[Path, str, int]:
    """gzip a plain layer into a temp file (deterministic: no name, mtime 0), hashing the
    compressed bytes as they are written: (path, digest, size)."""
    tmp = store.blobs.dir / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        with open(tmp, "wb") as raw, open(src, "rb") as inp:
            sink = _HashingFile(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,  # type: ignore[arg-type]
                               compresslevel=6) as gz:
                while data := inp.read(CHUNK):
                    gz.write(data)
        return tmp, "sha256:" + sink.hash.hexdigest(), sink.size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _gzip_cache_path(store: ImageStore) -> Path:
    return store.root / "registry-gzip.json"


def _gzip_cache(store: ImageStore) -> dict[str, dict[str, Any]]:
    """Plain layer digest -> {digest, size} of its gzip form (so a re-push need not
    compress before asking the registry whether it has the blob)."""
    try:
        return read_json(_gzip_cache_path(store))
    except (OSError, ValueError):
        return {}


def _remember_gzip(store: ImageStore, plain: str, digest: str, size: int) -> None:
    cache = _gzip_cache(store)
    cache[plain] = {"digest": digest, "size": size}
    atomic_write_json(_gzip_cache_path(store), cache)
