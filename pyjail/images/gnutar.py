"""GNU tar as the file-writing half of a layer extraction; Python keeps the checking half.

Why: creating 20,000 small files costs Python about as much per file as the kernel's own
work, so the pure-Python extractor runs at ~0.55x GNU tar. Here Python still parses every
header and applies the same rules (nothing outside the root, devices only when allowed),
and forwards to ``tar -x`` only bytes whose header passed; tar, a process of its own on the
other core, makes the files. Whatever tar would do differently from the Python extractor
(a path given twice, a member below a symlink or a whiteout, a hard link to something not
extracted yet, a refused device, a name with ``..`` or a leading ``/``) ends tar's part at
that member: tar finishes what it was given and the Python extractor goes on from there in
the same directory. OCI whiteouts
and xattrs are applied afterwards by the Python extractor's safe-path code.

Used only where the two give the same tree: as root, into an empty directory.
"""

from __future__ import annotations

import collections
import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pyjail.errors import PyjailError
from pyjail.images import tarstream
from pyjail.images.tarstream import BLK, CHR, DIR, LNK, SYM, Member

WHITEOUT = ".wh."             # OCI whiteout prefix (layers.py uses these too)
OPAQUE = ".wh..wh..opq"
MIN_BYTES = 4 << 20      # below this, starting a process costs more than it saves
_PIPE_SIZE = 1 << 20
_BATCH = 256 << 10
_END = bytes(2 * tarstream.BLOCK)


