"""The image store: import, names, ids, shared layers, removal, crash safety, bootstrap."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyjail.errors import Conflict, ImageNotFound, InvalidArgument, PyjailError
from pyjail.images import ImageStore, busybox_image, chain_ids, parse
from pyjail.images import store as store_mod

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod)")


def rootfs_tar(files: dict[str, bytes] | None = None, mtime: int = 1_600_000_000) -> bytes:
    files = files if files is not None else {"etc/hello": b"hello\n", "bin/tool": b"#!/bin/sh\n"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = sorted({"/".join(n.split("/")[:i]) for n in files
                       for i in range(1, n.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tf.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, mtime
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def layer_names(store: ImageStore) -> list[str]:
    return sorted(n for n in os.listdir(store.root / "layers") if not n.startswith("."))


def blob_names(store: ImageStore) -> list[str]:
    return sorted(n for n in os.listdir(store.root / "blobs" / "sha256")
                  if not n.startswith("."))


# -- references -----------------------------------------------------------------------------

def test_reference_normalisation() -> None:
    assert str(parse("busybox")) == "docker.io/library/busybox:latest"
    assert str(parse("docker.io/busybox")) == "docker.io/library/busybox:latest"
    assert str(parse("index.docker.io/library/busybox:1")) == "docker.io/library/busybox:1"
    assert str(parse("me/app:2")) == "docker.io/me/app:2"
    assert str(parse("localhost:5000/app")) == "localhost:5000/app:latest"
    assert parse("quay.io/org/app:3").familiar() == "quay.io/org/app:3"
    assert parse("docker.io/library/busybox").familiar() == "busybox:latest"
    digest = "sha256:" + "a" * 64
    assert parse(f"busybox:1@{digest}").familiar() == f"busybox@{digest}"
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse("BusyBox")
    with pytest.raises(InvalidArgument, match="64-byte hexadecimal"):
        parse("a" * 64)
    with pytest.raises(InvalidArgument):
        parse("bad name")


# -- import and resolve ---------------------------------------------------------------------

def test_import_and_resolve(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "myimg:1")
    assert image.references == ["myimg:1"]
    for ref in ("myimg:1", "docker.io/library/myimg:1", "index.docker.io/myimg:1", image.id,
                image.id[7:], image.id[7:11], image.id[:14], image.short_id):
        assert store.resolve(ref).id == image.id, ref
    assert [i.id for i in store.list()] == [image.id]
    lower = store.layer_dirs(image)
    assert len(lower) == 1 and (lower[0] / "etc" / "hello").read_bytes() == b"hello\n"
    assert lower[0] == store.root / "layers" / image.chain_ids[0][7:] / "diff"
    meta = json.loads((lower[0].parent / "meta.json").read_text())
    assert meta["diff_id"] == image.diff_ids[0] and meta["parent"] is None
    assert meta["size"] == image.size == len(b"hello\n") + len(b"#!/bin/sh\n")


def test_image_id_is_sha256_of_config_bytes(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "myimg")
    config_bytes = (store.root / "blobs" / "sha256" / image.id[7:]).read_bytes()
    assert image.id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert json.loads(config_bytes) == image.config
    manifest = json.loads((store.root / "blobs" / "sha256" /
                           image.manifest_digest[7:]).read_bytes())
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["digest"] == image.id
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert layer["digest"] == image.diff_ids[0]   # stored uncompressed: digest == diff_id
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": image.diff_ids}
    assert image.diff_ids[0] == "sha256:" + hashlib.sha256(rootfs_tar()).hexdigest()


def test_default_tag_and_not_found_wording(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "myimg")
    assert store.resolve("myimg:latest").id == image.id
    with pytest.raises(ImageNotFound) as e:
        store.resolve("busybox")
    assert str(e.value) == "No such image: busybox:latest"
    assert e.value.status == 404
    with pytest.raises(ImageNotFound, match=r"^No such image: myimg:2$"):
        store.resolve("myimg:2")
    with pytest.raises(ImageNotFound, match=r"^No such image: quay.io/a/b:latest$"):
        store.resolve("quay.io/a/b")
    missing = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFound, match=f"^No such image: {missing}$"):
        store.resolve(missing)
    with pytest.raises(InvalidArgument):
        store.resolve("UPPER")


def test_short_id_must_be_unique(store: ImageStore) -> None:
    images = [store.import_rootfs(io.BytesIO(rootfs_tar()), config={"Env": [f"N={i}"]})
              for i in range(20)]
    ids = [i.id[7:] for i in images]
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(ImageNotFound):
        store.resolve(shared)
    for i in ids:
        assert store.resolve(i[:12]).id[7:] == i


def test_digest_reference(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "myimg:1")
    assert store.resolve(f"myimg@{image.manifest_digest}").id == image.id
    with pytest.raises(ImageNotFound):
        store.resolve(f"other@{image.manifest_digest}")


def test_compressed_import_keeps_gzip_blob_and_shares_layer(store: ImageStore,
                                                            tmp_path: Path) -> None:
    raw = rootfs_tar()
    plain = store.import_rootfs(io.BytesIO(raw), "plain")
    path = tmp_path / "rootfs.tar.gz"
    path.write_bytes(gzip.compress(raw))
    gz = store.import_rootfs(path, "gz", changes=["CMD [\"/bin/tool\"]"])
    xz = store.import_rootfs(io.BytesIO(lzma.compress(raw)), "xz", comment="from xz")
    assert plain.diff_ids == gz.diff_ids == xz.diff_ids
    assert len({plain.id, gz.id, xz.id}) == 3
    assert layer_names(store) == [plain.chain_ids[0][7:]]
    manifest = json.loads(store.blobs.get(gz.manifest_digest))
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    assert manifest["layers"][0]["digest"] == "sha256:" + hashlib.sha256(
        path.read_bytes()).hexdigest()
    assert json.loads(store.blobs.get(xz.manifest_digest))["layers"][0]["digest"] == \
        xz.diff_ids[0]   # xz has no OCI media type: kept decompressed
    assert xz.config["comment"] == "from xz"


# -- config and changes ---------------------------------------------------------------------

def test_import_changes_and_config(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "app:1", config={"User": "1000"},
                                changes=[
                                    "ENV A=1 B=\"two words\"",
                                    "ENV C ${A}-x",
                                    'CMD ["/bin/tool", "--flag"]',
                                    "ENTRYPOINT /bin/sh -c",
                                    "EXPOSE 80 53/udp 8000-8001",
                                    "LABEL org.test=yes other=\"a b\"",
                                    "WORKDIR /srv",
                                    "WORKDIR app",
                                    "VOLUME [\"/data\", \"/logs\"]",
                                    "STOPSIGNAL SIGINT",
                                    "HEALTHCHECK --interval=5s --retries=2 CMD true",
                                ])
    c = image.config["config"]
    assert c["Env"] == ["A=1", "B=two words", "C=1-x"]
    assert c["Cmd"] == ["/bin/tool", "--flag"]   # CMD set by these changes: kept
    assert c["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh -c"]
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert c["Labels"] == {"org.test": "yes", "other": "a b"}
    assert c["WorkingDir"] == "/srv/app"
    assert c["Volumes"] == {"/data": {}, "/logs": {}}
    assert c["User"] == "1000" and c["StopSignal"] == "SIGINT"
    assert c["Healthcheck"] == {"Interval": 5_000_000_000, "Retries": 2,
                                "Test": ["CMD-SHELL", "true"]}
    assert image.config["history"][0]["comment"] == "Imported from -"
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        store.import_rootfs(io.BytesIO(rootfs_tar()), changes=["RUN rm -rf /"])
    with pytest.raises(InvalidArgument):
        store.import_rootfs(io.BytesIO(rootfs_tar()), config={"Bogus": 1})


def test_inspect_and_history(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "app:1", changes=["CMD sh"])
    info = store.inspect(image)
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os",
                "Size", "VirtualSize", "GraphDriver", "RootFS", "Metadata"):
        assert key in info, key
    assert info["Id"] == image.id and info["RepoTags"] == ["app:1"]
    assert info["Config"]["Cmd"] == ["/bin/sh", "-c", "sh"]
    assert info["Config"]["Entrypoint"] is None and info["Config"]["Hostname"] == ""
    assert info["GraphDriver"] == {"Name": "overlay2", "Data": {
        "UpperDir": str(store.layer_dirs(image)[0])}}
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    assert info["Os"] == "linux" and info["Size"] == image.size
    assert info["Metadata"]["LastTagTime"].endswith("Z")
    history = store.history(image)
    assert len(history) == 1 and history[0]["Id"] == image.id
    assert history[0]["Tags"] == ["app:1"] and history[0]["Size"] == image.size
    assert history[0]["Comment"] == "Imported from -" and history[0]["Created"] > 0


def test_create_image_stacks_layers(store: ImageStore, tmp_path: Path) -> None:
    base = store.import_rootfs(io.BytesIO(rootfs_tar()), "base")
    top_tar = tmp_path / "top.tar"
    top_tar.write_bytes(rootfs_tar({"etc/hello": b"changed\n", "srv/new": b"n"}))
    config = json.loads(json.dumps(base.config))
    config["history"].append({"created": config["created"], "created_by": "COPY . /"})
    child = store.create_image([top_tar], config, "child:1")
    assert child.diff_ids[0] == base.diff_ids[0] and len(child.diff_ids) == 2
    assert child.chain_ids == chain_ids(child.diff_ids)
    assert child.chain_ids[0] == base.chain_ids[0]
    dirs = store.layer_dirs(child)
    assert dirs[1] == store.layer_dirs(base)[0]   # topmost first; the base is shared
    assert (dirs[0] / "etc" / "hello").read_bytes() == b"changed\n"
    meta = json.loads((dirs[0].parent / "meta.json").read_text())
    assert meta["parent"] == base.chain_ids[0]
    assert [h["Size"] for h in store.history(child)] == [1 + len(b"changed\n"), base.size]
    assert store.inspect(child)["GraphDriver"]["Data"]["LowerDir"] == str(dirs[1])
    bad = dict(config, rootfs={"type": "layers", "diff_ids": ["sha256:" + "1" * 64]})
    with pytest.raises(InvalidArgument, match="not in the image store"):
        store.create_image([top_tar], bad)


def test_layers_mount_as_overlay_lowerdirs(store: ImageStore, tmp_path: Path) -> None:
    base = store.import_rootfs(io.BytesIO(rootfs_tar({
        "etc/hello": b"hello\n", "etc/gone": b"x", "opt/a": b"a", "opt/b": b"b"})), "base")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind in (("etc", tarfile.DIRTYPE), ("etc/.wh.gone", tarfile.REGTYPE),
                           ("opt", tarfile.DIRTYPE), ("opt/.wh..wh..opq", tarfile.REGTYPE),
                           ("opt/c", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
            tf.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    top = tmp_path / "top.tar"
    top.write_bytes(buf.getvalue())
    child = store.create_image([top], base.config, "child")
    merged = tmp_path / "merged"
    merged.mkdir()
    lower = ":".join(str(p) for p in store.layer_dirs(child))
    try:
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}",
                        str(merged)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot mount overlayfs here: {e}")
    try:
        assert sorted(os.listdir(merged / "etc")) == ["hello"]
        assert sorted(os.listdir(merged / "opt")) == ["c"]
        assert (merged / "etc" / "hello").read_bytes() == b"hello\n"
    finally:
        subprocess.run(["umount", str(merged)], check=True)


# -- sharing and removal --------------------------------------------------------------------

def test_layer_unpacked_once_and_shared(store: ImageStore, monkeypatch) -> None:
    calls = []
    real = store_mod.extract_stream
    monkeypatch.setattr(store_mod, "extract_stream",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    a = store.import_rootfs(io.BytesIO(rootfs_tar()), "a", changes=["ENV X=a"])
    b = store.import_rootfs(io.BytesIO(rootfs_tar()), "b", changes=["ENV X=b"])
    c = store.import_rootfs(io.BytesIO(gzip.compress(rootfs_tar())), "c")
    d = store.import_rootfs(io.BytesIO(gzip.compress(rootfs_tar())), "d", changes=["ENV X=d"])
    assert len({a.id, b.id, c.id, d.id}) == 4
    assert a.chain_ids == b.chain_ids == c.chain_ids == d.chain_ids
    assert store.layer_dirs(a) == store.layer_dirs(b) == store.layer_dirs(d)
    assert layer_names(store) == [a.chain_ids[0][7:]]
    # plain: known by digest; the first gzip must be unpacked to learn its diff_id (then
    # found to be known, so the copy is dropped); the second gzip is known by blob digest
    assert len(calls) == 2


def test_remove_refcounts_layers(store: ImageStore) -> None:
    one = store.import_rootfs(io.BytesIO(rootfs_tar()), "one", changes=["ENV X=1"])
    two = store.import_rootfs(io.BytesIO(rootfs_tar()), "two", changes=["ENV X=2"])
    other = store.import_rootfs(io.BytesIO(rootfs_tar({"x": b"y"})), "other")
    assert store.remove("one") == [{"Untagged": "one:latest"}, {"Deleted": one.id}]
    assert one.chain_ids[0][7:] in layer_names(store)   # "two" still uses it
    assert store.layer_dirs(two)[0].is_dir()
    assert store.remove(two.id) == [{"Untagged": "two:latest"}, {"Deleted": two.id},
                                    {"Deleted": two.chain_ids[0]}]
    assert layer_names(store) == [other.chain_ids[0][7:]]
    assert set(blob_names(store)) == {other.id[7:], other.manifest_digest[7:],
                                      other.diff_ids[0][7:]}
    with pytest.raises(ImageNotFound, match="No such image: one:latest"):
        store.resolve("one")
    store.remove("other")
    assert layer_names(store) == [] and blob_names(store) == []
    assert json.loads((store.root / "repositories.json").read_text()) == {"Repositories": {}}


def test_tags_and_untag(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "a:1")
    store.tag("a:1", "a:2")
    store.tag(image.short_id, "quay.io/x/y")
    assert store.resolve("a:2").references == ["a:1", "a:2", "quay.io/x/y:latest"]
    with pytest.raises(InvalidArgument, match="digest"):
        store.tag("a:1", f"a@{image.manifest_digest}")
    assert store.remove("a:1") == [{"Untagged": "a:1"}]   # other names remain
    assert store.untag("a:2") == [{"Untagged": "a:2"}]
    assert store.resolve(image.id).references == ["quay.io/x/y:latest"]
    # moving a tag leaves the old image dangling, reachable by id
    other = store.import_rootfs(io.BytesIO(rootfs_tar({"o": b"o"})), "quay.io/x/y")
    assert store.resolve("quay.io/x/y").id == other.id
    assert store.resolve(image.id).references == []
    repos = json.loads((store.root / "repositories.json").read_text())["Repositories"]
    assert repos == {"quay.io/x/y": {"quay.io/x/y:latest": other.id}}


def test_remove_by_id_with_many_repositories(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "a")
    store.tag("a", "b")
    with pytest.raises(Conflict, match="referenced in multiple repositories") as e:
        store.remove(image.id)
    assert e.value.status == 409
    records = store.remove(image.id, force=True)
    assert records[:2] == [{"Untagged": "a:latest"}, {"Untagged": "b:latest"}]
    assert records[2] == {"Deleted": image.id}
    assert store.list() == []


def test_in_use_conflicts(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "a")
    used = {image.id}
    with pytest.raises(Conflict, match="must force"):
        store.remove("a", in_use=lambda i: "c0ffee1234567890" if i in used else False)
    with pytest.raises(Conflict, match="container c0ffee123456"):
        store.remove("a", in_use=lambda i: "c0ffee1234567890")
    with pytest.raises(Conflict, match="being used by"):
        store.remove(image.id, in_use=used)
    with pytest.raises(Conflict, match="cannot be forced"):
        store.remove(image.id, force=True, in_use=used)
    assert store.resolve("a").id == image.id
    # forced by name: the name goes, the image (and its layer) stays for the container
    assert store.remove("a", force=True, in_use=used) == [{"Untagged": "a:latest"}]
    assert store.resolve(image.id).references == []
    assert store.layer_dirs(store.resolve(image.id))[0].is_dir()
    assert store.remove(image.id, in_use=set())[0] == {"Deleted": image.id}


# -- crash safety ---------------------------------------------------------------------------

def test_layer_appears_only_when_complete(store: ImageStore, monkeypatch) -> None:
    real = store_mod.extract_stream
    seen = {}

    def failing(src, dest, **kw):
        real(src, dest, **kw)   # every file written ...
        seen["dest"] = dest
        seen["published"] = layer_names(store)
        raise OSError(28, "No space left on device")   # ... then the disk fills up

    monkeypatch.setattr(store_mod, "extract_stream", failing)
    with pytest.raises(OSError):
        store.import_rootfs(io.BytesIO(rootfs_tar()), "a")
    assert seen["dest"].parent.name.startswith(".tmp-")   # unpacked under a temp name
    assert seen["published"] == []
    assert layer_names(store) == [] and store.list() == []
    assert not any(n.startswith(".tmp-") for n in os.listdir(store.root / "layers"))

    def checking(src, dest, **kw):
        seen["during"] = layer_names(store)
        return real(src, dest, **kw)

    monkeypatch.setattr(store_mod, "extract_stream", checking)
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "a")
    assert seen["during"] == [] and layer_names(store) == [image.chain_ids[0][7:]]


def test_truncated_tar_leaves_nothing(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument):
        store.import_rootfs(io.BytesIO(rootfs_tar()[:1200]), "broken")
    assert layer_names(store) == [] and store.list() == []
    with pytest.raises(ImageNotFound):
        store.resolve("broken")
    assert blob_names(store) == []   # the orphaned blob was swept at once


def test_reopen_sweeps_crash_leftovers(store: ImageStore) -> None:
    image = store.import_rootfs(io.BytesIO(rootfs_tar()), "a")
    dead = 2 ** 22 + 12345   # above pid_max's default: never a live process
    half = store.root / "layers" / f".tmp-{dead}-abc" / "diff"
    half.mkdir(parents=True)
    (half / "partial").write_text("x")
    (store.root / "blobs" / "sha256" / f".tmp-{dead}-abc").write_text("partial blob")
    orphan = store.root / "layers" / ("f" * 64)
    (orphan / "diff").mkdir(parents=True)
    (store.root / "blobs" / "sha256" / ("e" * 64)).write_text("orphan blob")
    again = ImageStore(store.root)
    assert layer_names(again) == [image.chain_ids[0][7:]]
    assert sorted(os.listdir(again.root / "layers")) == [image.chain_ids[0][7:]]
    assert ("e" * 64) not in blob_names(again)
    assert not any(n.startswith(".") for n in os.listdir(again.root / "blobs" / "sha256"))
    assert again.resolve("a").id == image.id


# -- bootstrap ------------------------------------------------------------------------------

BUSYBOX = shutil.which("busybox")


@pytest.mark.skipif(BUSYBOX is None, reason="no busybox on this host")
def test_busybox_bootstrap(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "one")
    image = busybox_image(store)
    assert image.references == ["busybox:latest"]
    assert store.resolve("busybox").id == image.id
    c = image.config["config"]
    assert c["Cmd"] == ["sh"]
    assert c["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    root = store.layer_dirs(image)[0]
    assert (root / "bin" / "busybox").is_file()
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.stat(root / "tmp").st_mode & 0o7777 == 0o1777
    for d in ("proc", "sys", "dev", "etc", "root", "var", "run", "home"):
        assert (root / d).is_dir(), d
    assert (root / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    assert "nobody" in (root / "etc" / "group").read_text()
    script = "echo hi from $(whoami); ls /bin | grep -c . ; wc -l < /etc/passwd"
    out = subprocess.run([shutil.which("chroot") or "chroot", str(root), "/bin/sh", "-c", script],
                         capture_output=True, text=True, check=True,
                         env={"PATH": c["Env"][0].split("=", 1)[1]})
    assert out.stdout.split() == ["hi", "from", "root", out.stdout.split()[3], "2"]
    assert int(out.stdout.split()[3]) > 50   # applet symlinks in /bin
    # deterministic: a second store on this host makes the very same image
    other = busybox_image(ImageStore(tmp_path / "two"), "base:1")
    assert other.id == image.id and other.diff_ids == image.diff_ids
    assert busybox_image(store).id == image.id


def test_bootstrap_refuses_dynamic_busybox(store: ImageStore) -> None:
    dynamic = shutil.which("ls")
    assert dynamic is not None
    with pytest.raises(InvalidArgument, match="dynamically linked"):
        busybox_image(store, busybox=dynamic)
    with pytest.raises(InvalidArgument, match="not found"):
        busybox_image(store, busybox="/nonexistent/busybox")
    assert store.list() == []


def test_errors_are_pyjail_errors(store: ImageStore) -> None:
    with pytest.raises(PyjailError):
        store.resolve("nope")
