"""An offline base image from the host's static busybox (Debian's busybox-static).

The tar is built deterministically (sorted entries, numeric owner 0, every mtime and the
config's ``created`` set to the busybox binary's own mtime), so bootstrapping twice on one
host, or on two hosts with the same busybox package, yields the same image id.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pyjail.errors import InvalidArgument
from pyjail.images.store import Image, ImageStore, goarch

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DIRS = {  # path -> mode
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
    "root": 0o700, "run": 0o755, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777,
    "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "var": 0o755,
}
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
}
_PT_INTERP = 3


def elf_interpreter(path: str) -> str | None:
    """The ELF program interpreter (dynamic loader) of ``path``; None for a static binary."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            raise InvalidArgument(f"{path} is not an ELF executable")
        is64, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        f.seek(0)
        header = f.read(64 if is64 else 52)
        if is64:
            phoff, = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        else:
            phoff, = struct.unpack_from(order + "I", header, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            entry = f.read(phentsize)
            p_type, = struct.unpack_from(order + "I", entry, 0)
            if p_type == _PT_INTERP:
                if is64:
                    offset, = struct.unpack_from(order + "Q", entry, 8)
                    size, = struct.unpack_from(order + "Q", entry, 32)
                else:
                    offset, = struct.unpack_from(order + "I", entry, 4)
                    size, = struct.unpack_from(order + "I", entry, 16)
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode(errors="replace")
    return None


def _applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    paths = {line.strip().lstrip("/") for line in out.stdout.splitlines() if line.strip()}
    return sorted(p for p in paths if ".." not in p.split("/") and p != "bin/busybox")


def _version(busybox: str) -> str:
    out = subprocess.run([busybox], check=False, capture_output=True, text=True)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].split(" multi-call")[0].strip() if first else "BusyBox"


def build_rootfs_tar(busybox: str, out: io.BufferedIOBase, mtime: int) -> None:
    """Write the rootfs tar: dirs, /bin/busybox, one symlink per applet, passwd/group."""
    entries: dict[str, tarfile.TarInfo] = {}

    def add(name: str, kind: bytes, mode: int, linkname: str = "", size: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.size = kind, mode, mtime, size
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.linkname = linkname
        entries[name] = info

    for d, mode in DIRS.items():
        add(d, tarfile.DIRTYPE, mode)
    for applet in _applets(busybox):
        parent = applet.rpartition("/")[0]
        while parent and parent not in entries:
            add(parent, tarfile.DIRTYPE, 0o755)
            parent = parent.rpartition("/")[0]
        add(applet, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox")
    size = os.path.getsize(busybox)
    add("bin/busybox", tarfile.REGTYPE, 0o755, size=size)
    for name, text in FILES.items():
        add(name, tarfile.REGTYPE, 0o644, size=len(text.encode()))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(entries):
            info = entries[name]
            if name == "bin/busybox":
                with open(busybox, "rb") as f:
                    tf.addfile(info, f)
            elif name in FILES:
                tf.addfile(info, io.BytesIO(FILES[name].encode()))
            else:
                tf.addfile(info)


def busybox_image(store: ImageStore, reference: str = "busybox:latest",
                  busybox: str = "/bin/busybox") -> Image:
    """Create (or find again: same bytes, same id) a busybox base image and tag it."""
    path = shutil.which(busybox) if os.sep not in busybox else busybox
    if not path or not os.path.isfile(path):
        raise InvalidArgument(f"{busybox} not found: install busybox-static")
    interpreter = elf_interpreter(path)
    if interpreter is not None:
        raise InvalidArgument(f"{path} is dynamically linked (interpreter {interpreter}); "
                              "a base image needs a static busybox: install busybox-static")
    mtime = int(os.stat(path).st_mtime)
    created = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    version = _version(path)
    config = {
        "architecture": goarch(), "os": "linux", "created": created,
        "config": {"Env": [f"PATH={PATH}"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": created,
                     "created_by": f"pyjail bootstrap: {version} from {path}"}],
    }
    with tempfile.NamedTemporaryFile(prefix="pyjail-bootstrap-", suffix=".tar") as tmp:
        build_rootfs_tar(path, tmp, mtime)
        tmp.flush()
        return store.create_image([Path(tmp.name)], config, reference)
