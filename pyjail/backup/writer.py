"""Writing a backup archive (format 2): a plain tar whose members are zstd frames.

Each member (a layer tar, a volume's tree, container.json, ...) is compressed on its own as
it is produced and cut into tar parts of at most PART compressed bytes (its size is known
only at the end, and nothing is staged on disk). The manifest records the sha256 of every
member's stored bytes: hashing compressed bytes costs half of hashing the data, and
checks exactly what is on disk. The parts, the manifest and the end blocks go to the
file on a thread of their own, which hashes them (the archive's own Sha256), starts
writeback as it goes and fsyncs at the end; ``<name>.partial`` is renamed into place only
when complete. Producing (reading files, Python), compressing (zstd without the GIL) and
hashing plus writing run side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from ..errors import InvalidArgument, PyjailError
from ..fsutil import fsync_dir
from ..images.blobs import start_writeback
from .archive import (
    BLOCK,
    CHUNK,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_SUM,
    PART,
    Progress,
    progress_message,
    tar_header,
)

WRITEBACK = 8 << 20
LEVEL = 3              # zstd's own default, as `tar | zstd` uses


class _ArchiveFile:
    """The outer tar's bytes into ``path``, on a thread: (bytes, member hash or None) items;
    a threading.Event item is set once everything before it was written."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()/abort()
        self.hash = hashlib.sha256()
        self.size = 0
        self.synced = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=32)
        self.thread = threading.Thread(target=self._run, daemon=True, name="pyjail-backup-out")
        self.thread.start()

    def put(self, data: bytes, member_hash: Any = None) -> None:
        if self.error is not None:
            raise PyjailError(f"writing the archive failed: {self.error}")
        self.queue.put((data, member_hash))

    def barrier(self) -> None:
        """Wait until everything put so far has been hashed and written."""
        done = threading.Event()
        self.queue.put(done)
        done.wait()
        if self.error is not None:
            raise PyjailError(f"writing the archive failed: {self.error}")

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self.error is not None:
                continue   # keep draining: the producer must never block
            data, member_hash = item
            try:
                if member_hash is not None:
                    member_hash.update(data)
                self._write(data)
            except BaseException as e:  # noqa: BLE001 - raised again by put/close
                self.error = e

    def _write(self, data: bytes) -> None:
        self.hash.update(data)
        view = memoryview(data)
        while view:
            view = view[self.file.write(view):]
        self.size += len(data)
        if self.size - self.synced >= WRITEBACK:   # to disk as we go: close's fsync is short
            start_writeback(self.file.fileno(), self.synced, self.size - self.synced)
            self.synced = self.size

    def close(self) -> str:
        """Everything written and fsynced; the sha256 of the file."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise PyjailError(f"writing the archive failed: {self.error}")
        os.fsync(self.file.fileno())
        self.file.close()
        return "sha256:" + self.hash.hexdigest()

    def abort(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or PyjailError("aborted")
            self.queue.put(None)
            self.thread.join()
        self.file.close()


class _Member:
    """One logical member: compressed as it comes, cut into parts (a layers.HashingSink, so
    create_layer hands it its bytes from a second thread)."""

    def __init__(self, out: _ArchiveFile, name: str, tick: Callable[[int], None] | None) -> None:
        self.out, self.name, self.tick = out, name, tick
        self.zstd = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compressobj()
        self.hash = hashlib.sha256()     # updated on the file's thread, in order
        self.size = 0                    # stored (compressed) bytes in finished parts
        self.parts = 0
        self.raw = 0                     # uncompressed bytes given
        self.ticked = 0
        self.pieces: list[bytes] = []
        self.pending = 0
        self.digest = ""

    def write(self, data: bytes, /) -> int:
        n = len(data)
        self.raw += n
        out = self.zstd.compress(data)
        if out:
            self._keep(out)
        return n

    def _keep(self, out: bytes) -> None:
        self.pieces.append(out)
        self.pending += len(out)
        if self.pending >= PART:
            self._part()

    def _part(self) -> None:
        """The pending compressed bytes as tar member ``<name>.pNNNNN``."""
        size = self.pending
        self.out.put(tar_header(f"{self.name}.p{self.parts:05d}", size))
        batch: list[bytes] = []
        batched = 0
        for piece in self.pieces:   # small pieces batched: fewer queue hand-offs
            batch.append(piece)
            batched += len(piece)
            if batched >= CHUNK:
                self.out.put(b"".join(batch), self.hash)
                batch, batched = [], 0
        if batch:
            self.out.put(b"".join(batch), self.hash)
        if size % BLOCK:
            self.out.put(bytes(BLOCK - size % BLOCK))
        self.size += size
        self.parts += 1
        self.pieces, self.pending = [], 0
        if self.tick and self.raw > self.ticked:
            self.tick(self.raw - self.ticked)
            self.ticked = self.raw

    def finish(self) -> str:
        """No more writes: the last part out, ``sha256:`` of the stored bytes."""
        if not self.digest:
            self._keep(self.zstd.flush())
            if self.pending:
                self._part()
            self.out.barrier()
            self.digest = "sha256:" + self.hash.hexdigest()
        return self.digest


class ArchiveWriter:
    """Stream members into ``<dest>.partial``; ``finish`` adds the manifest and renames.

    Use as a context manager: on an exception the partial file is removed.
    """

    def __init__(self, dest: Path, progress: Progress) -> None:
        self.dest = dest
        self.progress = progress
        self.members: dict[str, dict[str, Any]] = {}
        self.partial = dest.with_name(f".{dest.name}.partial")
        self.out = _ArchiveFile(self.partial)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, typ: object, exc: object, tb: object) -> None:
        if exc is not None and self.partial.exists():
            self.out.abort()
            self.partial.unlink(missing_ok=True)

    def add(self, name: str, write: Callable[[Any], object],
            tick: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Add one member produced by ``write(stream)``; returns its manifest entry."""
        if name in self.members or name in (MANIFEST, MANIFEST_SUM) or len(name) >= 90:
            raise InvalidArgument(f"bad archive member name {name!r}")
        member = _Member(self.out, name, tick)
        write(member)
        digest = member.finish()
        entry = {"sha256": digest, "size": member.size, "parts": member.parts,
                 "compression": "zstd", "unpacked_size": member.raw}
        self.members[name] = entry
        return entry

    def add_bytes(self, name: str, data: bytes) -> dict[str, Any]:
        return self.add(name, lambda out: out.write(data))

    def finish(self, info: dict[str, Any]) -> dict[str, Any]:
        """Manifest last, fsync, rename into place; returns Path, Size, Sha256, Manifest."""
        manifest = {"Version": FORMAT_VERSION, **info, "Members": self.members}
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        checksum = f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode()
        for name, body in ((MANIFEST, data), (MANIFEST_SUM, checksum)):
            self.out.put(tar_header(name, len(body)) + body + bytes(-len(body) % BLOCK))
        self.out.put(bytes(2 * BLOCK))
        digest = self.out.close()
        os.replace(self.partial, self.dest)
        fsync_dir(self.dest.parent)
        total = sum(e["unpacked_size"] for e in self.members.values())
        self.progress(progress_message("Archive written", total, total))
        return {"Path": str(self.dest), "Size": self.out.size, "Sha256": digest,
                "Manifest": manifest}
