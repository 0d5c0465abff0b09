"""The backup archive format: one compressed tar, every member checksummed.

Members stream straight into ``<name>.partial`` (a layer is cut into 16 MiB tar parts as
it is produced, so nothing is staged on disk), compressed by zstd (the zstandard module or
program) or gzip, with ``manifest.json`` (sha256, size and parts of every other member)
written last, fsynced and renamed into place: a reader sees a complete archive or none.
Tarring, hashing, compressing and writing run on separate threads. Reading checks every
member against the manifest before the caller touches any of them (layers may be unpacked
into a staging directory during that same pass), so a flipped byte or a truncated file
fails before a restore creates anything.
"""

from __future__ import annotations

import fcntl
import gzip
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

from ..errors import InvalidArgument, PyjailError
from ..fsutil import fsync_dir
from ..images import layers, tarstream
from ..images.blobs import start_writeback

FORMAT_VERSION = 1
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MANIFEST = "manifest.json"
BLOCK = 512
CHUNK = 1 << 20
PART = 16 << 20
WRITEBACK = 8 << 20
_PART_RE = re.compile(r"^(.+)\.p(\d{5})$")
Progress = Callable[[dict[str, Any]], None]
Unpack = Callable[[str], bool | None]


class DamagedArchive(InvalidArgument):
    """The archive fails its checksums, is truncated, or is not a pyjail backup."""


def compression() -> tuple[str, str]:
    """(kind, file extension) this host can write: zstd preferred, gzip always possible."""
    if shutil.which("zstd"):
        return "zstd", ".tar.zst"
    try:
        import zstandard  # type: ignore[import-not-found]  # noqa: F401
        return "zstd", ".tar.zst"
    except ImportError:
        return "gzip", ".tar.gz"


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


