"""Debian base images from debootstrap: mirror discovery (fast) and a real bootstrap (slow).

Mirror URIs in these tests are local ``file:`` paths: no mirror host is named anywhere.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from pyjail.images import ImageStore
from pyjail.images.debootstrap import AptSource, apt_sources, debian_image, find_mirror

MIRROR = "file:///srv/mirror/debian"
SECURITY = "file:///srv/mirror/debian-security"


def write_apt(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp


def test_one_line_and_deb822_sources(tmp_path: Path) -> None:
    apt = write_apt(tmp_path, {
        "sources.list": f"# comment\ndeb [arch=amd64 signed-by=/k.gpg] {MIRROR} bookworm main\n"
                        f"deb-src {MIRROR} bookworm main\n",
        "sources.list.d/debian.sources": (
            f"Types: deb\nURIs: {MIRROR}\nSuites: trixie trixie-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {SECURITY}\nSuites: trixie-security\nComponents: main\n\n"
            f"Types: deb\nEnabled: no\nURIs: file:///off\nSuites: sid\nComponents: main\n"),
        "sources.list.d/other.list.disabled": f"deb {MIRROR} sid main\n",
    })
    assert apt_sources(apt) == [
        AptSource(MIRROR, ("bookworm",), ("main",)),
        AptSource(MIRROR, ("trixie", "trixie-updates"), ("main",)),
        AptSource(SECURITY, ("trixie-security",), ("main",)),
    ]


def test_find_mirror_prefers_the_suite_and_skips_side_archives() -> None:
    sources = [AptSource(SECURITY, ("bookworm-security",), ("main",)),
               AptSource("file:///other", ("trixie",), ("contrib",)),
               AptSource(MIRROR, ("trixie", "trixie-updates"), ("main",))]
    assert find_mirror("trixie", sources) == MIRROR
    assert find_mirror("bookworm", sources) == MIRROR   # a mirror carries every suite
    assert find_mirror("bookworm", sources[:1]) is None
    assert find_mirror("bookworm", []) is None


def test_debian_image_without_a_mirror_says_so(tmp_path: Path, monkeypatch) -> None:
    import pyjail.images.debootstrap as mod
    monkeypatch.setattr(mod, "APT_DIR", tmp_path)
    monkeypatch.setattr(mod, "apt_sources", lambda apt_dir=tmp_path: [])
    with pytest.raises(Exception, match="no Debian mirror"):
        debian_image(ImageStore(tmp_path / "images"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap")
                    .exists(), reason="debootstrap is not installed")
def test_debootstrap_bookworm_minbase() -> None:
    if find_mirror("bookworm") is None:
        pytest.skip("no Debian mirror in the host's apt sources")
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-debootstrap-", dir="/var/tmp"))
    try:
        store = ImageStore(root / "images")
        image = debian_image(store, "bookworm")
        assert image.references == ["debian:bookworm"]
        assert image.config["config"]["Cmd"] == ["bash"]
        [layer] = store.layer_dirs(image)
        assert (layer / "etc" / "debian_version").read_text().startswith("12")
        assert (layer / "usr" / "bin" / "bash").is_file()
        assert not any((layer / "var" / "cache" / "apt" / "archives").glob("*.deb"))
        assert list((layer / "dev").iterdir()) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
