"""Layer tars in and out: safe, fast extraction into a layer dir, and diffs of an upper dir.

Extraction walks every parent path with ``openat(O_NOFOLLOW)`` from a directory fd of the
destination, so no member can write outside it: ``..`` is resolved lexically and may not
climb above the root, and a symlink met on the way is followed only when its target stays
inside (relative target, resolved within the destination), never when it is absolute or
climbs out. Symlinks themselves are data and may point anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import stat
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from pyjail.errors import InvalidArgument, PyjailError, UnsafePath
from pyjail.images import gnutar, tarstream
from pyjail.images.blobs import start_writeback
from pyjail.images.gnutar import OPAQUE, WHITEOUT
from pyjail.images.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, REGULAR, SYM, Member, Source

OVERLAY_OPAQUE = "trusted.overlay.opaque"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_HOPS = 40
_MAX_CACHED_DIRS = 1024
_WRITEBACK_MIN = 1 << 20


def _umask() -> int:
    """The process umask, read without the racy set-and-restore of ``os.umask``."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def normalize(name: str) -> str:
    """A member name as a path relative to the root ('' is the root itself).

    A leading ``/`` is dropped (as GNU tar does); ``..`` may not climb above the root.
    """
    name = name.removeprefix("./")
    if not name.startswith(("/", ".")) and "/." not in name and "//" not in name:
        return name.rstrip("/")   # fast path: nothing to resolve
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise UnsafePath(f"{name}: path escapes the layer root")
            parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/".join(parts)


