"""GNU tar as the writing half of a layer extraction (pyjail.images.gnutar).

Each archive is extracted twice, by the Python extractor alone and with tar doing the
writing, and the two trees must be identical (types, modes, owners, sizes, times, link
counts, content, xattrs, whiteout devices). Spies prove which way ran and where tar handed
over to Python. Runs as root (CI is root); elsewhere tar is never used and these skip.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest

from pyjail.errors import InvalidArgument, PyjailError, UnsafePath
from pyjail.images import gnutar, layers
from pyjail.images.layers import extract_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or gnutar.gnu_tar() is None,
                                reason="tar extraction is used only as root with GNU tar")


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *, mode: int = 0o644,
          uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000, linkname: str = "",
          pax: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)
          ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    info.linkname, info.size = linkname, len(data)
    info.devmajor, info.devminor = dev
    info.pax_headers = pax or {}
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames + ([""] if dirpath == str(root) else []):
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            else:
                content = str(st.st_rdev)
            xattrs = {k: os.getxattr(p, k, follow_symlinks=False)
                      for k in sorted(os.listxattr(p, follow_symlinks=False))}
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            # directories no member names get the time they were made: "recent" in both
            mtime = "recent" if st.st_mtime > 1_700_000_000 else st.st_mtime_ns
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, size,
                                             mtime, st.st_nlink, content, xattrs)
    return out


class Spy:
    """Counts tar processes and hand-overs to the Python extractor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tars = 0
        self.handed_over: list[str] = []
        real_tar, real_members = gnutar.TarProcess.__init__, layers._extract_members

        def tar_init(this: gnutar.TarProcess, dest: Path) -> None:
            self.tars += 1
            real_tar(this, dest)

        def members(ex, it, src, first=None):  # noqa: ANN001, ANN202
            if first is not None:
                self.handed_over.append(first.name)
            return real_members(ex, it, src, first)

        monkeypatch.setattr(gnutar.TarProcess, "__init__", tar_init)
        monkeypatch.setattr(layers, "_extract_members", members)


def both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
              for_overlay: bool = True) -> tuple[dict, dict, Spy]:
    py, viatar = tmp_path / "py", tmp_path / "tar"
    py.mkdir()
    viatar.mkdir()
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "python")
    size_py = extract_layer(io.BytesIO(data), py, for_overlay=for_overlay)
    spy = Spy(monkeypatch)
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "tar")
    size_tar = extract_layer(io.BytesIO(data), viatar, for_overlay=for_overlay)
    assert size_tar == size_py
    assert spy.tars == 1
    return snapshot(py), snapshot(viatar), spy


RICH = [
    entry("./", tarfile.DIRTYPE, mode=0o750, mtime=1_500_000_001),
    entry("etc", tarfile.DIRTYPE, mode=0o755, mtime=1_500_000_002),
    entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o644),
    entry("etc/shadow", data=b"root:*:1::::::\n", mode=0o640, gid=42),
    entry("bin", tarfile.DIRTYPE, mode=0o755, mtime=1_500_000_003),
    entry("bin/ping", data=b"\x7fELF" * 300, mode=0o4755,
          pax={"SCHILY.xattr.security.capability":   # v2, effective, cap_net_raw
               "\x01\x00\x00\x02\x00\x20" + "\x00" * 14}),
    entry("bin/tool", data=b"#!/bin/sh\n", mode=0o2711, uid=1000, gid=1000,
          pax={"SCHILY.xattr.user.origin": "pyjail"}),
    entry("bin/tool-again", tarfile.LNKTYPE, linkname="bin/tool"),
    entry("bin/sh", tarfile.SYMTYPE, linkname="busybox"),
    entry("bin/abs", tarfile.SYMTYPE, linkname="/etc/passwd"),
    entry("bin/up", tarfile.SYMTYPE, linkname="../../../outside"),
    entry("tmp", tarfile.DIRTYPE, mode=0o1777),
    entry("tmp/fifo", tarfile.FIFOTYPE, mode=0o600),
    entry("dev", tarfile.DIRTYPE, mode=0o755),
    entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
    entry("implied/deep/file", data=b"x" * 5000, uid=7, gid=8, mtime=1_400_000_000),
    entry("implied", tarfile.DIRTYPE, mode=0o700, mtime=1_500_000_004),   # after its child
    entry("long/" + "n" * 150, data=b"long name"),
    entry(".wh.gone"),
    entry("opaque", tarfile.DIRTYPE, mode=0o755, mtime=1_500_000_005),
    entry("opaque/.wh..wh..opq"),
    entry("opaque/kept", data=b"k"),
    entry("etc/.wh.motd"),
    entry(".wh..wh.plnk"),
    entry("big", data=os.urandom(3 << 20) + b"tail"),
]


