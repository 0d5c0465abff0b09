"""Layer tars: safe extraction, metadata, whiteouts, compression, and create_layer."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyjail.errors import InvalidArgument, UnsafePath
from pyjail.images import create_layer, extract_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, xattrs)")

MTIME = 1_600_000_000


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *, mode: int = 0o644,
          linkname: str = "", uid: int = 0, gid: int = 0, mtime: int = MTIME,
          pax: dict[str, str] | None = None,
          dev: tuple[int, int] = (0, 0)) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    info.linkname = linkname
    info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = pax
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


@pytest.fixture(autouse=True, params=["python", "tar"])
def extractor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the Python extractor and with GNU tar doing the writing (which
    hands over to Python wherever the two would differ)."""
    monkeypatch.setenv("PYJAIL_LAYER_EXTRACTOR", request.param)
    return str(request.param)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """tmp/dest is extracted into; tmp/outside must never change."""
    (tmp_path / "dest").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("keep")
    return tmp_path


def outside_state(box: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(box.rglob("*")):
        if box / "dest" in p.parents or p == box / "dest":
            continue
        st = os.lstat(p)
        out.append((str(p), st.st_nlink, st.st_size))
    return out


def extract_bytes(data: bytes, dest: Path, **kw: bool) -> int:
    return extract_layer(io.BytesIO(data), dest, **kw)


# -- escapes --------------------------------------------------------------------------------

ESCAPES = {
    "dotdot": [entry("../x", data=b"pwned")],
    "abs-dotdot": [entry("/abs/../../x", data=b"pwned")],
    "deep-dotdot": [entry("a/b/../../../outside/x", data=b"pwned")],
    "symlink-dir-abs": [entry("link", tarfile.SYMTYPE, linkname="/etc"),
                        entry("link/passwd", data=b"pwned")],
    "symlink-dir-rel": [entry("link", tarfile.SYMTYPE, linkname="../outside"),
                        entry("link/secret", data=b"pwned")],
    "symlink-chain": [entry("a", tarfile.SYMTYPE, linkname="b"),
                      entry("b", tarfile.SYMTYPE, linkname="../outside"),
                      entry("a/new", data=b"pwned")],
    "hardlink-dotdot": [entry("h", tarfile.LNKTYPE, linkname="../outside/secret")],
    "hardlink-through-symlink": [entry("link", tarfile.SYMTYPE, linkname="../outside"),
                                 entry("h", tarfile.LNKTYPE, linkname="link/secret")],
    "symlink-dir-mkdir": [entry("link", tarfile.SYMTYPE, linkname="/tmp"),
                          entry("link/pyjail-escape-sub", tarfile.DIRTYPE, mode=0o755)],
    "symlink-loop": [entry("a", tarfile.SYMTYPE, linkname="b"),
                     entry("b", tarfile.SYMTYPE, linkname="a"),
                     entry("a/x", data=b"loop")],
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escape_is_refused_and_writes_nothing_outside(box: Path, case: str) -> None:
    before = outside_state(box)
    etc_before = sorted(os.listdir("/etc"))
    with pytest.raises(UnsafePath):
        extract_bytes(make_tar(*ESCAPES[case]), box / "dest")
    assert outside_state(box) == before
    assert (box / "outside" / "secret").read_text() == "keep"
    assert os.stat(box / "outside" / "secret").st_nlink == 1
    assert sorted(os.listdir("/etc")) == etc_before
    assert not os.path.lexists("/tmp/pyjail-escape-sub")
    assert not (box / "x").exists()


def test_absolute_names_are_made_relative(box: Path) -> None:
    extract_bytes(make_tar(entry("/etc/hostname", data=b"inside\n")), box / "dest")
    assert (box / "dest" / "etc" / "hostname").read_bytes() == b"inside\n"


def test_symlinks_are_data_and_inner_ones_are_followed(box: Path) -> None:
    data = make_tar(
        entry("abs", tarfile.SYMTYPE, linkname="/etc/passwd"),
        entry("up", tarfile.SYMTYPE, linkname="../../outside/secret"),
        entry("usr/lib", tarfile.DIRTYPE, mode=0o755),
        entry("lib", tarfile.SYMTYPE, linkname="usr/lib"),
        entry("lib/libc.so", data=b"elf"),
    )
    extract_bytes(data, box / "dest")
    dest = box / "dest"
    assert os.readlink(dest / "abs") == "/etc/passwd"
    assert os.readlink(dest / "up") == "../../outside/secret"
    assert (dest / "usr" / "lib" / "libc.so").read_bytes() == b"elf"
    assert (dest / "lib").is_symlink()


def test_existing_symlink_is_replaced_not_written_through(box: Path) -> None:
    data = make_tar(
        entry("f", tarfile.SYMTYPE, linkname=str(box / "outside" / "secret")),
        entry("f", data=b"replaced"),
    )
    extract_bytes(data, box / "dest")
    assert not (box / "dest" / "f").is_symlink()
    assert (box / "dest" / "f").read_bytes() == b"replaced"
    assert (box / "outside" / "secret").read_text() == "keep"


def test_symlink_mode_and_owner_never_touch_the_target(box: Path) -> None:
    target = box / "outside" / "secret"
    os.chmod(target, 0o600)
    data = make_tar(entry("s", tarfile.SYMTYPE, linkname=str(target), mode=0o6777, uid=7))
    extract_bytes(data, box / "dest")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.stat(target).st_uid == 0
    assert os.lstat(box / "dest" / "s").st_uid == 7


# -- metadata -------------------------------------------------------------------------------

def test_metadata_is_preserved(box: Path) -> None:
    data = make_tar(
        entry("bin", tarfile.DIRTYPE, mode=0o750, uid=3, gid=4, mtime=MTIME + 5),
        entry("bin/su", data=b"#!", mode=0o4755, uid=0, gid=0),
        entry("bin/tool", data=b"x" * 5000, mode=0o2751, uid=1234, gid=5678),
        entry("bin/hl", tarfile.LNKTYPE, linkname="bin/tool"),
        entry("cap", data=b"c", pax={"SCHILY.xattr.user.note": "hello",
                                     "SCHILY.xattr.trusted.overlay.opaque": "y"}),
        entry("fifo", tarfile.FIFOTYPE, mode=0o640),
        entry("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        entry("sub/implicit/file", data=b"deep"),
        entry("big", data=bytes(range(256)) * 9000),    # spans several read chunks
    )
    size = extract_bytes(data, box / "dest")
    d = box / "dest"
    assert size == 2 + 5000 + 1 + 4 + 256 * 9000
    st = os.stat(d / "bin")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 3, 4)
    assert st.st_mtime == MTIME + 5   # dir times are set last
    assert stat.S_IMODE(os.stat(d / "bin/su").st_mode) == 0o4755
    st = os.stat(d / "bin/tool")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2751, 1234, 5678)
    assert st.st_mtime == MTIME and st.st_nlink == 2
    assert os.stat(d / "bin/hl").st_ino == st.st_ino
    assert os.getxattr(d / "cap", "user.note") == b"hello"
    with pytest.raises(OSError):   # overlay xattrs are never taken from a tar
        os.getxattr(d / "cap", "trusted.overlay.opaque")
    assert stat.S_ISFIFO(os.stat(d / "fifo").st_mode)
    st = os.stat(d / "null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert (d / "sub/implicit/file").read_bytes() == b"deep"
    assert (d / "big").read_bytes() == bytes(range(256)) * 9000


def test_devices_refused_unless_allowed(box: Path) -> None:
    data = make_tar(entry("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)))
    with pytest.raises(UnsafePath):
        extract_bytes(data, box / "dest", allow_devices=False)
    # a 0/0 character device is an overlay whiteout, not a device: always fine
    extract_bytes(make_tar(entry("wh", tarfile.CHRTYPE, dev=(0, 0))), box / "dest",
                  allow_devices=False)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names(box: Path, fmt: int) -> None:
    name = "/".join(["d" * 40] * 3) + "/" + "f" * 60
    link = "../" + "l" * 120
    data = make_tar(entry(name, data=b"long"), entry("sym", tarfile.SYMTYPE, linkname=link),
                    fmt=fmt)
    extract_bytes(data, box / "dest")
    assert (box / "dest" / name).read_bytes() == b"long"
    assert os.readlink(box / "dest" / "sym") == link


def test_ustar_prefix_field(box: Path) -> None:
    name = "p" * 90 + "/" + "q" * 90
    extract_bytes(make_tar(entry(name, data=b"u"), fmt=tarfile.USTAR_FORMAT), box / "dest")
    assert (box / "dest" / name).read_bytes() == b"u"


def test_gnu_tar_archive(box: Path) -> None:
    src = box / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f").write_bytes(b"x" * 70000)
    os.symlink("b/f", src / "a" / "s")
    os.link(src / "a" / "b" / "f", src / "a" / "h")
    tarball = box / "t.tar"
    subprocess.run(["tar", "-C", str(src), "-cf", str(tarball), "."], check=True)
    extract_layer(tarball, box / "dest")
    assert (box / "dest" / "a" / "b" / "f").read_bytes() == b"x" * 70000
    assert os.readlink(box / "dest" / "a" / "s") == "b/f"
    assert os.stat(box / "dest" / "a" / "h").st_nlink == 2


@pytest.mark.parametrize("codec", ["gzip", "xz", "bzip2", "zstd"])
def test_compressed_layers(box: Path, codec: str) -> None:
    raw = make_tar(entry("hello", data=b"world" * 1000))
    if codec == "zstd":
        if not shutil.which("zstd"):
            pytest.skip("no zstd program")
        packed = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True,
                                check=True).stdout
    else:
        packed = {"gzip": gzip.compress, "xz": lzma.compress, "bzip2": bz2.compress}[codec](raw)
    extract_bytes(packed, box / "dest")
    assert (box / "dest" / "hello").read_bytes() == b"world" * 1000


def test_concatenated_gzip_members(box: Path) -> None:
    payload = os.urandom(300_000)
    raw = make_tar(entry("big", data=payload))
    packed = gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:])
    extract_bytes(packed, box / "dest")
    assert (box / "dest" / "big").read_bytes() == payload


def test_concatenated_zstd_frames(box: Path) -> None:
    """Several zstd frames in one layer (zstd's -T output, pigz-like writers): all of them count,
    with the zstandard module and with the zstd program."""
    if not shutil.which("zstd"):
        pytest.skip("no zstd program")
    payload = os.urandom(300_000)
    raw = make_tar(entry("big", data=payload))
    packed = b"".join(subprocess.run(["zstd", "-q", "-c"], input=part, capture_output=True,
                                     check=True).stdout
                      for part in (raw[:100_000], raw[100_000:]))
    extract_bytes(packed, box / "dest")
    assert (box / "dest" / "big").read_bytes() == payload


def test_compressed_output_is_bounded_per_chunk() -> None:
    """A small compressed input that expands a great deal comes out in bounded pieces,
    never all at once (memory), for zstd as for gzip."""
    import gzip

    import zstandard

    from pyjail.images import tarstream
    zeros = bytes(100 << 20)
    for packed in (zstandard.ZstdCompressor(level=19).compress(zeros),
                   gzip.compress(zeros, compresslevel=9)):
        assert len(packed) < 1 << 20
        total = biggest = 0
        for chunk in tarstream.decompressed_chunks(io.BytesIO(packed))[1]:
            total += len(chunk)
            biggest = max(biggest, len(chunk))
        assert total == len(zeros) and biggest <= tarstream.OUT_LIMIT


def test_truncated_archive(box: Path) -> None:
    raw = make_tar(entry("f", data=b"y" * 4096))
    with pytest.raises(InvalidArgument):
        extract_bytes(raw[:1500], box / "dest")


def test_corrupt_compressed_data(box: Path) -> None:
    packed = bytearray(gzip.compress(make_tar(entry("f", data=os.urandom(5000)))))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(InvalidArgument):
        extract_bytes(bytes(packed), box / "dest")


def test_corrupt_header(box: Path) -> None:
    bad = bytearray(make_tar(entry("f", data=b"y")))
    bad[0] ^= 0x01   # breaks the header checksum
    with pytest.raises(InvalidArgument):
        extract_bytes(bytes(bad), box / "dest")


def test_replacements(box: Path) -> None:
    d = box / "dest"
    (d / "was_dir" / "inner").mkdir(parents=True)
    (d / "was_file").write_text("f")
    data = make_tar(entry("was_dir", data=b"now a file"),
                    entry("was_file", tarfile.DIRTYPE, mode=0o755),
                    entry("was_file/x", data=b"x"))
    extract_bytes(data, d)
    assert (d / "was_dir").read_bytes() == b"now a file"
    assert (d / "was_file" / "x").read_bytes() == b"x"


# -- whiteouts ------------------------------------------------------------------------------

GONE, DIR, OPQ, NEW, OLD = (
    entry(".wh.gone", mode=0o600),
    entry("dir", tarfile.DIRTYPE, mode=0o755),
    entry("dir/.wh..wh..opq"),
    entry("dir/new", data=b"new"),
    entry("keep/.wh.old"),
)


def test_whiteouts_converted_for_overlay(box: Path) -> None:
    d = box / "dest"
    extract_bytes(make_tar(GONE, DIR, OPQ, NEW, OLD), d, for_overlay=True)
    for path in (d / "gone", d / "keep" / "old"):
        st = os.lstat(path)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(d / "dir", "trusted.overlay.opaque") == b"y"
    assert (d / "dir" / "new").read_bytes() == b"new"
    assert not any(p.name.startswith(".wh.") for p in d.rglob("*"))


def test_whiteouts_applied_when_flattening(box: Path) -> None:
    d = box / "dest"
    (d / "gone").mkdir()
    (d / "gone" / "child").write_text("c")
    (d / "dir" / "sub").mkdir(parents=True)
    (d / "dir" / "old").write_text("o")
    (d / "keep").mkdir()
    (d / "keep" / "old").write_text("o")
    (d / "keep" / "stay").write_text("s")
    # this layer's "dir/new" comes *before* the opaque marker: it must survive it
    extract_bytes(make_tar(GONE, DIR, NEW, OPQ, OLD), d, for_overlay=False)
    assert not (d / "gone").exists()
    assert sorted(os.listdir(d / "dir")) == ["new"]
    assert sorted(os.listdir(d / "keep")) == ["stay"]
    with pytest.raises(OSError):
        os.getxattr(d / "dir", "trusted.overlay.opaque")
    assert not any(p.name.startswith(".wh.") for p in d.rglob("*"))


def test_whiteout_cannot_escape(box: Path) -> None:
    with pytest.raises(UnsafePath):
        extract_bytes(make_tar(entry("../.wh.outside")), box / "dest", for_overlay=False)
    with pytest.raises(UnsafePath):
        extract_bytes(make_tar(entry("link", tarfile.SYMTYPE, linkname="../outside"),
                               entry("link/.wh.secret")), box / "dest", for_overlay=False)
    assert (box / "outside" / "secret").read_text() == "keep"


# -- create_layer ---------------------------------------------------------------------------

def make_upper(root: Path) -> Path:
    upper = root / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "conf").write_text("c=1\n")
    os.setxattr(upper / "etc" / "conf", "user.tag", b"v")
    (upper / "opaque").mkdir()
    (upper / "opaque" / "only").write_text("only\n")
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.mknod(upper / "deleted", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "bin").mkdir()
    (upper / "bin" / "a").write_bytes(b"\x7fELF" + bytes(2000))
    os.link(upper / "bin" / "a", upper / "bin" / "b")
    os.symlink("a", upper / "bin" / "c")
    os.chown(upper / "etc" / "conf", 1000, 1001)
    for p in [*upper.rglob("*"), upper]:
        os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    return upper


