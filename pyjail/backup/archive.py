"""The backup archive format, and reading it: every member checksummed, checked first.

Format 2 (written by writer.py): a plain tar. Every member (``rootfs.tar``, ``volumes/<name>.tar``,
``container.json``, ...) is one zstd frame, stored as tar parts ``<member>.pNNNNN`` of at
most 16 MiB; ``manifest.json`` comes last, plain, with the sha256, stored size and part
count of every member. ``tar -xOf <archive> manifest.json`` shows it.
Format 1 (read only): one zstd or gzip stream of a tar of plain members, manifest last,
sha256 over the plain bytes.

Reading checks every member against the manifest before the caller touches any of them
(layers may be unpacked into a staging directory during that same pass), so a flipped
byte or a truncated file fails before a restore creates anything: member bytes by their
sha256, tar headers by their checksums, padding and end blocks by being zeros.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument
from ..images import layers, tarstream

FORMAT_VERSION = 2
SUFFIX = ".tar"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"   # "<hex>  manifest.json\n", as sha256sum -c reads
MAX_MANIFEST = 64 << 20
BLOCK = 512
CHUNK = 1 << 20
PART = 16 << 20
_PART_RE = re.compile(r"^(.+)\.p(\d{5})$")
Progress = Callable[[dict[str, Any]], None]
Unpack = Callable[[str], bool | None]


class DamagedArchive(InvalidArgument):
    """The archive fails its checksums, is truncated, or is not a pyjail backup."""


def progress_message(status: str, current: int = 0, total: int = 0) -> dict[str, Any]:
    """Docker's progress shape, plus the ``progress`` key pyjail's own client reads."""
    detail = {"current": current, "total": total}
    return {"status": status, "progressDetail": detail, "progress": detail}


class _Hasher:
    """sha256 on a thread of its own: hashlib drops the GIL for large buffers, so hashing a
    member overlaps writing it out (and the decompressor) instead of adding to it."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)   # bounds the backlog
        self._thread = threading.Thread(target=self._run, daemon=True, name="pyjail-backup-hash")
        self._thread.start()
        self._digest = ""

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def digest(self) -> str:
        """``sha256:<hex>`` of everything passed so far; ends the thread."""
        if not self._digest:
            self._queue.put(None)
            self._thread.join()
            self._digest = "sha256:" + self._hash.hexdigest()
        return self._digest


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: 16x fewer wake-ups between us and zstd."""
    with suppress(OSError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class _Stream:
    """The decompressed archive as a cursor over byte chunks.

    Member bodies come out as the decompressor's own chunks (sliced only where a header
    sits inside one), so file data is never concatenated or copied on its way through.
    """

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._buf = b""
        self._pos = 0

    def _fill(self) -> bool:
        for chunk in self._it:
            if chunk:
                self._buf, self._pos = chunk, 0
                return True
        return False

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end): for headers and padding."""
        parts = []
        while n:
            if self._pos >= len(self._buf) and not self._fill():
                break
            piece = self._buf[self._pos:self._pos + n]
            self._pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def body(self, n: int, name: str) -> Iterator[bytes]:
        """Exactly the next ``n`` bytes, as chunks; DamagedArchive when the stream ends first."""
        while n:
            if self._pos >= len(self._buf) and not self._fill():
                raise DamagedArchive(f"the archive is truncated (in {name})")
            if self._pos == 0 and len(self._buf) <= n:
                chunk = self._buf
            else:
                chunk = self._buf[self._pos:self._pos + n]
            self._pos += len(chunk)
            n -= len(chunk)
            yield chunk

    def drain(self) -> None:
        self._pos = len(self._buf)
        for _ in self._it:
            pass

    def rest_is_zeros(self, at_least: int) -> bool:
        """Whether what is left (the end blocks, any record padding) is zero bytes, and at
        least ``at_least`` of them (a cut end block is a truncated archive)."""
        rest, self._buf, self._pos = self._buf[self._pos:], b"", 0
        size = len(rest)
        if rest.strip(b"\0"):
            return False
        for chunk in self._it:
            if chunk.strip(b"\0"):
                return False
            size += len(chunk)
        return size >= at_least


