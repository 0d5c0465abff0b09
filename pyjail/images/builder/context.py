"""The build context, held in memory as an index of its tar, and file trees to copy from.

Why in memory: a cached rebuild only needs checksums of the copied files, so nothing is
written to disk until a COPY actually runs. Both trees (the context and, for
``COPY --from``, an image's merged layers) offer the same small interface, so COPY does
not care where its files come from. Symlinks are resolved inside the tree's root only
(as Docker's FollowSymlinkInScope does): a link cannot lead a COPY out of the context.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pyjail.errors import InvalidArgument
from pyjail.images.export import merged

DIR, FILE, LINK, OTHER = "d", "f", "l", "o"
_MAX_LINKS = 40


@dataclass
class Entry:
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    link: str
    read: Callable[[], bytes] | None = None
    host: str = ""


def clean(path: str) -> str:
    """A path relative to the tree's root ('' is the root); never climbs above it."""
    norm = posixpath.normpath("/" + path)
    return norm.lstrip("/")


class Tree:
    """Relative path -> Entry, with in-scope symlink resolution and globbing."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.entries.setdefault("", Entry(DIR, 0o755, 0, 0, 0, 0, ""))
        self._children: dict[str, list[str]] | None = None
        self._digests: dict[str, str] = {}

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """Follow symlinks within the root; the resolved relative path (may not exist)."""
        parts = [p for p in clean(path).split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            cur = "/".join([*done, name])
            e = self.entries.get(cur)
            if e is not None and e.kind == LINK and (parts or follow_last):
                hops += 1
                if hops > _MAX_LINKS:
                    raise InvalidArgument(f"too many levels of symbolic links: {path}")
                target = e.link
                base = [] if target.startswith("/") else done
                parts = [p for p in clean("/".join([*base, target])).split("/") if p] + parts
                done = []
                continue
            done.append(name)
        return "/".join(done)

    def children(self, rel: str) -> list[str]:
        if self._children is None:
            kids: dict[str, list[str]] = {}
            for p in self.entries:
                if p:
                    kids.setdefault(p.rsplit("/", 1)[0] if "/" in p else "", []).append(p)
            for v in kids.values():
                v.sort()
            self._children = kids
        return self._children.get(rel, [])

    def walk(self, rel: str) -> Iterator[str]:
        """``rel`` and everything below it, parents first."""
        yield rel
        if self.entries[rel].kind == DIR:
            for kid in self.children(rel):
                yield from self.walk(kid)

    def glob(self, pattern: str) -> list[str]:
        """Matches of a pattern (``*`` stays within one path element), sorted."""
        pat = clean(pattern)
        depth = pat.count("/")
        rx = re.compile(fnmatch.translate(pat).replace(".*", "[^/]*"))
        return sorted(p for p in self.entries if p and p.count("/") == depth and rx.match(p))

    def digest(self, rel: str) -> str:
        """Content checksum of one entry (files hashed once per build)."""
        d = self._digests.get(rel)
        if d is None:
            e = self.entries[rel]
            h = hashlib.sha256()
            if e.kind == FILE and e.read is not None:
                h.update(e.read())
            elif e.kind == LINK:
                h.update(e.link.encode())
            d = h.hexdigest()
            self._digests[rel] = d
        return d


def _reader(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        f = tf.extractfile(info)
        return f.read() if f is not None else b""
    return read


def context_tree(data: bytes) -> Tree:
    """The build context from the request body (a tar, possibly gzip; empty is allowed)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    entries: dict[str, Entry] = {}
    if not data.strip(b"\0"):
        return Tree(entries)
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115
        members = tf.getmembers()
    except (tarfile.TarError, EOFError) as exc:
        if b"\0" in data[:512]:
            raise InvalidArgument(f"invalid build context: {exc}") from None
        # ``docker build - < Dockerfile``: the body is the Dockerfile itself, no context
        text = data
        return Tree({"Dockerfile": Entry(FILE, 0o644, 0, 0, 0, len(text), "",
                                         lambda: text)})
    for m in members:
        rel = clean(m.name)
        if not rel:
            continue
        parent = rel
        while "/" in parent:   # contexts may omit directory entries
            parent = parent.rsplit("/", 1)[0]
            entries.setdefault(parent, Entry(DIR, 0o755, 0, 0, int(m.mtime), 0, ""))
        if m.isdir():
            e = Entry(DIR, m.mode & 0o7777, m.uid, m.gid, int(m.mtime), 0, "")
        elif m.issym():
            e = Entry(LINK, 0o777, m.uid, m.gid, int(m.mtime), 0, m.linkname)
        elif m.islnk():
            target = entries.get(clean(m.linkname))
            if target is None:
                continue
            e = target
        elif m.isreg():
            e = Entry(FILE, m.mode & 0o7777, m.uid, m.gid, int(m.mtime), m.size, "",
                      _reader(tf, m))
        else:
            continue
        entries[rel] = e
    return Tree(entries)


def _read_host(path: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()
    return read


def image_tree(layer_dirs_top_first: list) -> Tree:
    """An image's merged filesystem (for ``COPY --from``)."""
    entries: dict[str, Entry] = {}
    for rel, host in merged(layer_dirs_top_first).items():
        st = os.lstat(host)
        m = st.st_mode
        if stat.S_ISDIR(m):
            e = Entry(DIR, stat.S_IMODE(m), st.st_uid, st.st_gid, int(st.st_mtime), 0, "")
        elif stat.S_ISLNK(m):
            e = Entry(LINK, 0o777, st.st_uid, st.st_gid, int(st.st_mtime), 0, os.readlink(host))
        elif stat.S_ISREG(m):
            e = Entry(FILE, stat.S_IMODE(m), st.st_uid, st.st_gid, int(st.st_mtime),
                      st.st_size, "", _read_host(host), host)
        else:
            continue
        entries[rel] = e
    return Tree(entries)


# -- .dockerignore ---------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's patternmatcher: ``**`` any depth, ``*`` and ``?`` within one element."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            else:
                out += ".*"
                i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out += re.escape(c)
            else:
                out += "[" + pattern[i + 1:j].replace("!", "^", 1) + "]"
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(f"^{out}$")


def parse_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = clean(line)
        if not line:
            continue
        rules.append((exclusion, _pattern_regex(line)))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Last matching rule wins; a rule matching a parent directory matches its contents."""
    result = False
    parents = []
    p = rel
    while "/" in p:
        p = p.rsplit("/", 1)[0]
        parents.append(p)
    for exclusion, rx in rules:
        if rx.match(rel) or any(rx.match(q) for q in parents):
            result = not exclusion
    return result


def apply_dockerignore(tree: Tree, keep: set[str]) -> None:
    """Drop what ``.dockerignore`` excludes (the Dockerfile and .dockerignore stay)."""
    e = tree.entries.get(".dockerignore")
    if e is None or e.kind != FILE or e.read is None:
        return
    rules = parse_dockerignore(e.read().decode(errors="replace"))
    if not rules:
        return
    for rel in list(tree.entries):
        if rel and rel not in keep and ignored(rel, rules):
            del tree.entries[rel]
    for rel in list(tree.entries):   # an excluded dir may hold re-included (!) files
        parent = rel
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            tree.entries.setdefault(parent, Entry(DIR, 0o755, 0, 0, 0, 0, ""))
    tree._children = None