def test_create_layer_round_trip(tmp_path: Path) -> None:
    upper = make_upper(tmp_path)
    buf = io.BytesIO()
    diff_id = create_layer(upper, buf)
    data = buf.getvalue()
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names == ["bin", "bin/a", "bin/b", "bin/c", ".wh.deleted", "etc", "etc/conf",
                     "opaque", "opaque/.wh..wh..opq", "opaque/only"]
    by_name = {m.name: m for m in members}
    assert by_name["bin/b"].islnk() and by_name["bin/b"].linkname == "bin/a"
    assert (by_name["etc/conf"].uid, by_name["etc/conf"].gid) == (1000, 1001)
    assert by_name["etc/conf"].pax_headers.get("SCHILY.xattr.user.tag") == "v"
    assert not any("overlay" in k for m in members for k in m.pax_headers)
    again = io.BytesIO()   # same tree, same bytes
    assert create_layer(upper, again) == diff_id and again.getvalue() == data

    lower = tmp_path / "lower"
    lower.mkdir()
    extract_layer(io.BytesIO(data), lower, for_overlay=True)
    st = os.lstat(lower / "deleted")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(lower / "opaque", "trusted.overlay.opaque") == b"y"
    assert (lower / "opaque" / "only").read_text() == "only\n"
    assert os.stat(lower / "bin" / "a").st_ino == os.stat(lower / "bin" / "b").st_ino
    assert os.getxattr(lower / "etc" / "conf", "user.tag") == b"v"
    assert create_layer(lower, io.BytesIO()) == diff_id   # its diff is the same layer again

    flat = tmp_path / "flat"
    (flat / "deleted").mkdir(parents=True)
    (flat / "opaque").mkdir()
    (flat / "opaque" / "lower-only").write_text("x")
    extract_layer(io.BytesIO(data), flat, for_overlay=False)
    assert not (flat / "deleted").exists()
    assert sorted(os.listdir(flat / "opaque")) == ["only"]


