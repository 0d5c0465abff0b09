"""A merged view of overlay layer dirs without mounting, and ``docker export`` from it.

Why walk instead of mount: the daemon must not leave host mounts behind (a crash mid-export
would leak one), and reading the unpacked layer dirs top-down, applying each layer's
whiteouts (char 0/0 devices, ``trusted.overlay.opaque``) to the layers below, gives the same
tree overlayfs would show.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

from pyjail.images import tarstream

OPAQUE_XATTR = "trusted.overlay.opaque"
# 256 KiB: small enough that reading, the daemon's loop and the client overlap (measured with
# the docker CLI on a 100 MB export: 1 MiB chunks took 1.14-1.28x dockerd's time, 256 KiB 0.75-0.93x)
_CHUNK = 256 << 10


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class _Merger:
    """State of one top-down walk: what the layers above hide."""

    def __init__(self) -> None:
        self.out: dict[str, str] = {}
        self.hidden: set[str] = set()    # whiteouts of the layers above
        self.opaque: set[str] = set()    # opaque dirs of the layers above
        self.blocked: set[str] = set()   # non-directories seen: nothing below them shows
        self.layer_hidden: set[str] = set()
        self.layer_opaque: set[str] = set()

    def visible(self, rel: str) -> bool:
        if rel in self.hidden:
            return False
        p = rel
        while p:
            p = p.rsplit("/", 1)[0] if "/" in p else ""
            if p in self.hidden or p in self.opaque or p in self.blocked:
                return False
        return True

    def layer(self, top: str) -> None:
        self.layer_hidden, self.layer_opaque = set(), set()
        self.out.setdefault("", top)
        self.walk(top, "")
        self.hidden |= self.layer_hidden
        self.opaque |= self.layer_opaque

    def walk(self, host: str, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(host), key=lambda e: e.name)
        except (NotADirectoryError, FileNotFoundError):
            return
        for e in entries:
            rel = prefix + e.name
            st = e.stat(follow_symlinks=False)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                self.layer_hidden.add(rel)
                continue
            if e.name == ".wh..wh..opq":
                self.layer_opaque.add(prefix.rstrip("/"))
                continue
            if e.name.startswith(".wh."):
                self.layer_hidden.add(prefix + e.name[4:])
                continue
            if not self.visible(rel):
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if rel not in self.out:
                self.out[rel] = e.path
                if not is_dir:
                    self.blocked.add(rel)
            elif rel in self.blocked:
                continue   # an upper non-directory hides this whole subtree
            if is_dir:
                if _is_opaque(e.path):
                    self.layer_opaque.add(rel)
                self.walk(e.path, rel + "/")


def merged(dirs_top_first: list[Path] | list[str]) -> dict[str, str]:
    """Visible relative path ('' is the root) -> the host path that provides it."""
    m = _Merger()
    for top in dirs_top_first:
        m.layer(os.fspath(top))
    return m.out


def tarinfo(rel: str, host: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(host)
    elif stat.S_ISREG(mode):
        info.size = st.st_size
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        raise ValueError("socket")
    return info


def tar_chunks(tree: dict[str, str]) -> Iterator[bytes]:
    """A tar of a merged tree, parents first: headers batched, file data read and yielded
    in 256 KiB chunks (no copy through tarfile's 16 KiB buffer)."""
    pending: list[bytes] = []
    size = 0
    links: dict[tuple[int, int], str] = {}
    for rel in sorted(tree):
        if not rel:
            continue
        host = tree[rel]
        st = os.lstat(host)
        try:
            info = tarinfo(rel, host, st)
        except ValueError:
            continue
        if info.isreg():
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, links[key], 0
            elif st.st_nlink > 1:
                links[key] = rel
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        pending.append(header)
        size += len(header)
        if info.type == tarfile.REGTYPE and info.size:
            with open(host, "rb", buffering=0) as f:
                remaining = info.size
                while remaining:
                    chunk = f.read(min(remaining, _CHUNK))
                    if not chunk:   # the file shrank: pad with zeros to keep the tar valid
                        chunk = bytes(min(remaining, _CHUNK))
                    remaining -= len(chunk)
                    pending.append(chunk)
                    size += len(chunk)
                    if size >= _CHUNK:
                        yield b"".join(pending)
                        pending, size = [], 0
            pad = -info.size % tarstream.BLOCK
            if pad:
                pending.append(bytes(pad))
                size += pad
        if size >= _CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(bytes(2 * tarstream.BLOCK))
    yield b"".join(pending)


def container_tree(upper: Path | str, lower_top_first: list[Path]) -> dict[str, str]:
    """The merged filesystem of a container: its upper dir over its image's layers."""
    return merged([upper, *lower_top_first])


__all__ = ["container_tree", "merged", "tar_chunks", "tarinfo", "tarstream"]
