"""The image store: OCI content-addressed blobs, layers unpacked once, Docker-style names.

Layout under ``root`` (e.g. ``<data-root>/images``)::

    blobs/sha256/<hex>          layer tars (as given: gzip/zstd/plain), configs, manifests
    layers/<chainid-hex>/diff/  a layer unpacked once, shared as an overlayfs lowerdir
    layers/<chainid-hex>/meta.json   {chain_id, diff_id, parent, size, blob}
    imagedb/<id-hex>.json       {manifest, last_tag_time}: which configs are images
    repositories.json           Docker's format: {"Repositories": {name: {ref: id}}}

Crash safety: blobs and layer dirs are built under temp names and renamed into place only
when complete (and synced); an image exists once its imagedb entry is renamed in, a name
once repositories.json is. Whatever a crash leaves unreferenced is swept on open (``gc``).
Image id = ``sha256:`` + sha256 of the config bytes, as Docker computes it.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import fcntl
import hashlib
import os
import platform
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pyjail.errors import Conflict, ImageNotFound, InvalidArgument, PyjailError
from pyjail.fsutil import atomic_write_json, fsync_dir, read_json
from pyjail.images import changes as dockerfile_changes
from pyjail.images import reference as refs_mod
from pyjail.images import tarstream
from pyjail.images.blobs import BlobStore, BlobWriter, canonical_json
from pyjail.images.layers import extract_stream, open_source

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_TMP = ".tmp-"
_DEL = ".del-"
_HEX_PREFIX = re.compile(r"^[a-f0-9]{1,64}$")
ZERO_TIME = "0001-01-01T00:00:00Z"

InUse = Callable[[str], bool | str | None] | Collection[str]


@dataclass
class Image:
    """An image as the rest of pyjail sees it (its full OCI config, names, layers)."""

    id: str
    config: dict[str, Any]
    references: list[str] = field(default_factory=list)   # familiar "name:tag", sorted
    created: str = ""
    size: int = 0
    chain_ids: list[str] = field(default_factory=list)    # bottom first
    diff_ids: list[str] = field(default_factory=list)     # bottom first
    repo_digests: list[str] = field(default_factory=list)
    manifest_digest: str = ""

    @property
    def short_id(self) -> str:
        return self.id[7:19]


@dataclass
class _Record:
    """The immutable part of an image, cached by id."""

    config: dict[str, Any]
    manifest_digest: str
    chain_ids: list[str]
    diff_ids: list[str]
    layer_sizes: list[int]
    layer_blobs: list[str]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainIDs: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    out: list[str] = []
    for diff in diff_ids:
        if out:
            diff = "sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest()
        out.append(diff)
    return out


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unix_seconds(ts: str | None) -> int:
    """RFC 3339 (nanoseconds allowed) to Unix seconds; 0 when absent or unparsable."""
    if not ts:
        return 0
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", ts)
    if not m:
        return 0
    zone = "+00:00" if m.group(2) == "Z" else m.group(2)
    return int(datetime.fromisoformat(m.group(1) + zone).timestamp())


def goarch() -> str:
    machine = platform.machine()
    return _GOARCH.get(machine, machine)


def _syncfs(path: Path) -> None:
    """Flush a whole layer's files before its rename makes it visible."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def _pid_alive(name: str) -> bool:
    """Temp names carry their writer's pid: ``.tmp-<pid>-<random>``."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _docker_config(c: dict[str, Any]) -> dict[str, Any]:
    """The ``Config`` object as Docker's API shows it: every field present."""
    out: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
        "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
        "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
        "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
    }
    out.update({k: v for k, v in c.items() if v is not None})
    return out