# -- differential: same result as GNU tar ---------------------------------------------------

def random_tree(root: Path, seed: int) -> None:
    import random
    rng = random.Random(seed)
    dirs = [root]
    for i in range(60):
        parent = rng.choice(dirs)
        if rng.random() < 0.25:
            d = parent / (f"dir{i}" if rng.random() < 0.8 else "x" * rng.randint(90, 160))
            d.mkdir()
            dirs.append(d)
            continue
        f = parent / (f"file{i}" if rng.random() < 0.9 else "n" * rng.randint(100, 200))
        size = rng.choice([0, 1, 511, 512, 513, rng.randint(0, 9000), (1 << 20) + 7])
        f.write_bytes(rng.randbytes(size))
        os.chmod(f, rng.choice([0o644, 0o600, 0o755, 0o4755, 0o2711, 0o1777]))
        os.chown(f, rng.choice([0, 1, 1000, 65534]), rng.choice([0, 5, 1000]))
        if rng.random() < 0.15:
            os.link(f, parent / f"hard{i}")
        if rng.random() < 0.15:
            os.symlink(os.path.relpath(f, parent), parent / f"sym{i}")
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (1_500_000_000 + rng.randint(0, 10**8),) * 2, follow_symlinks=False)


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = os.lstat(p)
        content = ""
        if stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(p.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(p)
        out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                         int(st.st_mtime), st.st_nlink, content)
    return out


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_same_tree_as_gnu_tar(tmp_path: Path, fmt: str) -> None:
    src, theirs, ours = tmp_path / "src", tmp_path / "theirs", tmp_path / "ours"
    for d in (src, theirs, ours):
        d.mkdir()
    random_tree(src, seed=7 if fmt == "gnu" else 8)
    tarball = tmp_path / "t.tar"
    subprocess.run(["tar", f"--format={fmt}", "-C", str(src), "-cf", str(tarball), "."],
                   check=True)
    subprocess.run(["tar", "--numeric-owner", "-C", str(theirs), "-xf", str(tarball)],
                   check=True)
    extract_layer(tarball, ours)
    assert snapshot(ours) == snapshot(theirs)
    assert snapshot(ours) == snapshot(src)