@pytest.mark.parametrize("for_overlay", [True, False], ids=["overlay", "flat"])
def test_same_tree_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             for_overlay: bool) -> None:
    py, viatar, spy = both_ways(tmp_path, monkeypatch, make_tar(*RICH), for_overlay)
    assert viatar == py
    assert spy.handed_over == []   # nothing in RICH needs the Python extractor
    if for_overlay:
        assert stat.S_ISCHR(py["gone"][0]) and py["gone"][6] == "0"
        assert py["opaque"][7] == {"trusted.overlay.opaque": b"y"}
    else:
        assert "gone" not in py
    assert py["bin/ping"][7]["security.capability"].startswith(b"\x01")
    assert py["bin/ping"][0] & 0o7777 == 0o4755
    assert py["bin/tool"][5] == 2
    assert not any(name.rpartition("/")[2].startswith(".wh.") for name in py)


@pytest.mark.parametrize("case", ["dup-type", "under-symlink", "whiteout-then-victim",
                                  "link-to-later", "refused-device", "dot-dot-inside",
                                  "absolute-name"])
def test_hand_over_to_python_where_tar_would_differ(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    before = [entry("a", tarfile.DIRTYPE, mode=0o755), entry("a/one", data=b"1" * 9000),
              entry("a/.wh.old")]
    odd = {
        "dup-type": [entry("a/one", tarfile.DIRTYPE, mode=0o700),
                     entry("a/one/inside", data=b"i")],
        "under-symlink": [entry("link", tarfile.SYMTYPE, linkname="a"),
                          entry("link/through", data=b"t")],
        "whiteout-then-victim": [entry("a/old", data=b"back again")],
        "link-to-later": [entry("a/hard", tarfile.LNKTYPE, linkname="a/later"),
                          entry("a/later", data=b"l")],
        "refused-device": [entry("a/null", tarfile.CHRTYPE, dev=(1, 3))],
        "dot-dot-inside": [entry("a/../b", data=b"b"),
                           entry("a/hard-b", tarfile.LNKTYPE, linkname="a/../b")],
        "absolute-name": [entry("/abs", data=b"abs")],
    }[case]
    after = [entry("z", tarfile.DIRTYPE, mode=0o711, mtime=1_234_567_890),
             entry("z/last", data=b"last")]
    data = make_tar(*before, *odd, *after)
    if case == "link-to-later":    # both refuse it, with the same message
        errors = []
        for way in ("python", "tar"):
            monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", way)
            (tmp_path / way).mkdir()
            with pytest.raises(InvalidArgument) as info:
                extract_layer(io.BytesIO(data), tmp_path / way)
            errors.append(str(info.value))
        assert errors[0] == errors[1]
        return
    if case == "refused-device":   # refused both ways, tar never making the node
        for way in ("python", "tar"):
            monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", way)
            (tmp_path / way).mkdir()
            with pytest.raises(UnsafePath):
                layers.extract_stream(layers.tarstream.Source(iter([data])),
                                      tmp_path / way, allow_devices=False, size_hint=1 << 30)
            assert not os.path.lexists(tmp_path / way / "a" / "null")
        return
    py, viatar, spy = both_ways(tmp_path, monkeypatch, data)
    assert viatar == py
    first_odd = {"under-symlink": "link/through"}.get(case, odd[0][0].name)
    assert [name.rstrip("/") for name in spy.handed_over] == [first_odd]
    assert py["z"][4] == 1_234_567_890 * 10**9   # directory times still right after it


def test_escapes_refused_before_tar_sees_them(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "tar")
    dest = tmp_path / "dest"
    dest.mkdir()
    data = make_tar(entry("fine", data=b"f" * 100), entry("../escaped", data=b"e"))
    with pytest.raises(UnsafePath):
        extract_layer(io.BytesIO(data), dest)
    assert not (tmp_path / "escaped").exists()


def test_truncated_stream_kills_tar_and_reports(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "tar")
    spy = Spy(monkeypatch)
    dest = tmp_path / "dest"
    dest.mkdir()
    data = make_tar(entry("a", data=os.urandom(100_000)), entry("b", data=b"b" * 5000))
    with pytest.raises(InvalidArgument, match="end of tar archive"):
        extract_layer(io.BytesIO(data[:60_000]), dest)
    assert spy.tars == 1


def test_tar_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tar itself failing (here: its destination vanishes) is reported with tar's words."""
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "tar")
    dest = tmp_path / "dest"
    dest.mkdir()
    real_init = gnutar.TarProcess.__init__

    def gone(this: gnutar.TarProcess, where: Path) -> None:
        real_init(this, where)
        os.rmdir(where)

    monkeypatch.setattr(gnutar.TarProcess, "__init__", gone)
    with pytest.raises(PyjailError, match="tar could not extract the layer"):
        extract_layer(io.BytesIO(make_tar(entry("f", data=b"x" * 4096))), dest)