class _Extractor:
    """One extraction: a cache of directory fds keyed by relative path, plus pending dir times."""

    def __init__(self, dest: Path, for_overlay: bool, allow_devices: bool) -> None:
        self.for_overlay = for_overlay
        self.allow_devices = allow_devices
        self.euid, self.egid = os.geteuid(), os.getegid()
        self.umask = _umask()
        self.root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dirs: dict[str, int] = {"": self.root}
        self.setgid_dirs: set[str] = set()
        self.aliases: set[str] = set()       # cached paths that went through a symlink
        self.retired: list[int] = []
        self.dir_times: list[tuple[str, int]] = []
        # Paths this layer wrote; only needed to apply opaque whiteouts when flattening.
        self.created: set[str] | None = None if for_overlay else set()
        self.size = 0

    def close(self) -> None:
        self._close_retired()
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()

    def _close_retired(self) -> None:
        for fd in self.retired:
            os.close(fd)
        self.retired.clear()

    # -- safe path resolution --------------------------------------------------------------

    def _forget_dirs(self, rel: str | None = None) -> None:
        """Drop cached dir fds at or below ``rel`` (all when None) and every fd reached
        through a symlink, after a directory or symlink was removed or replaced."""
        below = rel + "/" if rel else ""
        for key in list(self.dirs):
            if key and (rel is None or key == rel or key.startswith(below)
                        or key in self.aliases):
                # closed before the next member, never under a caller still holding it
                self.retired.append(self.dirs.pop(key))
                self.setgid_dirs.discard(key)
                self.aliases.discard(key)

    def dir_fd(self, rel: str, hops: int = 0) -> int:
        """An fd of directory ``rel``, created (0755) when missing, never outside the root."""
        fd = self.dirs.get(rel)
        if fd is not None:
            return fd
        if hops > _MAX_HOPS:
            raise UnsafePath(f"{rel}: too many levels of symbolic links")
        parent, _, name = rel.rpartition("/")
        pfd = self.dir_fd(parent, hops)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(name, 0o755, dir_fd=pfd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if not stat.S_ISLNK(os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode):
                raise InvalidArgument(f"{rel}: not a directory") from None
            target = os.readlink(name, dir_fd=pfd)
            if target.startswith("/"):
                raise UnsafePath(f"{rel}: symlink to {target} points outside the layer") from None
            try:
                resolved = normalize(f"{parent}/{target}")
            except UnsafePath:
                raise UnsafePath(f"{rel}: symlink to {target} points outside the layer") from None
            fd = os.dup(self.dir_fd(resolved, hops + 1))
            self.aliases.add(rel)
        if len(self.dirs) >= _MAX_CACHED_DIRS:
            self._forget_dirs()
        self.dirs[rel] = fd
        if os.fstat(fd).st_mode & stat.S_ISGID:
            self.setgid_dirs.add(rel)
        return fd

    def _remove(self, pfd: int, name: str, rel: str) -> None:
        """Remove whatever is at ``name`` (a tree too): the member replaces it."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            _rmtree_at(pfd, name)
            self._forget_dirs(rel)
        else:
            os.unlink(name, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self._forget_dirs(rel)

    # -- members ---------------------------------------------------------------------------

    def _owner_and_mode(self, m: Member, parent: str, fd: int | None, pfd: int, name: str,
                        set_mode: bool, *, symlink: bool = False) -> None:
        """chown, then chmod (chown clears set-id bits), by fd when there is one.

        Skipped when the creating syscall already got them right (root-owned, umask-only
        mode): two syscalls fewer per file is most of the gap to GNU tar.
        """
        if (m.uid, m.gid) != (self.euid, self.egid) or parent in self.setgid_dirs:
            if fd is not None:
                os.fchown(fd, m.uid, m.gid)
            else:
                os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            set_mode = True
        if set_mode and not symlink:   # chmod on a symlink would follow it
            if fd is not None:
                os.fchmod(fd, m.mode)
            else:
                os.chmod(name, m.mode, dir_fd=pfd)

    def _xattrs(self, m: Member, fd: int | None, pfd: int, name: str) -> None:
        for key, value in (m.xattrs or {}).items():
            if key.startswith(("trusted.overlay.", "user.overlay.")):
                continue   # would change how overlayfs reads the layer; never taken from a tar
            try:
                if fd is not None:
                    os.setxattr(fd, key, value)
                else:
                    os.setxattr(f"/proc/self/fd/{pfd}/{name}", key, value,
                                follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def extract(self, m: Member, src: Source) -> None:
        if self.retired:
            self._close_retired()
        rel = normalize(m.name)
        parent, _, name = rel.rpartition("/")
        pfd = self.dirs.get(parent)
        if pfd is not None and name and m.type in REGULAR and self.created is None \
                and not name.startswith(WHITEOUT):
            self._regular(m, src, parent, pfd, name, rel)   # the hot path, kept short
            return
        if not rel:
            if m.type == DIR:   # the root itself ("./"): take its owner, mode and time
                self._owner_and_mode(m, "", self.root, self.root, ".", True)
                self.dir_times.append(("", m.mtime_ns))
            return
        if name.startswith(WHITEOUT):
            self._whiteout(m, parent, name)
            return
        pfd = self.dir_fd(parent)
        if self.created is not None:
            self._note_created(rel)
        typ = m.type
        if typ == DIR:
            self._directory(m, rel, parent, pfd, name)
        elif typ == SYM:
            self._create(lambda: os.symlink(m.linkname, name, dir_fd=pfd), pfd, name, rel)
            self.size += len(os.fsencode(m.linkname))   # a symlink's size: its target's bytes
            self._owner_and_mode(m, parent, None, pfd, name, False, symlink=True)
            self._xattrs(m, None, pfd, name)
            os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif typ == LNK:
            self._hardlink(m, rel, pfd, name)
        elif typ in (CHR, BLK, FIFO):
            self._special(m, parent, pfd, name, rel)
        else:   # regular, contiguous, or unknown (extracted as a regular file, as GNU tar does)
            self._regular(m, src, parent, pfd, name, rel)

    def _note_created(self, rel: str) -> None:
        created = self.created
        assert created is not None
        while rel and rel not in created:
            created.add(rel)
            rel = rel.rpartition("/")[0]

    def _create(self, make: Any, pfd: int, name: str, rel: str) -> None:
        try:
            make()
        except FileExistsError:
            self._remove(pfd, name, rel)
            make()

    def _regular(self, m: Member, src: Source, parent: str, pfd: int, name: str,
                 rel: str) -> None:
        mode = m.mode & 0o777
        try:
            fd = os.open(name, _FILE_FLAGS, mode, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, name, rel)
            fd = os.open(name, _FILE_FLAGS, mode, dir_fd=pfd)
        try:
            size = m.size
            if size:
                src.write_to(fd, size)
                self.size += size
                if size >= _WRITEBACK_MIN:   # to disk while we go on: the layer's sync is short
                    start_writeback(fd, 0, size)
            if m.mode != (mode & ~self.umask) or m.uid != self.euid or m.gid != self.egid \
                    or parent in self.setgid_dirs:
                self._owner_and_mode(m, parent, fd, pfd, name, m.mode != (mode & ~self.umask))
            if m.xattrs:
                self._xattrs(m, fd, pfd, name)
            mtime = m.mtime_ns
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _directory(self, m: Member, rel: str, parent: str, pfd: int, name: str) -> None:
        mode = m.mode & 0o777
        try:
            os.mkdir(name, mode, dir_fd=pfd)
            fresh = True
        except FileExistsError:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            fresh = stat.S_ISDIR(st.st_mode)
            if not fresh:   # a file or symlink is in the way: the directory replaces it
                self._remove(pfd, name, rel)
                os.mkdir(name, mode, dir_fd=pfd)
                fresh = True
            else:
                fresh = False
        fd = self.dir_fd(rel)
        self._owner_and_mode(m, parent, fd, pfd, name,
                             not fresh or m.mode != (mode & ~self.umask))
        if m.mode & stat.S_ISGID:
            self.setgid_dirs.add(rel)
        if m.xattrs:
            self._xattrs(m, fd, pfd, name)
        self.dir_times.append((rel, m.mtime_ns))

    def _hardlink(self, m: Member, rel: str, pfd: int, name: str) -> None:
        target = normalize(m.linkname)
        if not target:
            raise UnsafePath(f"{m.name}: hard link to the layer root")
        if target == rel:
            return
        tparent, _, tname = target.rpartition("/")
        tfd = self.dir_fd(tparent)
        try:
            self._create(lambda: os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd,
                                         follow_symlinks=False), pfd, name, rel)
        except FileNotFoundError:
            raise InvalidArgument(f"{m.name}: hard link target {m.linkname} not found") from None

    def _special(self, m: Member, parent: str, pfd: int, name: str, rel: str) -> None:
        if m.type == FIFO:
            self._create(lambda: os.mkfifo(name, m.mode & 0o777, dir_fd=pfd), pfd, name, rel)
        else:
            whiteout = m.type == CHR and m.devmajor == 0 and m.devminor == 0
            if not (whiteout or self.allow_devices):
                raise UnsafePath(f"{m.name}: device nodes are not allowed here")
            kind = stat.S_IFCHR if m.type == CHR else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
            self._create(lambda: os.mknod(name, kind | (m.mode & 0o777), dev, dir_fd=pfd),
                         pfd, name, rel)
        self._owner_and_mode(m, parent, None, pfd, name, True)
        os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _whiteout(self, m: Member, parent: str, name: str) -> None:
        pfd = self.dir_fd(parent)
        if name == OPAQUE:
            if self.for_overlay:
                os.setxattr(pfd, OVERLAY_OPAQUE, b"y")
            else:
                self._clear_lower(pfd, parent)
            return
        if name.startswith(".wh..wh."):
            return   # other AUFS metadata (.wh..wh.plnk, ...): nothing to apply
        victim = name[len(WHITEOUT):]
        if victim in ("", ".", ".."):
            raise UnsafePath(f"{m.name}: invalid whiteout")
        rel = f"{parent}/{victim}" if parent else victim
        self._remove(pfd, victim, rel)
        if self.for_overlay:
            os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            os.chown(victim, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(victim, ns=(m.mtime_ns, m.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _clear_lower(self, pfd: int, parent: str) -> None:
        """Opaque dir when flattening: drop every entry this layer did not write."""
        assert self.created is not None
        prefix = f"{parent}/" if parent else ""
        for entry in os.listdir(pfd):
            if prefix + entry not in self.created:
                self._remove(pfd, entry, prefix + entry)

    def finish(self) -> None:
        """Directory times last: creating their children changed them."""
        for rel, mtime_ns in self.dir_times:
            self._close_retired()
            try:
                fd = self.dir_fd(rel)
            except (OSError, PyjailError):
                continue   # removed or replaced later in the stream
            os.utime(fd, ns=(mtime_ns, mtime_ns))


def _rmtree_at(pfd: int, name: str) -> None:
    """Remove a tree below a directory fd without following symlinks."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _rmtree_at(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=pfd)


@contextlib.contextmanager
def open_source(tar: BinaryIO | str | os.PathLike[str],
                hasher: Any = None) -> Iterator[tuple[str, Source]]:
    """The uncompressed tar stream of a path or binary file, and the compression it had."""
    if isinstance(tar, (str, os.PathLike)):
        with open(tar, "rb", buffering=0) as f:
            kind, chunks = tarstream.decompressed_chunks(f)
            try:
                yield kind, Source(chunks, hasher)
            finally:
                getattr(chunks, "close", lambda: None)()
    else:
        kind, chunks = tarstream.decompressed_chunks(tar)
        try:
            yield kind, Source(chunks, hasher)
        finally:
            getattr(chunks, "close", lambda: None)()


def extract_stream(src: Source, dest: Path, *, for_overlay: bool = True,
                   allow_devices: bool | None = None, size_hint: int | None = None) -> int:
    """Extract an already opened stream; returns the bytes written (file content and
    symlink targets: Docker's size rule, as ``system df`` measures it).

    ``size_hint`` (bytes of the archive, when known) picks the way: large archives into an
    empty directory go through GNU tar (see gnutar), small ones stay in this process.
    """
    if allow_devices is None:
        allow_devices = os.geteuid() == 0
    dest = Path(dest)
    if src.tell() == 0 and src.tap is None and gnutar.usable(dest, size_hint):
        return _extract_with_tar(src, dest, for_overlay, allow_devices)
    ex = _Extractor(dest, for_overlay, allow_devices)
    try:
        _extract_members(ex, tarstream.members(src), src)
    finally:
        ex.close()
    return ex.size


def _extract_members(ex: _Extractor, members: Iterator[Member], src: Source,
                     first: Member | None = None) -> None:
    """The Python extractor over ``members`` (after ``first``, when given), then dir times."""
    member = first
    try:
        if first is not None:
            ex.extract(first, src)
        for member in members:
            ex.extract(member, src)
    except PyjailError:
        raise
    except ValueError as e:   # e.g. an embedded NUL reaching an os call
        raise UnsafePath(f"{member.name if member else '?'!r}: {e}") from None
    except OSError as e:
        name = member.name if member else "?"
        raise PyjailError(f"cannot extract {name}: {e.strerror or e}") from e
    ex.finish()


def _extract_with_tar(src: Source, dest: Path, for_overlay: bool, allow_devices: bool) -> int:
    """Members checked here, made by ``tar -x``, until one tar would treat otherwise; from
    that one on, the Python extractor. Whiteouts and xattrs are applied at the hand-over."""
    checker = gnutar.Checker(allow_devices, normalize)
    tar = gnutar.TarProcess(dest)
    forward = gnutar.Forwarder(tar.fd)
    src.tap = forward
    members = tarstream.members(src)
    odd: Member | None = None
    try:
        try:
            for m in members:
                if checker.accept(m, normalize(m.name)):
                    forward.release(src.tell() + gnutar.padded(m))
                else:
                    odd = m
                    break
            else:
                forward.release(src.tell())   # the end-of-archive block, as far as pulled
            forward.flush()
        except BrokenPipeError:
            raise tar.broken() from None
        src.tap = None
        tar.finish()
    except BaseException:
        src.tap = None
        tar.kill()
        raise
    if odd is None and not checker.whiteouts and not checker.with_xattrs:
        return checker.size
    ex = _Extractor(dest, for_overlay, allow_devices)
    try:
        _apply_after_tar(ex, checker, dest)
        if odd is not None:
            _extract_members(ex, members, src, odd)
        elif checker.whiteouts:
            ex.finish()   # the whiteouts changed their directories' times
    finally:
        ex.close()
    return checker.size + ex.size


def _apply_after_tar(ex: _Extractor, fixups: gnutar.Fixups, dest: Path) -> None:
    """What tar cannot do: overlay whiteouts from the markers it extracted, and xattrs; the
    Python extractor takes over tar's tree (directory times, paths this layer wrote)."""
    ex.dir_times = list(fixups.dir_times)
    if ex.created is not None and isinstance(fixups, gnutar.Checker):
        ex.created = fixups.dirs | fixups.others
    try:
        for m, parent, name in fixups.with_xattrs:
            ex._xattrs(m, None, ex.dir_fd(parent), name)
        for m, parent, name in fixups.whiteouts:
            pfd = ex.dir_fd(parent)
            os.unlink(name, dir_fd=pfd)   # the marker tar made as an empty file
            ex._whiteout(m, parent, name)
    except OSError as e:
        raise PyjailError(f"cannot extract into {dest}: {e.strerror or e}") from e


def finish_tar_tree(dest: Path, fixups: gnutar.Fixups) -> None:
    """Apply ``fixups`` to the overlay layer dir ``dest`` that tar extracted."""
    if not fixups.whiteouts and not fixups.with_xattrs:
        return
    ex = _Extractor(dest, True, os.geteuid() == 0)
    try:
        _apply_after_tar(ex, fixups, dest)
        if fixups.whiteouts:
            ex.finish()
    finally:
        ex.close()


def extract_layer(tar: BinaryIO | str | os.PathLike[str], dest: Path | str, *,
                  for_overlay: bool = True, allow_devices: bool | None = None) -> int:
    """Unpack a (possibly compressed) layer tar into ``dest``; returns the file bytes written.

    ``for_overlay``: keep OCI whiteouts as overlayfs ones (0/0 char device, opaque xattr) so
    ``dest`` can serve as a lowerdir; otherwise apply them by deleting from ``dest``.
    ``allow_devices`` defaults to "running as root".
    """
    hint = os.stat(tar).st_size if isinstance(tar, (str, os.PathLike)) else None
    with open_source(tar) as (_, src):
        return extract_stream(src, Path(dest), for_overlay=for_overlay,
                              allow_devices=allow_devices, size_hint=hint)


# -- creating a layer from an overlay upper dir ----------------------------------------------

@runtime_checkable
class HashingSink(Protocol):
    """A sink that hashes what it is given (a BlobWriter; a backup archive member):
    ``finish`` returns ``sha256:`` of everything written."""

    def write(self, data: bytes, /) -> int: ...

    def finish(self) -> str: ...


class _LayerWriter:
    """Tar bytes out in ~1 MiB writes (headers and small files batched), hashed on the way.

    Into a HashingSink (commit, build, backups) a second thread hashes and writes while
    this one walks the tree and reads files: both sha256 and write() release the GIL, so
    the two cores overlap. Any other sink is written and hashed on the caller's thread.
    """

    def __init__(self, out: BinaryIO | HashingSink) -> None:
        self.out = out
        self.hash = None if isinstance(out, HashingSink) else hashlib.sha256()
        self.pending: list[bytes] = []
        self.buffered = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._failure: list[BaseException] = []
        if isinstance(out, HashingSink):
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._drain, name="layer-writer",
                                            daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if not self._failure:
                try:
                    self.out.write(data)
                except BaseException as exc:  # noqa: BLE001 - re-raised by close()
                    self._failure.append(exc)

    def close(self) -> None:
        """Wait for the writer thread; raise what it hit."""
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._failure:
            raise self._failure[0]

    def add(self, data: bytes) -> None:
        self.pending.append(data)
        self.buffered += len(data)
        if self.buffered >= tarstream.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._write(b"".join(self.pending))
            self.pending, self.buffered = [], 0

    def _write(self, data: bytes) -> None:
        if self._queue is not None:
            if self._failure:
                raise self._failure[0]
            self._queue.put(data)
            return
        if self.hash is not None:
            self.hash.update(data)
        self.out.write(data)

    def file(self, header: bytes, fd: int, size: int, path: str) -> None:
        """A member's header and the data of the open file ``fd``; large files skip the
        batching buffer. ``path`` only names the file in errors."""
        if size + self.buffered < tarstream.CHUNK:   # small: one read, batched
            data = os.read(fd, size)
            if len(data) != size:
                raise PyjailError(f"{path} changed size while it was archived")
            pending = self.pending
            pending.append(header)
            pending.append(data)
            pad = -size % tarstream.BLOCK
            if pad:
                pending.append(_ZEROS[:pad])
            self.buffered += len(header) + size + pad
            if self.buffered >= tarstream.CHUNK:
                self.flush()
            return
        self.add(header)
        self.flush()
        remaining = size
        while remaining:
            chunk = os.read(fd, min(remaining, tarstream.CHUNK))
            if not chunk:
                raise PyjailError(f"{path} shrank while it was archived")
            self._write(chunk)
            remaining -= len(chunk)
        if size % tarstream.BLOCK:
            self.add(bytes(tarstream.BLOCK - size % tarstream.BLOCK))

    def digest(self) -> str:
        self.flush()
        self.close()
        if self.hash is None:
            assert isinstance(self.out, HashingSink)
            return self.out.finish()
        return "sha256:" + self.hash.hexdigest()


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = stat.S_IFMT(0o170000), stat.S_IFREG, stat.S_IFDIR, \
    stat.S_IFLNK
_S_IFCHR, _S_IFBLK, _S_IFIFO, _S_IFSOCK = stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, \
    stat.S_IFSOCK


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name
_ZEROS = bytes(tarstream.BLOCK)
_TAIL = b"ustar\x0000" + bytes(64)
_TAIL_PAD = bytes(167)
_NO_DEV = bytes(16)
# checksum of the constant bytes: the 8 spaces counted in place of the field, the magic
_CHKSUM_BASE = 8 * 32 + sum(_TAIL)
_ids_cache: dict[tuple[int, int, int], tuple[bytes, int]] = {}


def _ids(mode: int, uid: int, gid: int) -> tuple[bytes, int] | None:
    """The mode/uid/gid fields and their byte sum (memoised: they repeat), None if out of
    octal range."""
    if not (0 <= uid < 0o10000000 and 0 <= gid < 0o10000000):
        return None
    field = b"%07o\0%07o\0%07o\0" % (mode & 0o7777, uid, gid)
    ids = (field, sum(field))
    if len(_ids_cache) < 4096:
        _ids_cache[(mode, uid, gid)] = ids
    return ids


_FILE_TAIL = REG + bytes(100) + _TAIL + _NO_DEV + _TAIL_PAD
_FILE_CHKSUM_BASE = _CHKSUM_BASE + REG[0]


def file_header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int
                ) -> bytes | None:
    """``ustar_header`` of a regular file (no link name, no device), the commonest member,
    with the constant parts precomputed; None where a PAX record is needed."""
    if not name.isascii():
        return None
    bname = name.encode()
    if len(bname) > 100 or not (0 <= size < 0o100000000000 and 0 <= mtime < 0o100000000000):
        return None
    ids = _ids_cache.get((mode, uid, gid)) or _ids(mode, uid, gid)
    if ids is None:
        return None
    times = b"%011o\0%011o\0" % (size, mtime)
    chksum = _FILE_CHKSUM_BASE + sum(bname) + ids[1] + sum(times)
    return b"".join((bname.ljust(100, b"\0"), ids[0], times, b"%06o\0 " % chksum, _FILE_TAIL))


