"""A Debian base image without a registry: ``debootstrap --variant=minbase``, imported.

The mirror is never built in: it is whatever the host's apt already uses (one-line
``sources.list`` files and deb822 ``*.sources`` files), or given by the caller. The rootfs
is streamed into the store as a tar, with /dev, /proc, /sys, apt's package lists and
downloaded .debs left out, as Docker's official image leaves them out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pyjail.errors import InvalidArgument, NotFound, PyjailError
from pyjail.images.store import Image, ImageStore

APT_DIR = Path("/etc/apt")
_SIDE_SUITES = ("-security", "-updates", "-backports", "-proposed-updates")
_EXCLUDE = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*",
            "./var/cache/apt/archives/*.deb", "./var/cache/apt/*.bin",
            "./var/lib/apt/lists/*", "./var/log/*.log")
_SUITE = re.compile(r"^[a-z][a-z0-9.-]*$")


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` entry: where packages of a suite come from."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _one_line_sources(text: str) -> Iterator[AptSource]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])   # [arch=… signed-by=…]
        parts = line.split()
        if len(parts) >= 2:
            yield AptSource(parts[0], (parts[1],), tuple(parts[2:]))


def _deb822_sources(text: str) -> Iterator[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        for uri in fields.get("uris", "").split():
            yield AptSource(uri, suites, tuple(fields.get("components", "").split()))


def apt_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every ``deb`` source the host's apt is configured with, in apt's reading order."""
    files: list[Path] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        files.append(main)
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files.extend(sorted(p for p in parts.iterdir()
                            if p.suffix in (".list", ".sources") and p.is_file()))
    out: list[AptSource] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        parse = _deb822_sources if path.suffix == ".sources" else _one_line_sources
        out.extend(parse(text))
    return out


def find_mirror(suite: str, sources: Iterable[AptSource] | None = None) -> str | None:
    """The mirror for ``suite``: a source carrying it with ``main``; failing that, any
    source of a base suite (not -security/-updates), since a mirror carries every suite."""
    entries = [s for s in (apt_sources() if sources is None else sources)
               if s.uri.startswith(("http://", "https://", "file:/")) and
               (not s.components or "main" in s.components)]
    for s in entries:
        if suite in s.suites:
            return s.uri
    for s in entries:
        if any(not x.endswith(_SIDE_SUITES) and "/" not in x for x in s.suites):
            return s.uri
    return None


def debian_image(store: ImageStore, suite: str = "bookworm", mirror: str | None = None, *,
                 reference: str | None = None, debootstrap: str | None = None,
                 timeout: float = 1800) -> Image:
    """Bootstrap ``suite`` (minbase) from ``mirror`` (default: the host's apt mirror) and
    import it as ``debian:<suite>``."""
    if not _SUITE.match(suite):
        raise InvalidArgument(f"invalid suite name: {suite!r}")
    mirror = mirror or find_mirror(suite)
    if not mirror:
        raise NotFound("no Debian mirror is configured in the host's apt sources; pass one")
    tool = debootstrap or shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
    if tool is None:
        raise NotFound("debootstrap is not installed (apt-get install debootstrap)")
    work = Path(tempfile.mkdtemp(prefix="pyjail-debootstrap-", dir=store.root))
    target = work / "rootfs"
    try:
        run = subprocess.run([tool, "--variant=minbase", suite, str(target), mirror],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        if run.returncode != 0:
            tail = run.stdout.decode(errors="replace").strip().splitlines()[-5:]
            raise PyjailError(f"debootstrap {suite} failed (exit {run.returncode}): "
                              + " | ".join(tail))
        _unmount_below(target)
        return _import(store, target, reference or f"debian:{suite}", suite)
    finally:
        _unmount_below(target)
        shutil.rmtree(work, ignore_errors=True)


def _unmount_below(target: Path) -> None:
    """debootstrap mounts /proc and /sys in the target; a failed run may leave them."""
    prefix = str(target) + "/"
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _import(store: ImageStore, target: Path, reference: str, suite: str) -> Image:
    """Stream the rootfs as a tar into the store (one layer)."""
    cmd = ["tar", "-C", str(target), "--numeric-owner", "--xattrs", "--acls", "-cf", "-"]
    cmd += [f"--exclude={pattern}" for pattern in _EXCLUDE]
    cmd.append(".")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        image = store.import_rootfs(
            proc.stdout, reference, config={"Cmd": ["bash"]},
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            comment=f"debootstrap --variant=minbase {suite}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise PyjailError(f"tar of the bootstrapped rootfs failed: {err.decode(errors='replace')}")
    return image