def test_size_decides_in_auto_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYJAIL_LAYER_EXTRACTOR", raising=False)
    spy = Spy(monkeypatch)
    small, large = tmp_path / "small.tar", tmp_path / "large.tar"
    small.write_bytes(make_tar(entry("f", data=b"s")))
    large.write_bytes(make_tar(entry("f", data=os.urandom(gnutar.MIN_BYTES))))
    for tarball in (small, large):
        (tmp_path / tarball.stem).mkdir()
        extract_layer(tarball, tmp_path / tarball.stem)
    assert spy.tars == 1
    non_empty = tmp_path / "non-empty"
    non_empty.mkdir()
    (non_empty / "already").write_text("here")
    extract_layer(large, non_empty)
    assert spy.tars == 1          # into a non-empty directory: Python only


# -- commit: the layer dir made while the blob is written (pyjail.images.unpacking) ------------

def make_upper(root: Path) -> Path:
    """An overlay upper dir with everything a container leaves: whiteouts, an opaque dir,
    xattrs, hard links, symlinks, set-id bits, other owners, and enough bytes to use tar."""
    upper = root / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "conf").write_text("c=1\n")
    os.setxattr(upper / "etc" / "conf", "user.tag", b"v")
    os.chown(upper / "etc" / "conf", 1000, 1001)
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "opaque" / "sub").mkdir(parents=True)
    (upper / "opaque" / "sub" / "only").write_text("only\n")
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "opaque", "trusted.overlay.origin", b"not for the layer")
    os.mknod(upper / "deleted", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "bin").mkdir()
    (upper / "bin" / "a").write_bytes(os.urandom(gnutar.MIN_BYTES + 12345))
    os.chmod(upper / "bin" / "a", 0o4755)
    os.link(upper / "bin" / "a", upper / "bin" / "b")
    os.symlink("a", upper / "bin" / "c")
    for i in range(300):
        (upper / "many" / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (upper / "many" / f"d{i % 7}" / f"f{i}").write_bytes(os.urandom(i * 13))
    for p in [*upper.rglob("*"), upper]:
        os.utime(p, (1_600_000_000, 1_600_000_000), follow_symlinks=False)
    return upper


@pytest.mark.parametrize("large", [True, False], ids=["large", "small"])
def test_commit_unpacks_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      large: bool) -> None:
    from pyjail.images.commit import layer_image
    from pyjail.images.store import ImageStore
    monkeypatch.delenv("PYJAIL_LAYER_EXTRACTOR", raising=False)
    upper = make_upper(tmp_path)
    if not large:
        (upper / "bin" / "a").write_bytes(b"small")
        os.utime(upper / "bin" / "a", (1_600_000_000, 1_600_000_000))
    spy = Spy(monkeypatch)
    store = ImageStore(tmp_path / "store")
    image = layer_image(store, upper, {"config": {}})
    assert spy.tars == (1 if large else 0)
    layer = store.layer_dirs(store.resolve(image.id))[0]
    # the reference: the committed blob unpacked again, by the Python extractor alone
    reference = tmp_path / "reference"
    reference.mkdir()
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", "python")
    blob = store.blobs.path(store._layer_meta(image.chain_ids[-1])["blob"]["digest"])
    content = extract_layer(blob, reference)
    assert snapshot(layer) == snapshot(reference)
    assert stat.S_ISCHR(os.lstat(layer / "etc" / "gone").st_mode)
    assert os.getxattr(layer / "opaque", "trusted.overlay.opaque") == b"y"
    assert "trusted.overlay.origin" not in os.listxattr(layer / "opaque")
    assert store._layer_meta(image.chain_ids[-1])["size"] == content
    assert not list((tmp_path / "store").rglob(".tmp-*"))   # no staging dir left behind