class _StoredBytes:
    """A member's stored bytes (an iterator of chunks) as a file, for tarstream to read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def read(self, n: int) -> bytes:
        if not self.buffer:
            self.buffer = next(self.chunks, b"")
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def _decompressed_member(stored: Iterator[bytes]) -> Iterator[bytes]:
    """A format-2 member's content, through the layers' own decompression (bounded pieces,
    errors as InvalidArgument, which read_archive reports as damage). A cut frame shows as
    a checksum mismatch once the pass is over: every stored byte is hashed."""
    _, chunks = tarstream.decompressed_chunks(_StoredBytes(stored))   # type: ignore[arg-type]
    yield from chunks
    for _ in stored:   # anything the decompressor left unread is hashed too
        pass


_DONE = object()


def _on_a_thread(items: Iterator[bytes]) -> Iterator[bytes]:
    """``items`` produced on a thread of its own, handed over through a bounded queue;
    the producer's exception is raised here. Stopping early stops the producer."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(item)
            handoff.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - raised again on the consumer's side
            handoff.put(e)

    thread = threading.Thread(target=produce, daemon=True, name="pyjail-backup-read")
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():   # unblock a producer waiting on a full queue
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class _Reader:
    """One pass over an archive: checksums every member, optionally unpacks it."""

    def __init__(self, src: _Stream, dest: Path | None, unpack: Unpack | None,
                 progress: Progress | None, version: int) -> None:
        self.src, self.dest, self.unpack, self.progress = src, dest, unpack, progress
        self.version = version               # 2: members are zstd frames; 1: plain
        self.seen: dict[str, dict[str, Any]] = {}
        self.hashes: dict[str, _Hasher] = {}
        self.manifest: dict[str, Any] | None = None
        self.manifest_checked = version == 1   # format 2 has manifest.json.sha256 after it
        self.pending: bytes | None = None    # a header read ahead by a multi-part member
        self.unpacked: list[str] = []        # directories holding extracted trees (and symlinks)

    def header(self) -> tarfile.TarInfo | None:
        """The next member's header; None at the end-of-archive block."""
        head, self.pending = self.pending or self.src.read(BLOCK), None
        if len(head) < BLOCK:
            raise DamagedArchive("the archive is truncated")
        if head == bytes(BLOCK):
            return None
        try:
            return tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
        except tarfile.TarError as e:
            raise DamagedArchive(f"bad tar header: {e}") from None

    def part(self, info: tarfile.TarInfo, current: str) -> tuple[str, dict[str, Any]]:
        """The logical member and its running entry for the part ``info``, checked."""
        match = _PART_RE.match(info.name)
        name = match.group(1) if match else ""
        if not match or "/.." in "/" + name or name.startswith("/") or "/./" in f"/{name}/" \
                or any(name.startswith(u + "/") for u in self.unpacked):
            raise DamagedArchive(f"unexpected member {info.name!r}")
        entry = self.seen.setdefault(name, {"sha256": "", "size": 0, "parts": 0})
        if int(match.group(2)) != entry["parts"] or (entry["parts"] and name != current):
            raise DamagedArchive(f"member {info.name} out of order")
        return name, entry

    def _small(self, info: tarfile.TarInfo) -> bytes:
        if info.size > MAX_MANIFEST:
            raise DamagedArchive(f"{info.name} is too large")
        body = b"".join(self.src.body(info.size, info.name))
        self._padding(info.size)
        return body

    def run(self) -> None:
        current = ""
        manifest_digest = ""
        while (info := self.header()) is not None:
            if info.name == MANIFEST_SUM and self.manifest is not None and self.version > 1 \
                    and not self.manifest_checked:
                if self._small(info).split(b" ", 1)[0].decode(errors="replace") \
                        != manifest_digest:
                    raise DamagedArchive("checksum mismatch for manifest.json")
                self.manifest_checked = True
                continue
            if self.manifest is not None:
                raise DamagedArchive(f"member {info.name!r} after the manifest")
            if info.name == MANIFEST:
                body = self._small(info)
                manifest_digest = hashlib.sha256(body).hexdigest()
                try:
                    self.manifest = json.loads(body)
                except ValueError:
                    raise DamagedArchive("manifest.json is not JSON") from None
                continue
            name, entry = self.part(info, current)
            current = name
            overlay = self.unpack(name) if self.unpack and self.dest is not None else None
            if entry["parts"]:   # a part of a member seen before, not right after it
                raise DamagedArchive(f"member {info.name} out of order")
            if overlay is not None:
                self.unpack_member(name, info, overlay)
            else:
                self.store_member(name, info)
        if self.version == 1:
            self.src.drain()   # surfaces decompressor errors (zstd checks its frame checksum)
        elif not self.src.rest_is_zeros(BLOCK):   # the second of the two end blocks
            raise DamagedArchive("the archive is truncated or damaged at its end")
        for name, h in self.hashes.items():
            self.seen[name]["sha256"] = h.digest()

    def _chunks(self, name: str, size: int) -> Iterator[bytes]:
        """One part's data, hashed and counted; its padding skipped."""
        h = self.hashes.get(name) or self.hashes.setdefault(name, _Hasher())
        for chunk in self.src.body(size, name):
            h.update(chunk)
            yield chunk
        self._padding(size)
        entry = self.seen[name]
        entry["size"] += size
        entry["parts"] += 1
        if self.progress:
            self.progress(progress_message(f"Verified {name}", size, size))

    def _padding(self, size: int) -> None:
        """The zeros after a member's data: no hash covers them, so they are checked."""
        pad = self.src.read(-size % BLOCK)
        if len(pad) < -size % BLOCK:
            raise DamagedArchive("the archive is truncated")
        if pad.strip(b"\0"):
            raise DamagedArchive("the archive is damaged (bytes between members)")

    def _stored(self, name: str, info: tarfile.TarInfo) -> Iterator[bytes]:
        """A member's stored bytes across its parts (read as they come), hashed."""
        part, size = 0, info.size
        while True:
            yield from self._chunks(name, size)
            head = self.src.read(BLOCK)
            try:
                nxt = tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
            except tarfile.TarError:
                nxt = None
            if nxt is None or nxt.name != f"{name}.p{part + 1:05d}":
                self.pending = head
                return
            part, size = part + 1, nxt.size

    def _member(self, name: str, info: tarfile.TarInfo) -> Iterator[bytes]:
        """A member's content (format 2 stores it compressed: reading, hashing and
        decompressing it then run on a thread of their own, beside the unpacking)."""
        stored = self._stored(name, info)
        return stored if self.version == 1 else _on_a_thread(_decompressed_member(stored))

    def store_member(self, name: str, info: tarfile.TarInfo) -> None:
        if self.dest is None:   # verify only: the stored bytes are what the hashes cover
            for _ in self._stored(name, info):
                pass
            return
        target = self.dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb", buffering=0) as out:
            for chunk in self._member(name, info):
                out.write(chunk)

    def unpack_member(self, name: str, info: tarfile.TarInfo, for_overlay: bool) -> None:
        """Extract a layer member into ``dest/name/`` as it streams past, across its parts."""
        assert self.dest is not None
        target = self.dest / name
        self.unpacked.append(name)
        target.mkdir(parents=True)
        chunks = self._member(name, info)
        layers.extract_stream(tarstream.Source(chunks), target, for_overlay=for_overlay,
                              size_hint=info.size)
        for _ in chunks:   # what follows the layer's end-of-archive block counts too
            pass