def _is_single_reference(refs: list[refs_mod.Reference]) -> bool:
    """Docker's rule: one tag, or only digests of that tag's repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: refs_mod.Reference | None = None
    canonical: set[str] = set()
    for r in refs:
        if r.digest:
            canonical.add(r.name)
        elif single is None:
            single = r
        else:
            return False
    single = single or refs[0]
    return len(canonical) == 1 and single.name in canonical


class ImageStore:
    """Images under one root directory; safe across threads and processes (one lock)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.blobs = BlobStore(self.root)
        self.layers_dir = self.root / "layers"
        self.imagedb = self.root / "imagedb"
        self.repositories = self.root / "repositories.json"
        for d in (self.layers_dir, self.imagedb):
            d.mkdir(exist_ok=True)
        self._mutex = threading.RLock()
        self._depth = 0
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                0o600)
        self._records: dict[str, _Record] = {}
        self._blob_diffs: dict[str, str] = {}
        self.gc()

    # -- locking and persistence -----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a thread lock, plus flock against other processes."""
        with self._mutex:
            if self._depth == 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _load_refs(self) -> dict[str, str]:
        """Full reference string -> image id, from Docker's repositories.json shape."""
        try:
            data = read_json(self.repositories)
        except FileNotFoundError:
            return {}
        out: dict[str, str] = {}
        for repo in (data.get("Repositories") or {}).values():
            for ref, image_id in repo.items():
                out[str(refs_mod.parse(ref, default_tag=False))] = image_id
        return out

    def _save_refs(self, refs: dict[str, str]) -> None:
        repos: dict[str, dict[str, str]] = {}
        for ref in sorted(refs):
            parsed = refs_mod.parse(ref, default_tag=False)
            repos.setdefault(parsed.familiar_name, {})[parsed.familiar()] = refs[ref]
        atomic_write_json(self.repositories, {"Repositories": repos})

    def _ids(self) -> list[str]:
        return ["sha256:" + name[:-5] for name in os.listdir(self.imagedb)
                if name.endswith(".json") and not name.startswith(".")]

    def _db_path(self, image_id: str) -> Path:
        return self.imagedb / f"{image_id[7:]}.json"

    def _layer_path(self, chain_id: str) -> Path:
        return self.layers_dir / chain_id[7:]

    def _layer_meta(self, chain_id: str) -> dict[str, Any]:
        try:
            return read_json(self._layer_path(chain_id) / "meta.json")
        except FileNotFoundError:
            raise InvalidArgument(f"layer {chain_id} is not in the image store") from None

    def _record(self, image_id: str) -> _Record:
        rec = self._records.get(image_id)
        if rec is None:
            db = read_json(self._db_path(image_id))
            config = self.blobs.get_json(image_id)
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            chain = chain_ids(diff_ids)
            manifest = self.blobs.get_json(db["manifest"])
            sizes = []
            for c in chain:
                try:
                    sizes.append(int(self._layer_meta(c).get("size", 0)))
                except InvalidArgument:
                    sizes.append(0)
            rec = _Record(config, db["manifest"], chain, diff_ids, sizes,
                          [d["digest"] for d in manifest.get("layers", [])])
            self._records[image_id] = rec
        return rec

    def _image(self, image_id: str, refs: dict[str, str]) -> Image:
        rec = self._record(image_id)
        names = [refs_mod.parse(r, default_tag=False) for r, i in refs.items() if i == image_id]
        return Image(
            id=image_id,
            config=copy.deepcopy(rec.config),   # callers may edit theirs; the cache stays
            references=sorted(n.familiar() for n in names if not n.digest),
            created=rec.config.get("created", ""),
            size=sum(rec.layer_sizes),
            chain_ids=list(rec.chain_ids),
            diff_ids=list(rec.diff_ids),
            repo_digests=sorted(n.familiar() for n in names if n.digest),
            manifest_digest=rec.manifest_digest,
        )

    # -- lookups ---------------------------------------------------------------------------

    def _lookup(self, ref: str, refs: dict[str, str]) -> tuple[str, refs_mod.Reference | None]:
        """(image id, the repository reference it was found by, if any)."""
        ids = set(self._ids())
        if refs_mod.is_full_id(ref):
            image_id = ref if ref.startswith("sha256:") else "sha256:" + ref
            if image_id in ids:
                return image_id, None
            raise ImageNotFound(f"No such image: {image_id}")
        parse_error: InvalidArgument | None = None
        parsed: refs_mod.Reference | None = None
        try:
            parsed = refs_mod.parse(ref)
        except InvalidArgument as e:
            parse_error = e
        if parsed is not None:
            image_id = refs.get(str(parsed))
            if image_id in ids:
                return image_id, parsed
            if parsed.digest:   # name@<manifest digest> of an image tagged in that repository
                for r, i in refs.items():
                    if (i in ids and refs_mod.parse(r, default_tag=False).name == parsed.name
                            and self._record(i).manifest_digest == parsed.digest):
                        return i, None
        prefix = ref.removeprefix("sha256:")
        if _HEX_PREFIX.match(prefix):   # Docker accepts any unique prefix of the id
            found = [i for i in ids if i[7:].startswith(prefix)]
            if len(found) == 1:
                return found[0], None
        if parsed is None:
            assert parse_error is not None
            raise parse_error
        raise ImageNotFound(f"No such image: {parsed.familiar()}")

    def resolve(self, ref: str) -> Image:
        """name[:tag], name@digest, full or hex id, or a unique id prefix -> Image."""
        refs = self._load_refs()
        image_id, _ = self._lookup(ref, refs)
        return self._image(image_id, refs)

    def list(self) -> list[Image]:
        """Every image, newest first (Docker's /images/json order)."""
        refs = self._load_refs()
        images = [self._image(i, refs) for i in self._ids()]
        images.sort(key=lambda im: (unix_seconds(im.created), im.created, im.id), reverse=True)
        return images

    def layer_dirs(self, image: Image) -> list[Path]:
        """The unpacked ``diff`` dirs, topmost first: overlayfs lowerdir order."""
        out = []
        for chain_id in reversed(image.chain_ids):
            path = self._layer_path(chain_id) / "diff"
            if not path.is_dir():
                raise PyjailError(f"image {image.id}: layer {chain_id} is missing from the store")
            out.append(path)
        return out

    # -- names -----------------------------------------------------------------------------

    def _set_tag(self, image_id: str, new: refs_mod.Reference) -> None:
        refs = self._load_refs()
        refs[str(new)] = image_id
        self._save_refs(refs)
        db = read_json(self._db_path(image_id))
        db["last_tag_time"] = now_rfc3339()
        atomic_write_json(self._db_path(image_id), db)

    @staticmethod
    def _parse_tag(new_reference: str) -> refs_mod.Reference:
        new = refs_mod.parse(new_reference)
        if new.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        return new

    def tag(self, ref_or_id: str, new_reference: str) -> None:
        """Point ``new_reference`` (tag ``latest`` if none) at an image; moves an existing tag."""
        new = self._parse_tag(new_reference)
        with self._locked():
            image = self.resolve(ref_or_id)
            self._set_tag(image.id, new)

    def untag(self, reference: str) -> list[dict[str, str]]:
        """Remove one name; the image stays even when it was its last name."""
        parsed = refs_mod.parse(reference)
        with self._locked():
            refs = self._load_refs()
            if str(parsed) not in refs:
                raise ImageNotFound(f"No such image: {parsed.familiar()}")
            del refs[str(parsed)]
            self._save_refs(refs)
        return [{"Untagged": parsed.familiar()}]

    # -- removal ---------------------------------------------------------------------------

    @staticmethod
    def _user(image_id: str, in_use: InUse | None) -> str | None:
        """None when unused; else the using container's id ('' when not told)."""
        if in_use is None:
            return None
        used = in_use(image_id) if callable(in_use) else image_id in in_use
        if not used:
            return None
        return used if isinstance(used, str) else ""

    def remove(self, ref_or_id: str, force: bool = False,
               in_use: InUse | None = None) -> list[dict[str, str]]:
        """``docker rmi``: untag the given name, delete the image once no name is left.

        By id, all names go at once (``force`` needed when they span repositories).
        ``in_use(image_id)`` (or a set of ids) tells whether a container uses the image, and
        may return the container's id for the message: a used image is never deleted
        (its layers are the container's lowerdirs); without ``force`` that is a Conflict,
        with it the name alone is removed and the image stays, dangling.
        Returns Docker's records: ``[{"Untagged": ...}, ..., {"Deleted": ...}, ...]``.
        """
        with self._locked():
            refs = self._load_refs()
            image_id, by_name = self._lookup(ref_or_id, refs)
            short = image_id[7:19]
            image_refs = [refs_mod.parse(r, default_tag=False)
                          for r, i in refs.items() if i == image_id]
            user = self._user(image_id, in_use)
            using = f"container {user[:12]}" if user else "a container"
            records: list[dict[str, str]] = []
            if by_name is not None:
                if user is not None and not force and _is_single_reference(image_refs):
                    raise Conflict(f'conflict: unable to remove repository reference '
                                   f'"{ref_or_id}" (must force) - {using} is using its '
                                   f'referenced image {short}')
                remaining = [r for r in image_refs if str(r) != str(by_name)]
                records.append({"Untagged": by_name.familiar()})
                if not by_name.digest and not any(
                        r.name == by_name.name and not r.digest for r in remaining):
                    for r in [r for r in remaining if r.digest and r.name == by_name.name]:
                        remaining.remove(r)
                        records.append({"Untagged": r.familiar()})
                self._save_refs({k: v for k, v in refs.items() if v != image_id
                                 or k in {str(r) for r in remaining}})
                if remaining or user is not None:
                    return records
            else:
                if user is not None:
                    raise Conflict(f"conflict: unable to delete {short} "
                                   f"({'cannot' if force else 'must'} be forced) - "
                                   f"image is being used by {using}")
                if not force and image_refs and not _is_single_reference(image_refs):
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   f"image is referenced in multiple repositories")
                records.extend({"Untagged": r.familiar()} for r in sorted(image_refs, key=str))
                if image_refs:
                    self._save_refs({k: v for k, v in refs.items() if v != image_id})
            records.append({"Deleted": image_id})
            records.extend({"Deleted": c} for c in self._delete_image(image_id))
            return records

    def _delete_image(self, image_id: str) -> list[str]:
        """Drop an image, then the layers and blobs nothing else uses; returns chain ids gone."""
        rec = self._record(image_id)
        self._db_path(image_id).unlink()
        fsync_dir(self.imagedb)
        self._records.pop(image_id, None)
        kept = self._referenced()
        if kept is None:
            return []
        kept_layers, kept_blobs = kept
        removed = []
        for chain_id in reversed(rec.chain_ids):
            if chain_id not in kept_layers:
                self._remove_layer(chain_id)
                removed.append(chain_id)
        for digest in {image_id, rec.manifest_digest, *rec.layer_blobs} - kept_blobs:
            self.blobs.delete(digest)
            self._blob_diffs.pop(digest, None)
        return removed

    def _referenced(self) -> tuple[set[str], set[str]] | None:
        """Chain ids and blob digests that some image (or a kept layer) still needs;
        None when an image entry cannot be read (then nothing may be deleted)."""
        layers: set[str] = set()
        blobs: set[str] = set()
        for image_id in self._ids():
            try:
                rec = self._record(image_id)
            except (OSError, ValueError, KeyError, PyjailError):
                return None
            layers.update(rec.chain_ids)
            blobs.update((image_id, rec.manifest_digest, *rec.layer_blobs))
        for chain_id in layers:
            try:
                blobs.add(self._layer_meta(chain_id)["blob"]["digest"])
            except (InvalidArgument, KeyError):
                pass
        return layers, blobs

    def _remove_layer(self, chain_id: str) -> None:
        path = self._layer_path(chain_id)
        doomed = self.layers_dir / f"{_DEL}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(path, doomed)   # gone at once for readers; the slow delete follows
        except FileNotFoundError:
            return
        fsync_dir(self.layers_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    def gc(self) -> None:
        """Sweep what a crash left: temp dirs and files, unreferenced layers and blobs."""
        with self._locked():
            for name in os.listdir(self.layers_dir):
                if name.startswith((_TMP, _DEL)) and not _pid_alive(name):
                    shutil.rmtree(self.layers_dir / name, ignore_errors=True)
            self.blobs.clean_temp(_pid_alive)
            for d in (self.imagedb, self.root):   # fsutil's ".<name>.tmp<pid>" files
                for name in os.listdir(d):
                    m = re.match(r"^\..*\.tmp(\d+)$", name)
                    if m and not _pid_alive(f"x-{m.group(1)}"):
                        (d / name).unlink(missing_ok=True)
            kept = self._referenced()
            if kept is None:
                return
            kept_layers, kept_blobs = kept
            for name in os.listdir(self.layers_dir):
                if not name.startswith(".") and "sha256:" + name not in kept_layers:
                    self._remove_layer("sha256:" + name)
            for digest in list(self.blobs.digests()):
                if digest not in kept_blobs:
                    self.blobs.delete(digest)

    # -- creating images -------------------------------------------------------------------

    def _find_diff(self, blob_digest: str) -> str | None:
        """The diff_id of a compressed blob we unpacked before (saves a second unpack)."""
        if not self._blob_diffs:
            for name in os.listdir(self.layers_dir):
                if name.startswith("."):
                    continue
                try:
                    meta = read_json(self.layers_dir / name / "meta.json")
                    self._blob_diffs[meta["blob"]["digest"]] = meta["diff_id"]
                except (OSError, ValueError, KeyError):
                    continue
        return self._blob_diffs.get(blob_digest)

    def _ingest(self, tar: BinaryIO | str | os.PathLike[str] | BlobWriter,
                ) -> tuple[str, str, int, str | None]:
        """Store a layer tar as a blob: (digest, compression, size, diff_id if known).

        gzip and zstd blobs are kept as they are (valid OCI layer media types); xz and
        bzip2 are stored decompressed, since OCI has no media type for them. A pending
        ``BlobWriter`` (docker load) is committed as it is: no second copy, no second hash.
        """
        if isinstance(tar, BlobWriter):
            digest = tar.commit()
            with open(self.blobs.path(digest), "rb") as f:
                kind = tarstream.detect_compression(f.read(8))
            if kind in ("gzip", "zstd"):
                return digest, kind, tar.size, self._find_diff(digest)
            if kind == "none":
                return digest, kind, tar.size, digest
            tar = self.blobs.path(digest)   # xz, bzip2: stored decompressed, as below
        with contextlib.ExitStack() as stack:
            raw: BinaryIO = (stack.enter_context(open(tar, "rb", buffering=0))
                             if isinstance(tar, (str, os.PathLike)) else tar)
            as_given = stack.enter_context(self.blobs.writer())
            tee = _Tee(raw, as_given)
            kind, chunks = tarstream.decompressed_chunks(tee)
            if kind in ("xz", "bzip2"):
                tee.writer = None
                plain = stack.enter_context(self.blobs.writer())
                for chunk in chunks:
                    plain.write(chunk)
                digest = plain.commit()
                return digest, "none", plain.size, digest
            while tee.read(tarstream.CHUNK):
                pass
            digest = as_given.commit()
            if kind == "none":
                return digest, kind, as_given.size, digest
            return digest, kind, as_given.size, self._find_diff(digest)

    def layer_staging_path(self) -> Path:
        """A fresh name for a layer being made (gc removes it if its process dies)."""
        return self.layers_dir / f"{_TMP}{os.getpid()}-{secrets.token_hex(6)}"

    def _add_layer(self, tar: BinaryIO | str | os.PathLike[str] | BlobWriter,
                   parent: str | None) -> tuple[dict[str, Any], str, str]:
        """Register one layer on top of ``parent``: (descriptor, diff_id, chain_id)."""
        digest, kind, size, diff_id = self._ingest(tar)
        descriptor = {"mediaType": MEDIA_LAYER[kind], "digest": digest, "size": size}
        if diff_id is not None:
            chain_id = chain_ids([parent, diff_id])[1] if parent else diff_id
            if (self._layer_path(chain_id) / "meta.json").is_file():
                return descriptor, diff_id, chain_id   # already unpacked: shared
        unpacked = tar.unpacked if isinstance(tar, BlobWriter) and kind == "none" else None
        tmp = unpacked[0] if unpacked else self.layer_staging_path()
        try:
            if unpacked:    # made from these very bytes while they were written
                content = unpacked[1]
            else:
                (tmp / "diff").mkdir(parents=True)
                hasher = hashlib.sha256() if diff_id is None else None
                blob_path = self.blobs.path(digest)
                with open_source(blob_path, hasher) as (_, src):
                    content = extract_stream(src, tmp / "diff", for_overlay=True,
                                             size_hint=os.stat(blob_path).st_size)
                    src.drain()
                if hasher is not None:
                    diff_id = "sha256:" + hasher.hexdigest()
            assert diff_id is not None
            chain_id = chain_ids([parent, diff_id])[1] if parent else diff_id
            final = self._layer_path(chain_id)
            if (final / "meta.json").is_file():   # known after all: keep the first copy
                shutil.rmtree(tmp, ignore_errors=True)
                self._blob_diffs[digest] = diff_id
                return descriptor, diff_id, chain_id
            atomic_write_json(tmp / "meta.json", {
                "chain_id": chain_id, "diff_id": diff_id, "parent": parent, "size": content,
                "blob": descriptor})
            _syncfs(tmp)
            if final.exists():   # a leftover without meta.json: never a complete layer
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.layers_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._blob_diffs[digest] = diff_id
        return descriptor, diff_id, chain_id

    def create_image(self, layer_tars: list[Any], config: dict[str, Any],
                     reference: str | None = None, *, parent: str | None = None) -> Image:
        """Register layer tars (on top of the layers ``config["rootfs"]`` already lists, which
        must be in the store) and the full OCI image config; optionally tag it.

        ``parent``: the local image this one was made from (a build's previous step, a
        committed container's image), Docker's ``Parent``; history walks it back."""
        new_ref = self._parse_tag(reference) if reference else None
        config = copy.deepcopy(config)
        rootfs = config.get("rootfs") or {"type": "layers", "diff_ids": []}
        if rootfs.get("type", "layers") != "layers":
            raise InvalidArgument(f"unsupported rootfs type: {rootfs.get('type')}")
        diff_ids = list(rootfs.get("diff_ids") or [])
        with self._locked():
            chain = chain_ids(diff_ids)
            descriptors = [self._layer_meta(c)["blob"] for c in chain]
            try:
                for tar in layer_tars:
                    desc, diff_id, chain_id = self._add_layer(tar, chain[-1] if chain else None)
                    descriptors.append(desc)
                    diff_ids.append(diff_id)
                    chain.append(chain_id)
                config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
                config.setdefault("architecture", goarch())
                config.setdefault("os", "linux")
                image_id = self._register(canonical_json(config), descriptors, parent)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.gc()   # blobs and layers of this half-made image: no one uses them
                raise
            if new_ref is not None:
                self._set_tag(image_id, new_ref)
            return self._image(image_id, self._load_refs())

    def _register(self, config_bytes: bytes, layers: list[dict[str, Any]],
                  parent: str | None = None) -> str:
        """Config and manifest blobs, then the imagedb entry that makes it an image."""
        image_id = self.blobs.put(config_bytes)
        manifest = {
            "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": image_id,
                       "size": len(config_bytes)},
            "layers": layers,
        }
        manifest_digest = self.blobs.put(canonical_json(manifest))
        if not self._db_path(image_id).is_file():
            entry: dict[str, Any] = {"manifest": manifest_digest, "last_tag_time": None}
            if parent and parent != image_id:
                entry["parent"] = parent
            atomic_write_json(self._db_path(image_id), entry)
        return image_id

    def parent(self, image_id: str) -> str:
        """The image this one was built or committed from ("" when pulled, loaded, imported)."""
        try:
            return str(read_json(self._db_path(image_id)).get("parent") or "")
        except (FileNotFoundError, ValueError):
            return ""

    def import_rootfs(self, tar: BinaryIO | str | os.PathLike[str],
                      reference: str | None = None, *, config: dict[str, Any] | None = None,
                      changes: list[str] | None = None, comment: str = "") -> Image:
        """``docker import``: one layer from a rootfs tar (plain, gzip, xz, bzip2 or zstd)."""
        section = dockerfile_changes.apply_overrides({}, config or {})
        if changes:
            section = dockerfile_changes.apply_changes(section, changes)
        created = now_rfc3339()
        message = comment or "Imported from -"
        full = {
            "architecture": goarch(), "os": "linux", "created": created, "comment": message,
            "config": section, "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created": created, "comment": message}],
        }
        return self.create_image([tar], full, reference)

    # -- registries (pyjail.images.registry) -----------------------------------------------

    def has_image(self, image_id: str) -> bool:
        return self._db_path(image_id).is_file()

    def add_distribution_image(self, config_bytes: bytes, manifest_bytes: bytes,
                               layer_files: list[str | os.PathLike[str] | BlobWriter],
                               references: list[refs_mod.Reference]) -> Image:
        """Register a pulled image from verified files: the config and manifest are kept
        byte for byte (so the id is the registry's config digest and the manifest digest its
        RepoDigest); each layer's diff_id must match the config's, or nothing is kept."""
        config = json_loads_object(config_bytes)
        expected = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(expected) != len(layer_files):
            raise InvalidArgument(f"image config lists {len(expected)} layers, the manifest "
                                  f"{len(layer_files)}")
        with self._locked():
            try:
                parent: str | None = None
                for path, want in zip(layer_files, expected, strict=True):
                    _, diff_id, parent = self._add_layer(path, parent)
                    if diff_id != want:
                        raise InvalidArgument(f"layer diff_id {diff_id} does not match the image "
                                              f"config ({want})")
                image_id = self.blobs.put(config_bytes)
                manifest_digest = self.blobs.put(manifest_bytes)
                if not self._db_path(image_id).is_file():
                    atomic_write_json(self._db_path(image_id),
                                      {"manifest": manifest_digest, "last_tag_time": None})
            except BaseException:
                with contextlib.suppress(Exception):
                    self.gc()
                raise
            self.add_references(image_id, references)
            return self._image(image_id, self._load_refs())

    def add_references(self, image_id: str, references: list[refs_mod.Reference]) -> None:
        """Point tags and ``name@digest`` RepoDigests at an image (pull and push record both)."""
        with self._locked():
            refs = self._load_refs()
            if not references or all(refs.get(str(r)) == image_id for r in references):
                return
            for r in references:
                refs[str(r)] = image_id
            self._save_refs(refs)
            if any(not r.digest for r in references):
                db = read_json(self._db_path(image_id))
                db["last_tag_time"] = now_rfc3339()
                atomic_write_json(self._db_path(image_id), db)

    def layer_descriptors(self, image: Image) -> list[dict[str, Any]]:
        """The stored blob of each layer, bottom first: {mediaType, digest, size}."""
        return [dict(self._layer_meta(c)["blob"]) for c in image.chain_ids]

    def layer_sizes(self, image: Image) -> list[int]:
        """Unpacked size of each layer, bottom first (pyjail.images.listing: df, prune)."""
        return list(self._record(image.id).layer_sizes)

    def config_bytes(self, image_id: str) -> bytes:
        """The image config exactly as stored (its sha256 is the id): for save."""
        return self.blobs.get(image_id)

    def manifest_bytes(self, image: Image) -> bytes:
        """The stored manifest blob (its digest is ``manifest_digest``): for save."""
        return self.blobs.get(image.manifest_digest)

    # -- Docker API views ------------------------------------------------------------------

    def inspect(self, image: Image) -> dict[str, Any]:
        """``GET /images/{name}/json``."""
        cfg = image.config
        dirs = [str(p) for p in self.layer_dirs(image)]
        data: dict[str, str] = {}
        if dirs:
            data["UpperDir"] = dirs[0]
            if len(dirs) > 1:
                data["LowerDir"] = ":".join(dirs[1:])
        try:
            db = read_json(self._db_path(image.id))
        except FileNotFoundError:
            db = {}
        last_tag = db.get("last_tag_time")
        out = {
            "Id": image.id,
            "RepoTags": list(image.references),
            "RepoDigests": list(image.repo_digests),
            "Parent": db.get("parent") or "",
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created", ""),
            "Container": cfg.get("container", ""),
            "ContainerConfig": _docker_config(cfg.get("container_config") or {}),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": _docker_config(cfg.get("config") or {}),
            "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""),
            "Size": image.size,
            "VirtualSize": image.size,
            "GraphDriver": {"Name": "overlay2", "Data": data},
            "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
            "Metadata": {"LastTagTime": last_tag or ZERO_TIME},
        }
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        return out

    def history(self, image: Image) -> list[dict[str, Any]]:
        """``GET /images/{name}/history``: newest first, layer sizes on non-empty steps."""
        rec = self._record(image.id)
        steps = image.config.get("history") or [
            {"created": image.created} for _ in rec.chain_ids] or [{"created": image.created}]
        out = []
        layer = 0
        for step in steps:
            size = 0
            if not step.get("empty_layer"):
                size = rec.layer_sizes[layer] if layer < len(rec.layer_sizes) else 0
                layer += 1
            out.append({"Id": "<missing>", "Created": unix_seconds(step.get("created")),
                        "CreatedBy": step.get("created_by", ""), "Tags": None, "Size": size,
                        "Comment": step.get("comment", "")})
        out.reverse()
        # As dockerd: ids (and tags) along the chain of local parents, one per step, newest
        # first; the steps of a pulled or loaded image stay <missing>.
        refs = self._load_refs()
        image_id = image.id
        for step in out:
            step["Id"] = image_id
            tags = [refs_mod.parse(r, default_tag=False) for r, i in refs.items() if i == image_id]
            step["Tags"] = sorted(t.familiar() for t in tags if not t.digest) or None
            image_id = self.parent(image_id)
            if not image_id or not self.has_image(image_id):
                break
        return out


class _Tee:
    """A reader that copies every byte it reads into a blob writer (while it has one)."""

    def __init__(self, raw: BinaryIO, writer: Any) -> None:
        self._read = getattr(raw, "read1", None) or raw.read
        self.writer = writer

    def read(self, n: int = -1) -> bytes:
        data = self._read(n if n and n > 0 else tarstream.CHUNK)
        if data and self.writer is not None:
            self.writer.write(data)
        return data


def json_loads_object(data: bytes) -> dict[str, Any]:
    """A JSON object from bytes, or InvalidArgument (a registry's config must be one)."""
    import json
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid image config: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    return value