def test_commit_falls_back_when_tar_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """tar dying halfway is no error for a commit: the store unpacks from the blob."""
    from pyjail.images.commit import layer_image
    from pyjail.images.store import ImageStore
    monkeypatch.delenv("PYJAIL_LAYER_EXTRACTOR", raising=False)
    real_init = gnutar.TarProcess.__init__
    started: list[gnutar.TarProcess] = []

    def doomed(this: gnutar.TarProcess, dest: Path) -> None:
        real_init(this, dest)
        if not started:       # the one fed while writing; the store's own unpack may live
            this.proc.kill()
        started.append(this)

    monkeypatch.setattr(gnutar.TarProcess, "__init__", doomed)
    upper = make_upper(tmp_path)
    store = ImageStore(tmp_path / "store")
    image = layer_image(store, upper, {"config": {}})
    layer = store.layer_dirs(store.resolve(image.id))[0]
    assert len(started) == 2
    assert (layer / "bin" / "a").stat().st_size == gnutar.MIN_BYTES + 12345
    assert stat.S_ISCHR(os.lstat(layer / "deleted").st_mode)
    assert not list((tmp_path / "store").rglob(".tmp-*"))


# -- differential: random archives, both ways ----------------------------------------------

NAMES = ["a", "b", "a/b", "a/c", "a/b/c", "b/x", ".wh.a", "a/.wh.b", "a/.wh..wh..opq",
         "b/.wh..wh..opq", "./c", "a/../d", "/e"]


def random_archive(rng: random.Random) -> bytes:
    entries = []
    for i in range(rng.randint(1, 10)):
        name = rng.choice(NAMES)
        kind = rng.choice(["dir", "file", "file", "sym-in", "sym-out", "hard", "fifo"])
        mtime = 1_500_000_000 + rng.randint(0, 10**6)
        if name.rpartition("/")[2].startswith(".wh.") or kind == "file":
            entries.append(entry(name, data=bytes([65 + i]) * rng.randint(0, 3000),
                                 mode=rng.choice([0o644, 0o600, 0o4755]),
                                 uid=rng.choice([0, 1000]), mtime=mtime))
        elif kind == "dir":
            entries.append(entry(name, tarfile.DIRTYPE, mode=rng.choice([0o755, 0o700]),
                                 mtime=mtime))
        elif kind == "sym-in":
            entries.append(entry(name, tarfile.SYMTYPE, linkname=rng.choice(["b", "c", "."]),
                                 mtime=mtime))
        elif kind == "sym-out":
            entries.append(entry(name, tarfile.SYMTYPE,
                                 linkname=rng.choice(["/etc", "../..", "../x"]), mtime=mtime))
        elif kind == "hard":
            entries.append(entry(name, tarfile.LNKTYPE, linkname=rng.choice(NAMES)))
        else:
            entries.append(entry(name, tarfile.FIFOTYPE, mtime=mtime))
    return make_tar(*entries)


def outcome(data: bytes, dest: Path, way: str, monkeypatch: pytest.MonkeyPatch,
            for_overlay: bool) -> tuple:
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", way)
    dest.mkdir()
    try:
        size = extract_layer(io.BytesIO(data), dest, for_overlay=for_overlay)
    except PyjailError as e:
        return ("error", type(e).__name__)
    return ("ok", size, snapshot(dest))


@pytest.mark.parametrize("seed", range(0, 300, 60))
def test_random_archives_give_the_same_result_both_ways(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(60):
        data = random_archive(rng)
        for_overlay = rng.random() < 0.7
        python = outcome(data, tmp_path / f"{i}-py", "python", monkeypatch, for_overlay)
        viatar = outcome(data, tmp_path / f"{i}-tar", "tar", monkeypatch, for_overlay)
        assert viatar == python, (seed, i, for_overlay)