@contextmanager
def _decompressed(path: Path) -> Iterator[Iterator[bytes]]:
    """The archive's tar bytes. zstd archives go through the zstd program reading the file
    itself (no feeding thread: one fewer hop for every byte); anything else through
    tarstream."""
    with open(path, "rb", buffering=0) as raw:
        exe = shutil.which("zstd")
        if raw.read(4) != ZSTD_MAGIC or exe is None:
            raw.seek(0)
            _, chunks = tarstream.decompressed_chunks(raw)
            try:
                yield chunks
            finally:
                getattr(chunks, "close", lambda: None)()
            return
    proc = subprocess.Popen([exe, "-dcq", "--", os.fspath(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    assert proc.stdout is not None
    _widen_pipe(proc.stdout.fileno())

    def chunks() -> Iterator[bytes]:
        fd = proc.stdout.fileno()
        while chunk := os.read(fd, CHUNK):
            yield chunk
        if proc.wait() != 0:
            raise DamagedArchive(f"the archive is damaged or truncated (zstd exit status "
                                 f"{proc.returncode})")

    try:
        yield chunks()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def read_archive(path: Path | str, dest: Path | None, progress: Progress | None = None,
                 unpack: Unpack | None = None) -> dict[str, Any]:
    """Check every member of the archive at ``path``; with ``dest``, also unpack there.

    Members are written to ``dest/<name>``; those for which ``unpack(name)`` is a bool are
    layer tars extracted into the directory ``dest/<name>/`` instead (the bool is
    ``for_overlay``), in the same pass: one read, one write. Returns the manifest. Raises
    DamagedArchive on any mismatch, missing or extra member, truncation, decompression
    error or malformed layer; ``dest`` may then hold partial files (the caller removes it)
    but nothing else has been touched.
    """
    reader: _Reader | None = None
    try:
        with open(path, "rb", buffering=0) as raw:
            version = 1 if raw.read(4).startswith((ZSTD_MAGIC, GZIP_MAGIC)) else 2
            if version == 2:
                raw.seek(0)
                reader = _Reader(_Stream(iter(lambda: raw.read(CHUNK), b"")), dest, unpack,
                                 progress, 2)
                reader.run()
        if version == 1:
            with _decompressed(Path(path)) as chunks:
                reader = _Reader(_Stream(chunks), dest, unpack, progress, 1)
                reader.run()
    except DamagedArchive:
        raise
    except InvalidArgument as e:
        raise DamagedArchive(f"the archive is damaged or truncated: {e}") from None
    except OSError as e:
        raise DamagedArchive(f"cannot read the archive: {e}") from None
    finally:
        for h in reader.hashes.values() if reader else ():
            h.digest()   # ends its thread
    manifest, seen = reader.manifest, reader.seen
    if not isinstance(manifest, dict) or not isinstance(manifest.get("Members"), dict):
        raise DamagedArchive("no manifest.json: not a complete pyjail backup")
    if not reader.manifest_checked:
        raise DamagedArchive(f"no {MANIFEST_SUM}: not a complete pyjail backup")
    if manifest.get("Version") != version:
        raise DamagedArchive(f"unsupported backup format version {manifest.get('Version')!r}")
    expected = manifest["Members"]
    for name, entry in expected.items():
        got = seen.get(name)
        if got is None:
            raise DamagedArchive(f"member {name} is missing")
        if got != {k: entry.get(k) for k in ("sha256", "size", "parts")}:
            raise DamagedArchive(f"checksum mismatch for {name}")
    extra = set(seen) - set(expected)
    if extra:
        raise DamagedArchive(f"members not in the manifest: {sorted(extra)}")
    return manifest