def test_fast_ustar_headers_match_tarfile_byte_for_byte() -> None:
    """create_layer's own header writer must give tarfile's bytes (diff_ids stay stable)."""
    import random

    from pyjail.images.layers import file_header, ustar_header
    rng = random.Random(7)
    fast = files = 0
    for _ in range(3000):
        typ = rng.choice([b"0", b"1", b"2", b"3", b"4", b"5", b"6"])
        name = "".join(rng.choice("ab/._-") for _ in range(rng.randint(1, 110)))
        info = tarfile.TarInfo(name + ("é" if rng.random() < 0.1 else ""))
        info.type, info.mode = typ, rng.randint(0, 0o7777)
        info.uid, info.gid = rng.randint(0, 1 << 22), rng.randint(0, 70000)
        info.size = rng.randint(0, 1 << 34) if typ == b"0" else 0
        info.mtime = rng.randint(0, 1 << 34)
        info.linkname = "".join(rng.choice("ab/") for _ in range(rng.randint(0, 105))) \
            if typ in (b"1", b"2") else ""
        info.devmajor, info.devminor = rng.randint(0, 300), rng.randint(0, 300)
        info.uname = info.gname = ""
        name = info.name + "/" if typ == b"5" and not info.name.endswith("/") else info.name
        got = ustar_header(name, info.mode, info.uid, info.gid, info.size, info.mtime, typ,
                           info.linkname, info.devmajor, info.devminor)
        if got is not None:
            fast += 1
            assert got == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if typ == b"0":   # the regular-file variant gives the same bytes, or declines alike
            files += 1
            assert file_header(name, info.mode, info.uid, info.gid, info.size,
                               info.mtime) == got
    assert 500 < fast < 3000 and files > 300   # every path was taken
