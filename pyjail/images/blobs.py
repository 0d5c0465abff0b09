"""Content-addressed blob store: ``blobs/sha256/<hex>``, the OCI image-layout layout.

A blob's name is the sha256 of its bytes, so writing is idempotent and a half-written blob
can never be mistaken for a whole one: bytes go to a temp file in the same directory, are
fsynced, and only then renamed to their digest.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Self

from pyjail.errors import InvalidArgument, NotFound
from pyjail.fsutil import atomic_write_bytes, fsync_dir

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
TMP_PREFIX = ".tmp-"
COPY_CHUNK = 1 << 20
_WRITEBACK = 8 << 20      # start the disk write every 8 MiB, so the final fsync is short
_SYNC_FILE_RANGE_WRITE = 2


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now (sync_file_range, no wait):
    the data reaches the disk while we go on, instead of all at once in the fsync."""
    if _LIBC is not None:
        _LIBC.sync_file_range(fd, ctypes.c_int64(offset), ctypes.c_int64(length),
                              _SYNC_FILE_RANGE_WRITE)


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest: {digest!r}")
    return digest


def canonical_json(obj: Any) -> bytes:
    """The bytes an object is stored (and hashed) as: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class BlobWriter:
    """An open temp file that hashes what is written; ``commit`` names it by its digest.

    ``finish`` ends the writing and computes the digest without making the blob visible:
    ``docker load`` spools every layer first and commits only once the archive checked out.
    """

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.path = store.dir / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o600)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None
        self.committed = False
        self._flushed = 0
        # (staging dir holding diff/, content bytes): these bytes already unpacked; the
        # store moves it into place (unpacking.UnpackingSink), else it goes with the writer
        self.unpacked: tuple[Path, int] | None = None

    def write(self, data: bytes | memoryview) -> int:
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.size += len(data)
        if self.size - self._flushed >= _WRITEBACK:
            start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size
        return len(data)

    def finish(self) -> str:
        """No more writes: the digest of what was written."""
        if self.digest is None:
            self.digest = "sha256:" + self._hash.hexdigest()
        return self.digest

    def commit(self) -> str:
        """fsync, rename to ``blobs/sha256/<hex>`` (unless that blob exists) and return it."""
        digest = self.finish()
        if self.committed:
            return digest
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        final = self._store.path(digest)
        if final.exists():
            self.path.unlink()
        else:
            os.rename(self.path, final)
            fsync_dir(self._store.dir)
        self.committed = True
        return digest

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self.committed:
            self.path.unlink(missing_ok=True)
        if self.unpacked is not None:
            shutil.rmtree(self.unpacked[0], ignore_errors=True)   # gone if the store took it
            self.unpacked = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class BlobStore:
    """Blobs under ``<root>/blobs/sha256``; every method takes a full ``sha256:<hex>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.dir = Path(root) / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.dir / check_digest(digest)[len("sha256:"):]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            atomic_write_bytes(path, data, 0o644)
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def get_json(self, digest: str) -> Any:
        return json.loads(self.get(digest))

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def ingest(self, src: BinaryIO | str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a stream or file in; returns (digest, size)."""
        with self.writer() as w:
            if isinstance(src, (str, os.PathLike)):
                with open(src, "rb", buffering=0) as f:
                    _copy(f, w)
            else:
                _copy(src, w)
            return w.commit(), w.size

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        for name in os.listdir(self.dir):
            if not name.startswith("."):
                yield "sha256:" + name

    def clean_temp(self, alive: Any) -> None:
        """Drop temp files left by a crash (their writer's pid is gone)."""
        for name in os.listdir(self.dir):
            if name.startswith(TMP_PREFIX) and not alive(name):
                (self.dir / name).unlink(missing_ok=True)


def _copy(src: BinaryIO, w: BlobWriter) -> None:
    read = getattr(src, "read1", None) or src.read
    while chunk := read(COPY_CHUNK):
        w.write(chunk)