def ustar_header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int,
                 typ: bytes, linkname: str = "", devmajor: int = 0, devminor: int = 0,
                 ) -> bytes | None:
    """The header ``tarfile`` writes in PAX format when no PAX record is needed (ASCII names
    that fit, numbers in octal range), byte for byte, at a tenth of the cost; else None."""
    if not (name.isascii() and linkname.isascii()):
        return None
    bname = name.encode()
    blink = linkname.encode()
    if len(bname) > 100 or len(blink) > 100 or not (
            0 <= size < 0o100000000000 and 0 <= mtime < 0o100000000000):
        return None
    ids = _ids_cache.get((mode, uid, gid)) or _ids(mode, uid, gid)
    if ids is None:
        return None
    times = b"%011o\0%011o\0" % (size, mtime)
    if typ in (b"3", b"4"):
        if not (0 <= devmajor < 0o10000000 and 0 <= devminor < 0o10000000):
            return None
        dev = b"%07o\0%07o\0" % (devmajor, devminor)
    else:
        dev = _NO_DEV
    chksum = _CHKSUM_BASE + sum(bname) + ids[1] + sum(times) + typ[0] + sum(blink) + sum(dev)
    return b"".join((bname.ljust(100, b"\0"), ids[0], times, b"%06o\0 " % chksum, typ,
                     blink.ljust(100, b"\0"), _TAIL, dev, _TAIL_PAD))