@functools.cache
def gnu_tar() -> str | None:
    """The path of GNU tar, or None (another tar's options and safety rules differ)."""
    exe = shutil.which("tar")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, timeout=10,
                             env={"PATH": os.defpath, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if out.startswith(b"tar (GNU tar)") else None


def usable(dest: Path, size_hint: int | None) -> bool:
    """Whether ``tar -x`` may do this extraction (see the module docstring).

    ``PYJAIL_LAYER_EXTRACTOR``: ``python`` never uses tar, ``tar`` uses it whatever the size
    (where it may), unset chooses by ``size_hint``.
    """
    choice = os.environ.get("PYJAIL_LAYER_EXTRACTOR", "")
    if choice == "python" or os.geteuid() != 0:
        return False
    if choice != "tar" and (size_hint is None or size_hint < MIN_BYTES):
        return False
    if gnu_tar() is None:
        return False
    with os.scandir(dest) as entries:
        return next(entries, None) is None


class Fixups:
    """What tar leaves undone in a layer it extracted: whiteouts (tar made their markers as
    empty files), xattrs (of members ``(member, parent, name)``), and the times of the
    directories those changes touch; plus the bytes of file content it wrote."""

    def __init__(self) -> None:
        self.whiteouts: list[tuple[Member, str, str]] = []
        self.with_xattrs: list[tuple[Member, str, str]] = []
        self.dir_times: list[tuple[str, int]] = []
        self.size = 0


class Checker(Fixups):
    """Decides, member by member, whether tar makes exactly what the Python extractor would,
    and records the fixups of those it lets tar make."""

    def __init__(self, allow_devices: bool, normalize: Callable[[str], str]) -> None:
        super().__init__()
        self.allow_devices = allow_devices
        self.normalize = normalize
        self.dirs: set[str] = {""}          # plain directories, given or implied
        self.implied: set[str] = set()      # of those, the ones no member named yet
        self.others: set[str] = set()       # every other path extracted
        self.whited: set[str] = set()       # victims of whiteouts

    def accept(self, m: Member, rel: str) -> bool:
        if _unclean(m.name) or (m.type == LNK and _unclean(m.linkname)):
            return False   # tar refuses ".." and strips "/": the Python extractor resolves them
        parent, _, name = rel.rpartition("/")
        if not rel:   # the root itself: tar applies its owner, mode and time to dest
            if m.type != DIR or m.xattrs:
                return False
            self.dir_times.append(("", m.mtime_ns))
            return True
        typ = m.type
        if rel in self.implied and typ == DIR:   # tar and Python both update it in place
            self.implied.discard(rel)
            self.dir_times.append((rel, m.mtime_ns))
            if m.xattrs:
                self.with_xattrs.append((m, parent, name))
            return True
        if rel in self.dirs or rel in self.others or not self._parent_ok(parent, rel):
            return False
        if name.startswith(WHITEOUT):   # tar makes an empty file; replaced afterwards
            victim = name[len(WHITEOUT):]
            if victim in ("", ".", "..") or m.xattrs or typ == DIR:
                return False   # the Python extractor names the error or ignores it
            if not name.startswith(".wh..wh."):
                self.whited.add(f"{parent}/{victim}" if parent else victim)
            self.whiteouts.append((m, parent, name))
            self.others.add(rel)
            return True
        if typ == DIR:
            self.dirs.add(rel)
            self.dir_times.append((rel, m.mtime_ns))
        elif typ == LNK:
            try:
                target = self.normalize(m.linkname)
            except PyjailError:
                return False   # the Python extractor names the error
            if target not in self.others or target.rpartition("/")[2].startswith(WHITEOUT):
                return False
        elif typ in (CHR, BLK):
            if not (self.allow_devices or (typ == CHR and m.devmajor == 0 == m.devminor)):
                return False
        elif typ == SYM:
            self.size += len(os.fsencode(m.linkname))
        elif typ in tarstream.REGULAR or typ not in tarstream.HEADER_ONLY:
            self.size += m.size
        if typ != DIR:
            self.others.add(rel)
        if m.xattrs:
            self.with_xattrs.append((m, parent, name))
        return True

    def _parent_ok(self, parent: str, rel: str) -> bool:
        """Every ancestor a directory (or missing: created 0755, as the Python path does),
        none of them a symlink or other file, none whited out."""
        if self.whited and any(rel == w or rel.startswith(w + "/") for w in self.whited):
            return False
        if parent in self.dirs:
            return True
        missing = []
        path = ""
        for part in parent.split("/"):
            path = f"{path}/{part}" if path else part
            if path in self.others:
                return False
            if path not in self.dirs:
                missing.append(path)
        self.dirs.update(missing)
        self.implied.update(missing)
        return True


def _unclean(name: str) -> bool:
    return name.startswith("/") or ".." in name.split("/")


class Forwarder:
    """Source tap: hands the stream to tar's stdin, never past the last checked member."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.held: collections.deque[memoryview] = collections.deque()
        self.sent = 0
        self.released = 0

    def update(self, chunk: bytes) -> None:
        self.held.append(memoryview(chunk))
        if self.released - self.sent >= _BATCH:
            self._send()

    def release(self, offset: int) -> None:
        """Everything before stream offset ``offset`` has been checked. Sent in batches:
        a write per small member would wake tar 20,000 times for 20,000 files."""
        self.released = offset
        if offset - self.sent >= _BATCH:
            self._send()

    def flush(self) -> None:
        """Send everything released (before tar is told the stream ends)."""
        self._send()

    def _send(self) -> None:
        n = self.released - self.sent
        held = self.held
        while n > 0 and held:
            view = held[0]
            if len(view) <= n:
                held.popleft()
            else:
                held[0] = view[n:]
                view = view[:n]
            n -= len(view)
            self.sent += len(view)
            while view:
                view = view[os.write(self.fd, view):]


class TarProcess:
    """``tar -x`` reading a pipe into ``dest``, numeric owners and modes kept."""

    def __init__(self, dest: Path) -> None:
        exe = gnu_tar()
        assert exe is not None
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish/kill
        self.proc = subprocess.Popen(
            [exe, "-x", "-B", "-f", "-", "-C", os.fspath(dest), "--numeric-owner",
             "--same-owner", "--same-permissions"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errors,
            env={"PATH": os.defpath, "LC_ALL": "C"}, close_fds=True)
        assert self.proc.stdin is not None
        self.fd = self.proc.stdin.fileno()
        try:
            fcntl.fcntl(self.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
        except OSError:
            pass

    def finish(self) -> None:
        """End the archive where the caller stopped; wait; raise what tar reported."""
        assert self.proc.stdin is not None
        try:
            os.write(self.fd, _END)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            raise PyjailError(f"tar could not extract the layer: {self._message()}")
        self.errors.close()

    def broken(self) -> PyjailError:
        """The error to raise when tar stopped reading (it exited)."""
        self.proc.wait()
        return PyjailError(f"tar could not extract the layer: {self._message()}")

    def _message(self) -> str:
        self.errors.seek(0)
        lines = [ln for ln in self.errors.read().decode(errors="replace").splitlines()
                 if ln.strip() and "Exiting with failure" not in ln]
        return lines[-1].removeprefix("tar: ") if lines else \
            f"exit status {self.proc.returncode}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.errors.close()


def padded(m: Member) -> int:
    """The bytes of data that follow ``m``'s header in the stream."""
    return (m.size + tarstream.BLOCK - 1) & ~(tarstream.BLOCK - 1)
