"""Media types of the distribution API, and picking a platform out of an index."""

from __future__ import annotations

import platform as platform_mod
from typing import Any

from pyjail.errors import InvalidArgument
from pyjail.images.registry.errors import ManifestUnknown
from pyjail.images.store import goarch

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG)
ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)


def host_variant() -> str | None:
    machine = platform_mod.machine()
    return {"aarch64": "v8", "armv7l": "v7", "armv6l": "v6"}.get(machine)


def parse_platform(text: str | None) -> tuple[str, str, str | None]:
    """``linux/arm64/v8`` -> (os, architecture, variant); empty means this host."""
    if not text:
        return "linux", goarch(), host_variant()
    parts = text.lower().split("/")
    if len(parts) == 1:
        return parts[0], goarch(), host_variant()
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform: {text}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_platform(index: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    """The index entry for the platform (this host's by default); variant only narrows."""
    os_, arch, variant = parse_platform(wanted)
    candidates = []
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") or {}
        if plat.get("os") != os_ or plat.get("architecture") != arch:
            continue
        if entry.get("mediaType") not in (*MANIFEST_TYPES, None):
            continue
        candidates.append(entry)
    if variant:
        exact = [e for e in candidates if (e.get("platform") or {}).get("variant") == variant]
        candidates = exact or candidates
    if not candidates:
        want = "/".join(x for x in (os_, arch, variant) if x)
        raise ManifestUnknown(f"no matching manifest for {want} in the manifest list entries")
    return candidates[0]
