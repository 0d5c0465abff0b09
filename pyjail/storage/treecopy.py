"""Copy a directory tree exactly (hardlinks, xattrs, owners, modes, symlinks, devices) and
prove the copy equal before anything is deleted.

GNU ``cp -a --preserve=all`` does the copy: it keeps hardlink groups, overlay whiteouts
(0:0 character devices) and ``trusted.overlay.*`` xattrs, which a Python copy would have
to re-implement. ``verify`` then walks both trees and compares everything ``cp`` promised.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from .. import errors

_CHUNK = 1 << 20


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the contents of ``src`` into the (existing, empty) directory ``dst``."""
    proc = subprocess.run(["cp", "-a", "--preserve=all", "--no-target-directory",
                           str(src), str(dst)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise errors.RuntimeFailure(f"copying {src} to {dst} failed: "
                                    f"{proc.stderr.strip().splitlines()[-1:] or proc.returncode}")


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def verify(src: Path, dst: Path, skip: set[str] = frozenset()) -> None:
    """Raise ``RuntimeFailure`` naming the first difference between the two trees.

    ``skip``: paths relative to the roots that the caller changed on purpose (markers).
    """
    links: dict[tuple[int, int], int] = {}

    def fail(rel: str, what: str) -> None:
        raise errors.RuntimeFailure(f"copy of {src} differs at {rel or '.'}: {what}")

    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        rel_dir = "" if rel_dir == "." else rel_dir
        names = sorted(n for n in dirnames + filenames if os.path.join(rel_dir, n) not in skip)
        try:
            there = {n for n in os.listdir(os.path.join(dst, rel_dir))
                     if os.path.join(rel_dir, n) not in skip}
        except OSError as exc:
            fail(rel_dir, exc.strerror or str(exc))
        if set(names) != there:
            fail(rel_dir, f"entries differ ({sorted(set(names) ^ there)[:5]})")
        for name in names:
            rel = os.path.join(rel_dir, name)
            a, b = os.path.join(src, rel), os.path.join(dst, rel)
            sa, sb = os.lstat(a), os.lstat(b)
            if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
                fail(rel, "file type")
            if (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid):
                fail(rel, "mode or owner")
            if _xattrs(a) != _xattrs(b):
                fail(rel, "extended attributes")
            if stat.S_ISLNK(sa.st_mode):
                if os.readlink(a) != os.readlink(b):
                    fail(rel, "symlink target")
            elif stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
                if sa.st_rdev != sb.st_rdev:
                    fail(rel, "device number")
            elif stat.S_ISREG(sa.st_mode):
                if sa.st_size != sb.st_size or sa.st_mtime_ns != sb.st_mtime_ns:
                    fail(rel, "size or modification time")
                if sa.st_nlink > 1:   # the copy must keep each hardlink group together
                    first = links.setdefault((sa.st_dev, sa.st_ino), sb.st_ino)
                    if first != sb.st_ino or sb.st_nlink != sa.st_nlink:
                        fail(rel, "hardlinks")
                if not _same_content(a, b):
                    fail(rel, "content")
