"""``docker pull``: manifest (or index) -> config -> layers, verified, then registered.

Nothing reaches the image store before every byte is verified: blobs are downloaded into
temp files (``.tmp-<pid>-…`` in the blob directory, which the store sweeps after a crash),
each checked against its sha256 digest; only then does one locked store call unpack the
layers, check their diff_ids against the config and record the image. A failure at any
point deletes the temp files and leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyjail.errors import ImageNotFound
from pyjail.images import reference as refs_mod
from pyjail.images.registry import progress as p
from pyjail.images.registry.auth import Credentials
from pyjail.images.registry.client import RegistryClient
from pyjail.images.registry.errors import DigestMismatch, ManifestUnknown, RegistryError
from pyjail.images.registry.media import (
    ACCEPT,
    CONFIG_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    select_platform,
)
from pyjail.images.store import Image, ImageStore

CHUNK = 1 << 16


def pull(store: ImageStore, reference: str, *, credentials: Credentials | None = None,
         platform: str | None = None, insecure_registries: Iterable[str] = (),
         certs_dirs: Iterable[str | os.PathLike[str]] = (),
         progress: p.Progress = p.ignore) -> Image:
    """Pull ``reference`` (tag ``latest`` if none) and tag it; returns the image."""
    ref = refs_mod.parse(reference)
    client = RegistryClient(ref.domain, ref.path, credentials, actions="pull",
                            insecure_registries=insecure_registries, certs_dirs=certs_dirs)
    try:
        return _pull(store, ref, client, platform, progress)
    finally:
        client.close()


def _pull(store: ImageStore, ref: refs_mod.Reference, client: RegistryClient,
          platform: str | None, progress: p.Progress) -> Image:
    target = ref.digest or ref.tag or refs_mod.DEFAULT_TAG
    try:
        body, media, _ = client.get_manifest(target, ACCEPT)
    except ManifestUnknown:
        raise ManifestUnknown(f"manifest for {ref.familiar()} not found: manifest unknown: "
                              "manifest unknown") from None
    progress(p.status(f"Pulling from {ref.path}", ref.tag or ref.digest))
    top_digest = _sha256(body)
    if ref.digest and top_digest != ref.digest:
        raise DigestMismatch(f"manifest verification failed for digest {ref.digest}")
    manifest = _object(body, "manifest")
    media = media or manifest.get("mediaType", "")
    if media in INDEX_TYPES or "manifests" in manifest:
        chosen = select_platform(manifest, platform)
        body, media, _ = client.get_manifest(chosen["digest"], ACCEPT)
        if _sha256(body) != chosen["digest"]:
            raise DigestMismatch(f"manifest verification failed for digest {chosen['digest']}")
        manifest = _object(body, "manifest")
        media = media or manifest.get("mediaType", "")
    if media not in MANIFEST_TYPES and manifest.get("schemaVersion") != 2:
        raise RegistryError(f"unsupported manifest media type {media or 'schema 1'}: only Docker "
                            "v2 schema 2 and OCI manifests can be pulled")
    config_desc = manifest.get("config") or {}
    if config_desc.get("mediaType") not in CONFIG_TYPES:
        raise RegistryError(f"unsupported config media type {config_desc.get('mediaType')}")
    image_id = config_desc["digest"]
    names = [ref.with_tag(ref.tag) if ref.tag else None,
             refs_mod.Reference(ref.domain, ref.path, None, top_digest)]
    wanted = [n for n in names if n is not None]
    try:
        before: str | None = store.resolve(str(wanted[0])).id
    except ImageNotFound:
        before = None
    layers = list(manifest.get("layers") or [])
    if store.has_image(image_id):   # every layer is here already: only names change
        for layer in layers:
            progress(p.status("Already exists", p.short(layer["digest"])))
        image = store.resolve(image_id)
        store.add_references(image.id, wanted)
    else:
        image = _download_and_register(store, client, config_desc, layers, body, wanted,
                                       progress)
    progress(p.status(f"Digest: {top_digest}"))
    fresh = before != image.id
    progress(p.status(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
                      f"for {ref.familiar()}"))
    return store.resolve(image.id)


def _download_and_register(store: ImageStore, client: RegistryClient, config_desc: dict,
                           layers: list[dict[str, Any]], manifest_body: bytes,
                           names: list[refs_mod.Reference], progress: p.Progress) -> Image:
    temps: list[Path] = []
    try:
        for layer in layers:
            progress(p.status("Pulling fs layer", p.short(layer["digest"])))
        config_path = _download(store, client, config_desc, None)
        temps.append(config_path)
        config_bytes = config_path.read_bytes()
        files: list[Path] = []
        for layer in layers:
            path = _download(store, client, layer, progress)
            temps.append(path)
            files.append(path)
        for layer in layers:
            progress(p.status("Extracting", p.short(layer["digest"])))
        image = store.add_distribution_image(config_bytes, manifest_body, files, names)
        for layer in layers:
            progress(p.status("Pull complete", p.short(layer["digest"])))
        return image
    finally:
        for path in temps:
            path.unlink(missing_ok=True)


def _download(store: ImageStore, client: RegistryClient, desc: dict[str, Any],
              progress: p.Progress | None) -> Path:
    """Fetch one blob into a temp file next to the blob store and verify its digest."""
    digest = str(desc.get("digest", ""))
    size = int(desc.get("size") or 0)
    if not digest.startswith("sha256:"):
        raise RegistryError(f"unsupported digest {digest!r}")
    tmp = store.blobs.dir / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
    hasher = hashlib.sha256()
    meter = p.Throttle(progress, "Downloading", p.short(digest), size) if progress else None
    try:
        with client.open_blob(digest) as r, open(tmp, "wb") as f:
            try:
                for chunk in r.iter_content(CHUNK):
                    hasher.update(chunk)
                    f.write(chunk)
                    if meter is not None:
                        meter.add(len(chunk))
            except Exception as exc:   # the transfer broke off (urllib3/requests errors)
                raise RegistryError(f"error pulling {digest}: {exc}") from None
            f.flush()
            os.fsync(f.fileno())
        got = "sha256:" + hasher.hexdigest()
        if got != digest:
            raise DigestMismatch(f"filesystem layer verification failed for digest {digest}"
                                 f" (got {got})")
        if size and os.path.getsize(tmp) != size:
            raise DigestMismatch(f"blob {digest}: expected {size} bytes")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if progress is not None:
        progress(p.status("Verifying Checksum", p.short(digest)))
        progress(p.status("Download complete", p.short(digest)))
    return tmp


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"invalid {what}: {exc}") from None
    if not isinstance(value, dict):
        raise RegistryError(f"invalid {what}: not a JSON object")
    return value