class _Compressor:
    """A write-only stream into ``path``, compressed by the best means on this host.

    ``write`` only queues: a feeder thread hands the data to the compressor, so producing
    the tar (reading files, hashing them) overlaps compressing it. The compressed bytes are
    hashed on their way to the file, so the archive's own sha256 costs no second read.
    """

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self.hash = hashlib.sha256()
        self.size = 0
        self.synced = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.pump: threading.Thread | None = None
        self.kind, _ = compression()
        self.error: BaseException | None = None
        self.stream: Any = None
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            zstandard = None
        exe = shutil.which("zstd")
        if zstandard is not None:
            # In-process (the module drops the GIL while compressing): no pipe to copy every
            # byte through twice; about a third less CPU for the whole backup than the program.
            self.compressed: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
            self.pump = threading.Thread(target=self._pump_queue, daemon=True,
                                         name="pyjail-backup-out")
            self.pump.start()
            # The frame checksum (the zstd program's default) makes any flipped byte a read
            # error, also in the outer tar's headers and padding that no member hash covers.
            self.stream = zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(
                _Handoff(self.compressed), closefd=False, write_size=CHUNK)
        elif exe:
            self.proc = subprocess.Popen([exe, "-q", "-3", "-T0", "-c"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, bufsize=0)
            assert self.proc.stdin is not None and self.proc.stdout is not None
            _widen_pipe(self.proc.stdin.fileno())
            _widen_pipe(self.proc.stdout.fileno())
            self.stream = self.proc.stdin
            self.pump = threading.Thread(target=self._pump, daemon=True,
                                         name="pyjail-backup-zstd")
            self.pump.start()
        else:
            self.stream = gzip.GzipFile(fileobj=_HashedFile(self), mode="wb", compresslevel=3)
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self.feeder = threading.Thread(target=self._feed, daemon=True,
                                       name="pyjail-backup-feed")
        self.feeder.start()

    def _out(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            view = view[self.file.write(view):]
        if self.size - self.synced >= WRITEBACK:   # to disk as we go: close's fsync is short
            start_writeback(self.file.fileno(), self.synced, self.size - self.synced)
            self.synced = self.size

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, CHUNK):
            self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        """On a pump thread: after a write error, drain and drop so the compressor never
        blocks on a full pipe (close reports the error)."""
        if self.error is None:
            try:
                self._out(chunk)
            except BaseException as e:  # noqa: BLE001 - raised again by close
                self.error = e

    def _pump_queue(self) -> None:
        while (chunk := self.compressed.get()) is not None:
            self._keep(chunk)

    def _feed(self) -> None:
        """Runs on its own thread; after an error it keeps draining so writers never block."""
        while (data := self.queue.get()) is not None:
            if self.error is None:
                try:
                    if self.proc is not None:
                        view = memoryview(data)
                        while view:
                            view = view[self.stream.write(view):]
                    else:
                        self.stream.write(data)
                except BaseException as e:  # noqa: BLE001 - raised again by write/close
                    self.error = e

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise PyjailError(f"compressing the archive failed: {self.error}")
        self.queue.put(data)
        return len(data)

    def close(self) -> str:
        """Flush, fsync; returns the sha256 of the compressed file."""
        self.queue.put(None)
        self.feeder.join()
        if self.error is not None:
            raise PyjailError(f"compressing the archive failed: {self.error}")
        self.stream.close()
        if self.pump is not None:
            if self.proc is None:
                self.compressed.put(None)
            self.pump.join()
        if self.error is not None:
            raise PyjailError(f"writing the archive failed: {self.error}")
        if self.proc is not None:
            if self.proc.wait() != 0:
                raise PyjailError(f"zstd failed with exit status {self.proc.returncode}")
        os.fsync(self.file.fileno())
        self.file.close()
        return "sha256:" + self.hash.hexdigest()

    def abort(self) -> None:
        if self.proc is not None:
            self.proc.kill()
        if self.feeder.is_alive():
            self.error = self.error or PyjailError("aborted")
            self.queue.put(None)
            self.feeder.join()
        with suppress(Exception):
            self.stream.close()
        if self.proc is not None:
            self.proc.wait()
        elif self.pump is not None:
            self.compressed.put(None)
        if self.pump is not None:
            self.pump.join()
        self.file.close()


class _HashedFile:
    """The file side for gzip: hashed and written on the caller's thread."""

    def __init__(self, owner: _Compressor) -> None:
        self.owner = owner

    def write(self, data: bytes) -> int:
        self.owner._out(data)   # not kept: no copy needed
        return len(data)

    def flush(self) -> None:
        pass


class _Handoff:
    """The file side for the zstandard module: its output is hashed and written on the pump
    thread, overlapping the compression."""

    def __init__(self, out: queue.Queue[bytes | None]) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        self.out.put(bytes(data))   # the compressor reuses its buffer
        return len(data)

    def flush(self) -> None:
        pass


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class _Parts:
    """One logical member, cut into tar members of at most PART bytes as it is produced.

    A layer's size is known only once it is written; cutting it into sized parts lets it
    go straight into the compressed stream, with no staging copy on disk. The pieces of a
    part are kept as they came (no concatenation); small ones are batched into CHUNK-sized
    writes so a tree of small files does not turn into a write per header.

    Everything written is hashed on a thread of its own (``finish`` gives the digest): a
    layers.HashingSink, so create_layer hands its bytes over from a second thread and
    tarring (Python, holding the GIL) and hashing (C, without it) run side by side.
    """

    def __init__(self, out: _Compressor, name: str,
                 tick: Callable[[int], None] | None) -> None:
        self.out, self.name, self.tick = out, name, tick
        self.hasher = _Hasher()
        self.size = 0
        self.parts = 0
        self.pieces: list[bytes] = []
        self.pending = 0

    def finish(self) -> str:
        """No more writes: ``sha256:`` of everything written."""
        return self.hasher.digest()

    def write(self, data: bytes) -> int:
        if type(data) is not bytes:
            data = bytes(data)   # the caller may reuse its buffer; kept until the flush
        self.hasher.update(data)
        self.pieces.append(data)
        self.pending += len(data)
        if self.pending >= PART:
            self.flush()
        return len(data)

    def tell(self) -> int:
        return self.size + self.pending

    def flush(self) -> None:
        size = self.pending
        pieces = [_tar_header(f"{self.name}.p{self.parts:05d}", size), *self.pieces]
        if size % BLOCK:
            pieces.append(bytes(BLOCK - size % BLOCK))
        batch: list[bytes] = []
        batched = 0
        for piece in pieces:
            if len(piece) >= CHUNK // 4:
                if batch:
                    self.out.write(b"".join(batch))
                    batch, batched = [], 0
                self.out.write(piece)
                continue
            batch.append(piece)
            batched += len(piece)
            if batched >= CHUNK:
                self.out.write(b"".join(batch))
                batch, batched = [], 0
        if batch:
            self.out.write(b"".join(batch))
        self.size += size
        self.parts += 1
        self.pieces, self.pending = [], 0
        if self.tick and size:
            self.tick(size)


class ArchiveWriter:
    """Stream members into ``<dest>.partial``; ``finish`` adds the manifest and renames.

    Use as a context manager: on an exception the partial file is removed.
    """

    def __init__(self, dest: Path, progress: Progress) -> None:
        self.dest = dest
        self.progress = progress
        self.members: dict[str, dict[str, Any]] = {}
        self.partial = dest.with_name(f".{dest.name}.partial")
        self.out = _Compressor(self.partial)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, typ: object, exc: object, tb: object) -> None:
        if exc is not None and self.partial.exists():
            self.out.abort()
            self.partial.unlink(missing_ok=True)

    def add(self, name: str, write: Callable[[Any], object],
            tick: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Add one member produced by ``write(stream)``; returns its sha256 and size."""
        if name in self.members or name == MANIFEST or len(name) >= 90:
            raise InvalidArgument(f"bad archive member name {name!r}")
        w = _Parts(self.out, name, tick)
        try:
            write(w)
            if w.pieces or not w.parts:
                w.flush()
        finally:
            digest = w.finish()
        entry = {"sha256": digest, "size": w.size, "parts": w.parts}
        self.members[name] = entry
        return entry

    def add_bytes(self, name: str, data: bytes) -> dict[str, Any]:
        return self.add(name, lambda out: out.write(data))

    def finish(self, info: dict[str, Any]) -> dict[str, Any]:
        """Manifest last, fsync, rename into place; returns Path, Size, Sha256, Manifest."""
        manifest = {"Version": FORMAT_VERSION, **info, "Members": self.members}
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        self.out.write(_tar_header(MANIFEST, len(data)) + data)
        if len(data) % BLOCK:
            self.out.write(bytes(BLOCK - len(data) % BLOCK))
        self.out.write(bytes(2 * BLOCK))
        digest, size = self.out.close(), self.out.size
        os.replace(self.partial, self.dest)
        fsync_dir(self.dest.parent)
        total = sum(e["size"] for e in self.members.values())
        self.progress(progress_message("Archive written", total, total))
        return {"Path": str(self.dest), "Size": size, "Sha256": digest, "Manifest": manifest}


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


class _Reader:
    """One pass over an archive: checksums every member, optionally unpacks it."""

    def __init__(self, src: _Stream, dest: Path | None, unpack: Unpack | None,
                 progress: Progress | None) -> None:
        self.src, self.dest, self.unpack, self.progress = src, dest, unpack, progress
        self.seen: dict[str, dict[str, Any]] = {}
        self.hashes: dict[str, _Hasher] = {}
        self.manifest: dict[str, Any] | None = None
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

    def run(self) -> None:
        current = ""
        while (info := self.header()) is not None:
            if self.manifest is not None:
                raise DamagedArchive(f"member {info.name!r} after the manifest")
            if info.name == MANIFEST:
                body = b"".join(self.src.body(info.size, MANIFEST))
                self.src.read(-info.size % BLOCK)
                try:
                    self.manifest = json.loads(body)
                except ValueError:
                    raise DamagedArchive("manifest.json is not JSON") from None
                continue
            name, entry = self.part(info, current)
            current = name
            overlay = self.unpack(name) if self.unpack and self.dest is not None else None
            if overlay is not None and not entry["parts"]:
                self.unpack_member(name, info, overlay)
            else:
                self.store_part(name, info)
        self.src.drain()   # surfaces decompressor errors (zstd checks its frame checksum at the end)
        for name, h in self.hashes.items():
            self.seen[name]["sha256"] = h.digest()

    def _chunks(self, name: str, size: int) -> Iterator[bytes]:
        """One part's data, hashed and counted; its padding skipped."""
        h = self.hashes.get(name) or self.hashes.setdefault(name, _Hasher())
        for chunk in self.src.body(size, name):
            h.update(chunk)
            yield chunk
        self.src.read(-size % BLOCK)
        entry = self.seen[name]
        entry["size"] += size
        entry["parts"] += 1
        if self.progress:
            self.progress(progress_message(f"Verified {name}", size, size))

    def store_part(self, name: str, info: tarfile.TarInfo) -> None:
        if self.dest is None:
            for _ in self._chunks(name, info.size):
                pass
            return
        target = self.dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab", buffering=0) as out:
            for chunk in self._chunks(name, info.size):
                out.write(chunk)

    def unpack_member(self, name: str, info: tarfile.TarInfo, for_overlay: bool) -> None:
        """Extract a layer member into ``dest/name/`` as it streams past, across its parts."""
        assert self.dest is not None
        target = self.dest / name
        self.unpacked.append(name)
        target.mkdir(parents=True)

        def data() -> Iterator[bytes]:
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

        chunks = data()
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
        with _decompressed(Path(path)) as chunks:
            reader = _Reader(_Stream(chunks), dest, unpack, progress)
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
    if manifest.get("Version") != FORMAT_VERSION:
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
