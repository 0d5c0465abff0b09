"""``docker cp``: copy files out of and into a container (archive GET/HEAD/PUT).

A running container is reached through ``/proc/PID/root`` so its volumes and binds are
seen as the process sees them; every path is resolved inside that root (symlinks
included) so nothing can point the copy at the host. A stopped container is read from
its merged layers and written into its upper directory.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .. import errors
from ..images.export import container_tree, tar_chunks
from ..images.layers import extract_layer
from ..runtime.mounts import secure_join

_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
_GO_MODE_SETUID = 1 << 23
_GO_MODE_SETGID = 1 << 22
_GO_MODE_STICKY = 1 << 20


def _go_mode(st: os.stat_result) -> int:
    mode = stat.S_IMODE(st.st_mode) & 0o777
    if stat.S_ISDIR(st.st_mode):
        mode |= _GO_MODE_DIR
    if stat.S_ISLNK(st.st_mode):
        mode |= _GO_MODE_SYMLINK
    if st.st_mode & stat.S_ISUID:
        mode |= _GO_MODE_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= _GO_MODE_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= _GO_MODE_STICKY
    return mode


def stat_header(name: str, host: str) -> str:
    """The ``X-Docker-Container-Path-Stat`` value: base64 JSON, as the docker CLI reads it."""
    st = os.lstat(host)
    link = os.readlink(host) if stat.S_ISLNK(st.st_mode) else ""
    data = {"name": name, "size": st.st_size, "mode": _go_mode(st),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
            "linkTarget": link}
    return base64.b64encode(json.dumps(data).encode()).decode()


def _layers(engine, c) -> list[Path]:
    return [Path(p) for p in engine.images.layer_dirs(engine.images.resolve(c.record["Image"]))]


def _normalize(path: str) -> str:
    if not path:
        raise errors.InvalidArgument("path is required")
    if not path.startswith("/"):
        path = "/" + path  # docker cp paths are relative to the container root
    return os.path.normpath(path)


def resolve(engine, ref: str, path: str) -> tuple[str, str, dict[str, str] | None]:
    """(basename, host path, merged tree for a stopped container or None)."""
    c = engine.containers.get(ref)
    path = _normalize(path)
    name = os.path.basename(path) or "/"
    if c.running:
        host = secure_join(f"/proc/{c.state['Pid']}/root", path)
        if not os.path.lexists(host):
            raise errors.NotFound(f"Could not find the file {path} in container {ref}")
        return name, host, None
    tree = container_tree(c.dir / "diff", _layers(engine, c))
    rel = path.strip("/")
    if rel not in tree:
        raise errors.NotFound(f"Could not find the file {path} in container {ref}")
    return name, tree[rel], tree


def get_archive(engine, ref: str, path: str) -> tuple[str, Iterator[bytes]]:
    """(stat header, tar chunks) of ``path``, its basename at the top of the tar."""
    name, host, tree = resolve(engine, ref, path)
    header = stat_header(name, host)
    top = name if name != "/" else "."
    selected: dict[str, str] = {}
    if tree is not None:
        rel = _normalize(path).strip("/")
        for key, value in tree.items():
            if key == rel or not rel or key.startswith(rel + "/"):
                suffix = key[len(rel):].lstrip("/") if rel else key
                selected[f"{top}/{suffix}" if suffix else top] = value
    else:
        selected[top] = host
        if os.path.isdir(host) and not os.path.islink(host):
            for dirpath, dirnames, filenames in os.walk(host):
                for entry in dirnames + filenames:
                    full = os.path.join(dirpath, entry)
                    selected[f"{top}/{os.path.relpath(full, host)}"] = full
    return header, tar_chunks(selected)


def put_archive(engine, ref: str, path: str, tar: BinaryIO) -> None:
    """Unpack a tar into the directory ``path`` of the container (it must exist)."""
    c = engine.containers.get(ref)
    path = _normalize(path)
    if c.running:
        dest = secure_join(f"/proc/{c.state['Pid']}/root", path)
        if not os.path.exists(dest):
            raise errors.NotFound(f"Could not find the file {path} in container {ref}")
        if not os.path.isdir(dest):
            raise errors.InvalidArgument(f"extraction point is not a directory: {path}")
    else:
        tree = container_tree(c.dir / "diff", _layers(engine, c))
        rel = path.strip("/")
        if rel not in tree:
            raise errors.NotFound(f"Could not find the file {path} in container {ref}")
        if not os.path.isdir(tree[rel]):
            raise errors.InvalidArgument(f"extraction point is not a directory: {path}")
        dest = secure_join(str(c.dir / "diff"), path)
        _copy_up_dirs(c.dir / "diff", rel, tree)
    extract_layer(tar, dest, for_overlay=False)


def _copy_up_dirs(upper: Path, rel: str, tree: dict[str, str]) -> None:
    """Create the directory chain in the upper dir with the lower dirs' owner and mode."""
    parts = [p for p in rel.split("/") if p]
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        target = upper / sub
        if target.exists():
            continue
        st = os.stat(tree[sub])
        target.mkdir(mode=stat.S_IMODE(st.st_mode))
        os.chown(target, st.st_uid, st.st_gid)
