"""Build an image from a Dockerfile in the Jupyter server's root directory.

The browser names a file as the file browser shows it (a path relative to the server's
``root_dir``); the build context is that file's folder, sent to the daemon as a tar. A
path that leaves the root (``..``, an absolute path, a symlink out) is refused, so the
sidebar cannot read files the file browser could not.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tornado import web

from pyjail.client.connection import Client

CONTEXT_LIMIT = 512 * 1024 * 1024   # bytes; a context larger than this is refused
SKIPPED = {".ipynb_checkpoints", ".git", "__pycache__", "node_modules"}


def resolve_dockerfile(root_dir: str, relative: str) -> Path:
    """The Dockerfile's real path, or HTTP 400/404 when it is outside the root or missing."""
    root = Path(root_dir).resolve()
    rel = (relative or "").strip().lstrip("/")
    if not rel:
        raise web.HTTPError(400, "%s", "give the Dockerfile's path")
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise web.HTTPError(400, "%s", f"{relative} is outside the Jupyter root directory")
    if not path.is_file():
        raise web.HTTPError(404, "%s", f"no such file: {relative}")
    return path


def context_tar(folder: Path) -> bytes:
    """The folder as an uncompressed tar (what ``docker build`` sends), checkpoints left out."""
    out = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if SKIPPED & set(rel.parts):
                continue
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
                if total > CONTEXT_LIMIT:
                    raise web.HTTPError(413, "%s", f"the build context {folder} is larger "
                                                   f"than {CONTEXT_LIMIT >> 20} MiB")
            tar.add(path, arcname=str(rel), recursive=False)
    return out.getvalue()


def build_stream(client: Client, dockerfile: Path, tag: str | None) -> Iterator[dict[str, Any]]:
    """The daemon's build progress lines for ``dockerfile`` with its folder as the context."""
    context = context_tar(dockerfile.parent)
    yield {"status": f"sending build context ({len(context)} bytes)"}
    yield from client.api.build(fileobj=io.BytesIO(context), custom_context=True,
                                tag=tag or None, dockerfile=dockerfile.name, rm=True,
                                decode=True)