def _listxattrs(target: str | int) -> dict[str, str]:
    """An entry's xattrs as PAX records (overlayfs' own left out); ``target`` is an open
    fd, or a path whose last component is not followed."""
    try:
        names = os.listxattr(target, follow_symlinks=False) if isinstance(target, str) \
            else os.listxattr(target)
    except OSError:
        return {}
    if not names:
        return {}
    out: dict[str, str] = {}
    for key in sorted(names):
        if key.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        try:
            value = os.getxattr(target, key, follow_symlinks=False) \
                if isinstance(target, str) else os.getxattr(target, key)
        except OSError:
            continue
        out["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return out


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE) == b"y"
    except OSError:
        return False


def _pax_header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int, typ: bytes,
                linkname: str = "", devmajor: int = 0, devminor: int = 0,
                xattrs: dict[str, str] | None = None) -> bytes:
    """One member's header: the fast ustar form when it fits, else tarfile's PAX."""
    if not xattrs:
        fast = ustar_header(name, mode, uid, gid, size, mtime, typ, linkname, devmajor, devminor)
        if fast is not None:
            return fast
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.size, info.mtime = mode, uid, gid, size, mtime
    info.type, info.linkname = typ, linkname
    info.devmajor, info.devminor = devmajor, devminor
    info.uname = info.gname = ""
    info.pax_headers = xattrs or {}
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def create_layer(upper: Path | str, out: BinaryIO | HashingSink,
                 fixups: gnutar.Fixups | None = None) -> str:
    """Tar an overlay upper dir as an OCI layer (whiteouts converted); returns its diff_id.

    Entries come parents first, siblings sorted by name, owners numeric, times truncated to
    seconds (as Docker does), so the same tree always gives the same bytes and diff_id.
    ``out`` is any binary sink; a HashingSink's own hash is used (the data is hashed once).
    ``fixups`` collects what ``tar -x`` of these bytes leaves to do (unpacking.py).
    """
    upper = os.fspath(upper)
    w = _LayerWriter(out)
    links: dict[tuple[int, int], str] = {}

    def fix(arc: str, typ: bytes, st: os.stat_result, dir_time: tuple[str, int] | None,
            xattrs: dict[str, str] | None = None) -> None:
        """Note a whiteout marker or a member with xattrs (and its directory's time)."""
        assert fixups is not None
        parent, _, name = arc.rpartition("/")
        values = {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
                  for k, v in (xattrs or {}).items()} or None
        m = Member(arc, typ, stat.S_IMODE(st.st_mode) if values else 0o600, st.st_uid,
                   st.st_gid, 0, int(st.st_mtime) * 1_000_000_000, "", 0, 0, values)
        (fixups.with_xattrs if values else fixups.whiteouts).append((m, parent, name))
        if dir_time is not None and not values:
            fixups.dir_times.append(dir_time)

    def walk(dfd: int, dirpath: str, prefix: str, dir_time: tuple[str, int] | None) -> None:
        """One directory, by fd: every lookup is one component from it."""
        with os.scandir(dfd) as it:
            entries = sorted(it, key=_entry_name)
        for entry in entries:
            name = entry.name
            arc = prefix + name
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            kind = mode & _S_IFMT
            perm, uid, gid, mtime = mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime)
            if kind == _S_IFREG and (st.st_nlink == 1 or (st.st_dev, st.st_ino) not in links):
                # the hot path: open once, xattrs by fd, header inline when it fits
                fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
                try:
                    xattrs = _listxattrs(fd)
                    size = st.st_size
                    header = None if xattrs else file_header(arc, perm, uid, gid, size,
                                                             mtime)
                    if header is None:
                        header = _pax_header(arc, perm, uid, gid, size, mtime, REG,
                                             xattrs=xattrs)
                    if st.st_nlink > 1:
                        links[(st.st_dev, st.st_ino)] = arc
                    w.file(header, fd, size, dirpath + "/" + name)
                finally:
                    os.close(fd)
                if fixups is not None:
                    fixups.size += size
                    if xattrs:
                        fix(arc, REG, st, None, xattrs)
                continue
            if kind == _S_IFCHR and st.st_rdev == 0:   # overlay whiteout
                w.add(_pax_header(prefix + WHITEOUT + name, 0o600, uid, gid, 0, mtime, REG))
                if fixups is not None:
                    fix(prefix + WHITEOUT + name, REG, st, dir_time)
                continue
            if kind == _S_IFSOCK:
                continue   # sockets cannot be archived (GNU tar skips them too)
            if kind == _S_IFDIR:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                try:
                    xattrs = _listxattrs(sub)
                    if xattrs and fixups is not None:
                        fix(arc, DIR, st, None, xattrs)
                    w.add(_pax_header(arc + "/", perm, uid, gid, 0, mtime, DIR, xattrs=xattrs))
                    this_time = (arc, mtime * 1_000_000_000)
                    if _is_opaque(sub):
                        w.add(_pax_header(arc + "/" + OPAQUE, perm, uid, gid, 0, mtime, REG))
                        if fixups is not None:
                            fix(arc + "/" + OPAQUE, REG, st, this_time)
                    walk(sub, dirpath + "/" + name, arc + "/", this_time)
                finally:
                    os.close(sub)
                continue
            xattrs = _listxattrs(dirpath + "/" + name)   # not opened: read by path
            if xattrs and fixups is not None:
                fix(arc, REG, st, None, xattrs)
            if kind == _S_IFLNK:
                w.add(_pax_header(arc, perm, uid, gid, 0, mtime, SYM,
                                  os.readlink(name, dir_fd=dfd), xattrs=xattrs))
                if fixups is not None:
                    fixups.size += st.st_size
            elif kind == _S_IFREG:   # a further name of a file already archived
                w.add(_pax_header(arc, perm, uid, gid, 0, mtime, LNK,
                                  links[(st.st_dev, st.st_ino)], xattrs=xattrs))
            elif kind in (_S_IFCHR, _S_IFBLK):
                w.add(_pax_header(arc, perm, uid, gid, 0, mtime,
                                  CHR if kind == _S_IFCHR else BLK,
                                  devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev),
                                  xattrs=xattrs))
            elif kind == _S_IFIFO:
                w.add(_pax_header(arc, perm, uid, gid, 0, mtime, FIFO, xattrs=xattrs))

    top = os.open(upper, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        walk(top, upper, "", None)
        w.add(bytes(2 * tarstream.BLOCK))
        return w.digest()
    finally:
        os.close(top)
        with contextlib.suppress(BaseException):
            w.close()
