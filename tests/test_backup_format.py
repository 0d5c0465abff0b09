"""The backup archive format itself (pyjail.backup.writer / archive), without a daemon.

Every byte of a format-2 archive is accounted for: member bytes by the manifest's sha256,
tar headers by their checksums, padding and the end blocks by being zeros. Flipping any
single byte, or cutting the file anywhere, must make read_archive refuse it, in a verify
pass and in an unpacking pass alike. Format-1 archives (what earlier versions wrote) still
read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from pyjail.backup.archive import MANIFEST, MANIFEST_SUM, DamagedArchive, read_archive
from pyjail.backup.writer import ArchiveWriter
from pyjail.images.layers import create_layer

META = {"Kind": "volume", "Created": "2026-11-27T20:00:00.000000Z", "Mode": "live",
        "Container": "", "Image": "", "Volumes": ["v"]}


def tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "random").write_bytes(os.urandom(40_000))
    (root / "text").write_bytes(b"line of text\n" * 5000)
    return root


def unpack(name: str) -> bool | None:
    return False if name.startswith("volumes/") else None


def write(path: Path, src: Path) -> dict:
    with ArchiveWriter(path, lambda m: None) as w:
        w.add("volumes/v.tar", lambda out: create_layer(src, out))
        w.add_bytes("volume.json", b'{"Name": "v"}')
        return w.finish(META)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("format")
    path = base / "v.tar"
    result = write(path, tree(base / "src"))
    assert result["Sha256"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return path, base / "src"


def test_layout_is_a_plain_tar_with_zstd_members(archive: tuple[Path, Path]) -> None:
    path, _ = archive
    with tarfile.open(path) as t:
        names = t.getnames()
        manifest = json.loads(t.extractfile(MANIFEST).read())
        stored = t.extractfile("volumes/v.tar.p00000").read()
    assert names == ["volumes/v.tar.p00000", "volume.json.p00000", MANIFEST, MANIFEST_SUM]
    assert manifest["Version"] == 2
    entry = manifest["Members"]["volumes/v.tar"]
    assert entry["sha256"] == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert entry["size"] == len(stored) and entry["parts"] == 1
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
    assert entry["unpacked_size"] == len(plain) and len(stored) < len(plain)


def test_intact_archive_verifies_and_unpacks(archive: tuple[Path, Path], tmp_path: Path) -> None:
    path, src = archive
    assert read_archive(path, None)["Kind"] == "volume"
    read_archive(path, tmp_path, unpack=unpack)
    assert (tmp_path / "volumes/v.tar/sub/random").read_bytes() == \
        (src / "sub" / "random").read_bytes()
    assert (tmp_path / "volume.json").read_bytes() == b'{"Name": "v"}'


def _places(data: bytes) -> dict[str, int]:
    """Offsets of one byte in each kind of region of the archive."""
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        first, second, manifest, checksum = t.getmembers()
    end_of_data = first.offset_data + first.size
    return {
        "header name": first.offset + 3,
        "header mtime": first.offset + 140,
        "member data": first.offset_data + first.size // 2,
        "member's last byte": end_of_data - 1,
        "padding": end_of_data + 1 if first.size % 512 else second.offset + 100,
        "second member": second.offset_data + 2,
        "manifest": manifest.offset_data + 10,
        "manifest checksum": checksum.offset_data + 5,
        "first end block": checksum.offset_data + checksum.size + (-checksum.size % 512) + 7,
        "last byte": len(data) - 1,
    }


@pytest.mark.parametrize("where", ["header name", "header mtime", "member data",
                                   "member's last byte", "padding", "second member",
                                   "manifest", "manifest checksum", "first end block",
                                   "last byte"])
@pytest.mark.parametrize("mode", ["verify", "unpack"])
def test_any_flipped_byte_is_refused(archive: tuple[Path, Path], tmp_path: Path, where: str,
                                     mode: str) -> None:
    path, _ = archive
    data = bytearray(path.read_bytes())
    data[_places(bytes(data))[where]] ^= 0x20
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    with pytest.raises(DamagedArchive):
        read_archive(bad, None if mode == "verify" else tmp_path / "out",
                     unpack=None if mode == "verify" else unpack)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1024, -600, -512, -1])
def test_any_truncation_is_refused(archive: tuple[Path, Path], tmp_path: Path,
                                   keep: float) -> None:
    path, _ = archive
    data = path.read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    bad = tmp_path / "cut.tar"
    bad.write_bytes(data[:cut])
    for dest in (None, tmp_path / "out"):
        with pytest.raises(DamagedArchive):
            read_archive(bad, dest, unpack=unpack if dest else None)


def test_large_member_spans_parts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    blob = os.urandom(20 << 20)   # incompressible: two 16 MiB parts
    (src / "blob").write_bytes(blob)
    path = tmp_path / "big.tar"
    entry = write(path, src)["Manifest"]["Members"]["volumes/v.tar"]
    assert entry["parts"] == 2
    read_archive(path, tmp_path / "out", unpack=unpack)
    assert (tmp_path / "out/volumes/v.tar/blob").read_bytes() == blob


def test_format_1_archives_still_read(archive: tuple[Path, Path], tmp_path: Path) -> None:
    """What earlier versions wrote: one zstd stream of a tar of plain members, the manifest's
    sha256 over the plain bytes."""
    _, src = archive
    layer = io.BytesIO()
    create_layer(src, layer)
    members = {"volumes/v.tar": layer.getvalue(), "volume.json": b'{"Name": "v"}'}
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w", format=tarfile.GNU_FORMAT) as t:
        entries = {}
        for name, body in members.items():
            info = tarfile.TarInfo(f"{name}.p00000")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
            entries[name] = {"sha256": "sha256:" + hashlib.sha256(body).hexdigest(),
                             "size": len(body), "parts": 1}
        manifest = json.dumps({"Version": 1, **META, "Members": entries}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        t.addfile(info, io.BytesIO(manifest))
    old = tmp_path / "old.tar.zst"
    old.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(outer.getvalue()))
    assert read_archive(old, None)["Version"] == 1
    read_archive(old, tmp_path / "out", unpack=unpack)
    assert (tmp_path / "out/volumes/v.tar/text").read_bytes() == (src / "text").read_bytes()
    flipped = bytearray(old.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    old.write_bytes(bytes(flipped))
    with pytest.raises(DamagedArchive):
        read_archive(old, None)
