"""Runs a Dockerfile against the engine, the way Docker's legacy builder does.

Each step makes an image: RUN in a real container whose overlay upper dir becomes the
layer, COPY/ADD as a layer written straight from the context (no container), metadata
instructions as a new config with an ``empty_layer`` history entry. Every step is looked
up in the build cache first; a hit costs one dict lookup and one small config read.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import posixpath
import shlex
import stat
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyjail.errors import ImageNotFound, InvalidArgument, PyjailError
from pyjail.images import changes as ch
from pyjail.images.builder import context as ctx_mod
from pyjail.images.builder.cache import BuildCache, cache_key, temp_file
from pyjail.images.builder.parser import Instruction, Stage, parse, stages
from pyjail.images.store import goarch, now_rfc3339
from pyjail.images.unpacking import write_layer

Progress = Callable[[dict[str, Any]], None]
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_METADATA = {"ENV", "LABEL", "EXPOSE", "VOLUME", "USER", "STOPSIGNAL", "ONBUILD",
             "HEALTHCHECK", "CMD", "ENTRYPOINT", "SHELL", "ARG", "MAINTAINER", "WORKDIR"}
_MOUNTPOINTS = ("etc/hosts", "etc/resolv.conf", "etc/hostname")


class BuildError(PyjailError):
    """A step failed; the message names the Dockerfile line and the instruction."""

    status = 400


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    buildargs: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    nocache: bool = False
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    quiet: bool = False
    network_mode: str = "none"


@dataclass
class _State:
    """One stage while it is being built."""

    image_id: str | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def section(self) -> dict[str, Any]:
        return self.config.setdefault("config", {})

    def shell(self) -> list[str]:
        return list(self.section.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        return ch._env_map(self.section)

    def expand_map(self) -> dict[str, str]:
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env())
        return out


class Builder:
    """One per engine; ``build`` may run on several threads at once."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.store = engine.images
        self.cache = BuildCache(self.store.root / "builder")

    # -- entry point ------------------------------------------------------------------------
    def build(self, context: bytes, opts: BuildOptions, progress: Progress) -> str:
        """Build; returns the final image id. Raises BuildError naming the failed line."""
        out = (lambda _m: None) if opts.quiet else progress
        tree = ctx_mod.context_tree(context)
        name = ctx_mod.clean(opts.dockerfile or "Dockerfile")
        entry = tree.entries.get(name)
        if entry is None and name == "Dockerfile":
            name = "Containerfile"
            entry = tree.entries.get(name)
        if entry is None or entry.read is None:
            raise InvalidArgument(f"Cannot locate specified Dockerfile: {opts.dockerfile}")
        ctx_mod.apply_dockerignore(tree, {name, ".dockerignore"})
        meta, all_stages = stages(parse(entry.read().decode(errors="replace")))
        chosen = self._target(all_stages, opts.target)
        run = _Run(self, tree, opts, out, name)
        try:
            image_id = run.execute(meta, chosen)
        finally:
            self.cache.update(run.new_entries, run.new_parents)
        for t in opts.tags:
            self.store.tag(image_id, t)
            # as dockerd: the tag is the build's visible event (clients refresh image lists)
            self.engine.events.publish("image", "tag", image_id, {"name": t})
        short = image_id[7:19]
        progress({"aux": {"ID": image_id}})
        if opts.quiet:
            progress({"stream": image_id + "\n"})
        else:
            progress({"stream": f"Successfully built {short}\n"})
            for t in opts.tags:
                progress({"stream": f"Successfully tagged {_familiar(t)}\n"})
        return image_id

    @staticmethod
    def _target(all_stages: list[Stage], target: str) -> list[Stage]:
        if not target:
            return all_stages
        for i, s in enumerate(all_stages):
            if s.name == target.lower():
                return all_stages[:i + 1]
        raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


_engine_lock = threading.Lock()


def for_engine(engine: Any) -> Builder:
    """The engine's one Builder (it holds the cache index in memory), made on first use."""
    with _engine_lock:
        b = getattr(engine, "builder", None)
        if not isinstance(b, Builder):
            b = Builder(engine)
            engine.builder = b
        return b


def _check_trigger(cmd: str) -> None:
    """Docker's rules for what an ONBUILD may hold."""
    if not cmd:
        raise InvalidArgument("ONBUILD requires at least one argument")
    if cmd == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if cmd in ("FROM", "MAINTAINER"):
        raise InvalidArgument(f"{cmd} isn't allowed as an ONBUILD trigger")


def _familiar(tag: str) -> str:
    from pyjail.images.reference import parse as parse_ref
    return parse_ref(tag).familiar()


class _Run:
    """The state of one build."""

    def __init__(self, builder: Builder, tree: ctx_mod.Tree, opts: BuildOptions,
                 out: Progress, dockerfile: str) -> None:
        self.b = builder
        self.store = builder.store
        self.engine = builder.engine
        self.tree = tree
        self.opts = opts
        self.out = out
        self.dockerfile = dockerfile
        self.new_entries: dict[str, str] = {}
        self.new_parents: dict[str, str] = {}
        self.stage_images: dict[str, str | None] = {}
        self.step = 0
        self.total = 0
        self._trees: dict[str, ctx_mod.Tree] = {}
        self._key = ""   # the cache key of the step being run (set by _try_cache)

    def say(self, text: str) -> None:
        self.out({"stream": text})

    def execute(self, meta: list[Instruction], chosen: list[Stage]) -> str:
        self.total = sum(1 + len(s.body) for s in chosen)
        global_args: dict[str, str | None] = {}
        for ins in meta:
            name, value = self._arg(ins, global_args, {})
            global_args[name] = value
        state: _State | None = None
        for stage in chosen:
            state = self._from(stage, global_args)
            self._triggers(state, stage.from_instr, global_args)
            for ins in stage.body:
                self.step += 1
                self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
                self._checked(state, ins, ins, global_args)
            self.stage_images[str(stage.index)] = state.image_id
            if stage.name:
                self.stage_images[stage.name] = state.image_id
        assert state is not None
        if self.opts.labels:
            labels = " ".join(f"{shlex.quote(k)}={shlex.quote(v)}"
                              for k, v in sorted(self.opts.labels.items()))
            self._metadata(state, Instruction("LABEL", labels, 0, f"LABEL {labels}"))
        if state.image_id is None:
            state.image_id = self._commit(state, [], "", empty=True, key=None)
        return state.image_id

    def _checked(self, st: _State, ins: Instruction, where: Instruction,
                 global_args: dict[str, str | None]) -> None:
        """Dispatch; an engine error becomes a BuildError naming ``where``'s line."""
        try:
            self._dispatch(st, ins, global_args)
        except BuildError:
            raise
        except PyjailError as exc:
            raise BuildError(f"{self.dockerfile}:{where.line}: {where.original}: "
                             f"{exc.message}") from exc

    def _triggers(self, st: _State, from_instr: Instruction,
                  global_args: dict[str, str | None]) -> None:
        """The base image's ONBUILD triggers, run right after FROM as Docker's legacy builder
        runs them (in this build's context); they are not passed on to the new image."""
        triggers = list(st.section.get("OnBuild") or [])
        if not triggers:
            return
        st.section["OnBuild"] = None
        self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
        for text in triggers:
            parsed = parse(text)
            if len(parsed) != 1:
                raise BuildError(f"{self.dockerfile}:{from_instr.line}: invalid ONBUILD "
                                 f"trigger in the base image: {text!r}")
            ins = parsed[0]
            _check_trigger(ins.cmd)
            self._checked(st, ins, from_instr, global_args)

    # -- FROM -------------------------------------------------------------------------------
    def _from(self, stage: Stage, global_args: dict[str, str | None]) -> _State:
        self.step += 1
        ins = stage.from_instr
        self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
        base = ch._expand(stage.base, {k: v for k, v in global_args.items() if v is not None})
        if base.lower() in self.stage_images:
            image_id = self.stage_images[base.lower()]
        elif base == "scratch":
            cfg = {"architecture": goarch(), "os": "linux", "config": {},
                   "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return _State(None, cfg)
        else:
            image_id = self._base_image(base, ins)
        if image_id is None:
            cfg = {"architecture": goarch(), "os": "linux", "config": {},
                   "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return _State(None, cfg)
        self.say(f" ---> {image_id[7:19]}\n")
        return _State(image_id, self.store.blobs.get_json(image_id))

    def _base_image(self, base: str, ins: Instruction) -> str:
        if not self.opts.pull:
            with contextlib.suppress(ImageNotFound):
                return self.store.resolve(base).id
        try:
            return self.engine.pull_image(base).id
        except PyjailError as exc:
            if self.opts.pull:
                with contextlib.suppress(ImageNotFound):
                    return self.store.resolve(base).id
            raise BuildError(f"{self.dockerfile}:{ins.line}: {ins.original}: pull access "
                             f"denied for {base}, repository does not exist or may require "
                             f"authorization: {exc.message}") from exc

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, st: _State, ins: Instruction, global_args: dict[str, str | None]) -> None:
        if ins.cmd == "RUN":
            self._run(st, ins)
        elif ins.cmd in ("COPY", "ADD"):
            self._copy(st, ins)
        elif ins.cmd == "ARG":
            name, value = self._arg(ins, st.args, global_args)
            st.args[name] = value
            self._metadata(st, ins)
        else:
            self._metadata(st, ins)

    def _arg(self, ins: Instruction, args: dict[str, str | None],
             global_args: dict[str, str | None]) -> tuple[str, str | None]:
        name, sep, default = ins.rest.strip().partition("=")
        name = name.strip()
        if not name or " " in name:
            raise BuildError(f"{self.dockerfile}:{ins.line}: ARG requires exactly one argument")
        if name in self.opts.buildargs:
            return name, self.opts.buildargs[name]
        if sep:
            env = {k: v for k, v in {**global_args, **args}.items() if v is not None}
            return name, ch._expand(default.strip().strip('"'), env)
        return name, global_args.get(name)

    def _try_cache(self, st: _State, ins_text: str, extra: str = "") -> str | None:
        key = cache_key(st.image_id or "scratch", ins_text, st.args, extra)
        self._key = key
        if self.opts.nocache or st.image_id is None and ins_text.startswith("RUN"):
            return None
        hit = self.b.cache.get(key) or self.new_entries.get(key)
        if hit and self.store.has_image(hit):
            self.say(" ---> Using cache\n")
            self.say(f" ---> {hit[7:19]}\n")
            st.image_id = hit
            st.config = self.store.blobs.get_json(hit)
            return hit
        return None

    def _commit(self, st: _State, layers: list[Any], created_by: str, *, empty: bool,
                key: str | None) -> str:
        cfg = copy.deepcopy(st.config)
        created = now_rfc3339()
        cfg["created"] = created
        cfg.pop("container", None)
        cfg.pop("container_config", None)
        if created_by:
            hist: dict[str, Any] = {"created": created, "created_by": created_by}
            if empty:
                hist["empty_layer"] = True
            cfg["history"] = [*(cfg.get("history") or []), hist]
        image = self.store.create_image(layers, cfg, parent=st.image_id)
        if key is not None:
            self.new_entries[key] = image.id
        if st.image_id:
            self.new_parents[image.id] = st.image_id
        st.image_id = image.id
        st.config = self.store.blobs.get_json(image.id)
        self.say(f" ---> {image.id[7:19]}\n")
        return image.id

    # -- metadata ---------------------------------------------------------------------------
    def _metadata(self, st: _State, ins: Instruction) -> None:
        text = f"{ins.cmd} {ins.rest}"
        if self._try_cache(st, text):
            if ins.cmd in ("CMD",):
                st.cmd_set = True
            return
        key = self._key
        sec = st.section
        cmd, rest = ins.cmd, ins.rest
        expand = st.expand_map()
        layer: list[str] = []
        if cmd == "CMD":
            exec_form = ins.json_args()
            sec["Cmd"] = exec_form if exec_form is not None else [*st.shell(), rest]
            st.cmd_set = True
        elif cmd == "ENTRYPOINT":
            exec_form = ins.json_args()
            sec["Entrypoint"] = exec_form if exec_form is not None else [*st.shell(), rest]
            if not st.cmd_set:
                sec["Cmd"] = None
        elif cmd == "SHELL":
            shell = ins.json_args()
            if not shell:
                raise InvalidArgument("SHELL requires the arguments to be in JSON form")
            sec["Shell"] = shell
        elif cmd == "MAINTAINER":
            st.config["author"] = rest
        elif cmd == "ARG":
            pass
        elif cmd == "WORKDIR":
            path = ch._expand(rest, expand)
            wd = posixpath.normpath(posixpath.join("/", sec.get("WorkingDir") or "/", path))
            sec["WorkingDir"] = wd
            if st.image_id is not None and self._image_stat(st, wd.lstrip("/")) is None:
                layer = [self._write_layer(st, [], mkdirs=[wd.lstrip("/")])]
        elif cmd == "ONBUILD":
            _check_trigger(rest.split(None, 1)[0].upper() if rest.strip() else "")
            st.config["config"] = ch.apply_changes(sec, [f"{cmd} {rest}"])
        elif cmd == "HEALTHCHECK":
            st.config["config"] = ch.apply_changes(sec, [f"{cmd} {rest}"])
        else:
            st.config["config"] = ch.apply_changes(sec, [f"{cmd} {ch._expand(rest, expand)}"])
        created_by = f"/bin/sh -c #(nop) {text}" if cmd != "ARG" else f"/bin/sh -c #(nop)  {text}"
        try:
            self._commit(st, layer, created_by, empty=not layer, key=key)
        finally:
            for p in layer:
                os.unlink(p)

    # -- RUN --------------------------------------------------------------------------------
    def _run(self, st: _State, ins: Instruction) -> None:
        exec_form = ins.json_args()
        cmd = exec_form if exec_form is not None else [*st.shell(), ins.rest]
        used_args = {k: v for k, v in st.args.items() if v is not None}
        prefix = (f"|{len(used_args)} " + " ".join(f"{k}={v}" for k, v in sorted(
            used_args.items())) + " ") if used_args else ""
        created_by = prefix + " ".join(cmd)
        if self._try_cache(st, f"RUN {ins.rest}"):
            return
        key = self._key
        if st.image_id is None:
            raise InvalidArgument("a RUN needs a base image with a shell (FROM scratch has none)")
        env = [f"{k}={v}" for k, v in used_args.items() if k not in st.env()]
        env += list(st.section.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            env.append(DEFAULT_PATH)
        body = {"Image": st.image_id, "Cmd": cmd, "Entrypoint": [], "Env": env,
                "User": st.section.get("User") or "",
                "WorkingDir": st.section.get("WorkingDir") or "",
                "Labels": {}, "HostConfig": {"NetworkMode": self.opts.network_mode}}
        containers = self.engine.containers
        c = containers.create(body)
        self.say(f" ---> Running in {c.id[:12]}\n")
        try:
            containers.start(c.id)
            for entry in containers.logs(c.id, follow=True):
                self.say(entry.data.decode(errors="replace"))
            code = containers.wait(c.id)["StatusCode"]
            if code != 0:
                raise BuildError(f"{self.dockerfile}:{ins.line}: {ins.original}: The command "
                                 f"'{' '.join(cmd)}' returned a non-zero code: {code}")
            self._drop_mountpoints(st, c.dir / "diff")
            with self.store.blobs.writer() as blob:   # written once, hashed once
                write_layer(self.store, c.dir / "diff", blob)
                if self.opts.rm or self.opts.forcerm:
                    containers.remove(c.id, force=True)
                    self.say(f"Removing intermediate container {c.id[:12]}\n")
                self._commit(st, [blob], created_by, empty=False, key=key)
        finally:
            if self.opts.rm or self.opts.forcerm:
                with contextlib.suppress(PyjailError):
                    containers.remove(c.id, force=True)

    def _drop_mountpoints(self, st: _State, upper: Any) -> None:
        """The runtime's empty mount targets for /etc/hosts & co. are no part of the layer."""
        for rel in _MOUNTPOINTS:
            p = upper / rel
            try:
                if p.stat().st_size == 0 and self._image_stat(st, rel) is None:
                    p.unlink()
            except FileNotFoundError:
                pass
        if self._image_stat(st, "etc") is not None:
            with contextlib.suppress(OSError):
                (upper / "etc").rmdir()

    def _tmp(self) -> str:
        return temp_file(self.b.cache.dir, "layer")

    # -- the image's own files --------------------------------------------------------------
    def _layer_dirs(self, st: _State) -> list[Any]:
        if st.image_id is None:
            return []
        return self.store.layer_dirs(self.store.resolve(st.image_id))

    def _image_stat(self, st: _State, rel: str) -> os.stat_result | None:
        """lstat of a path in the image (top layer first; whiteouts end the search)."""
        if not rel:
            return None
        for d in self._layer_dirs(st):
            try:
                s = os.lstat(os.path.join(d, rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISCHR(s.st_mode) and s.st_rdev == 0:
                return None
            return s
        return None

    def _ids(self, st: _State, spec: str) -> tuple[int, int]:
        """``--chown=user:group`` to numbers, names looked up in the image's passwd/group."""
        user, _, group = spec.partition(":")

        def lookup(name: str, db: str, field_no: int) -> int:
            if name.isdigit():
                return int(name)
            for d in self._layer_dirs(st):
                p = os.path.join(d, "etc", db)
                if os.path.isfile(p):
                    with open(p, errors="replace") as f:
                        for line in f:
                            parts = line.strip().split(":")
                            if parts and parts[0] == name and len(parts) > field_no:
                                return int(parts[field_no])
                    break
            raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: "
                                  f"no such {'user' if db == 'passwd' else 'group'}: {name}")
        uid = lookup(user, "passwd", 2)
        if group:
            gid = lookup(group, "group", 2)
        elif user.isdigit():
            gid = uid
        else:
            gid = lookup(user, "passwd", 3)
        return uid, gid

    # -- COPY / ADD -------------------------------------------------------------------------
    def _source_tree(self, st: _State, source: str) -> tuple[ctx_mod.Tree, str]:
        """The tree to copy from and a cache identity for it ('' = hash the files)."""
        if not source:
            return self.tree, ""
        image_id = self.stage_images.get(source.lower())
        if image_id is None and source.lower() not in self.stage_images:
            image_id = self.store.resolve(source).id
        if image_id is None:
            return ctx_mod.Tree({}), "scratch"
        tree = self._trees.get(image_id)
        if tree is None:
            tree = ctx_mod.image_tree(self.store.layer_dirs(self.store.resolve(image_id)))
            self._trees[image_id] = tree
        return tree, image_id

    def _copy(self, st: _State, ins: Instruction) -> None:
        args = ins.json_args()
        expand = st.expand_map()
        words = args if args is not None else shlex.split(ins.rest, posix=False)
        words = [ch._expand(w, expand) for w in words]
        if len(words) < 2:
            raise InvalidArgument(f"{ins.cmd} requires at least two arguments")
        srcs, dest = words[:-1], words[-1]
        source = ins.flags.get("from", "")
        tree, identity = self._source_tree(st, source)
        wd = st.section.get("WorkingDir") or "/"
        dest_abs = posixpath.join("/", wd, dest)
        dest_rel = ctx_mod.clean(dest_abs)
        matched: list[str] = []
        for src in srcs:
            if ins.cmd == "ADD" and src.startswith(("http://", "https://")):
                raise InvalidArgument("ADD from a URL is not supported by pyjail's builder")
            if any(c in src for c in "*?["):
                found = [tree.resolve(p, follow_last=False) for p in tree.glob(src)]
                if not found:
                    raise InvalidArgument(f"{ins.cmd} failed: no source files were specified")
                matched.extend(found)
            else:
                rel = tree.resolve(src)
                if rel not in tree.entries:
                    where = "build context or excluded by .dockerignore" if not source else source
                    raise InvalidArgument(f"{ins.cmd} failed: file not found in {where}: "
                                          f"stat {src}: file does not exist")
                matched.append(rel)
        dest_is_dir = dest.endswith("/") or len(matched) > 1 or dest in (".", "./")
        if not dest_is_dir:
            s = self._image_stat(st, dest_rel)
            dest_is_dir = s is not None and stat.S_ISDIR(s.st_mode)
        items: list[tuple[str, ctx_mod.Entry]] = []
        archives: list[tuple[str, bytes]] = []
        for rel in matched:
            e = tree.entries[rel]
            if e.kind == ctx_mod.DIR:
                for sub in tree.walk(rel):
                    if sub == rel:
                        continue
                    tail = sub[len(rel) + 1:] if rel else sub
                    items.append((posixpath.join(dest_rel, tail), tree.entries[sub]))
                continue
            base = posixpath.basename(rel)
            target = posixpath.join(dest_rel, base) if dest_is_dir else dest_rel
            if ins.cmd == "ADD" and not source and e.kind == ctx_mod.FILE and e.read:
                data = e.read()
                if _is_archive(data):
                    archives.append((dest_rel, data))
                    continue
            items.append((target, e))
        chown = ins.flags.get("chown", "")
        chmod = ins.flags.get("chmod", "")
        parts = [identity or "context", chown, chmod]
        if not identity:
            for rel in matched:
                for sub in tree.walk(rel):
                    e = tree.entries[sub]
                    parts.append(f"{sub}:{e.kind}:{e.mode:o}:{e.link}:{tree.digest(sub)}")
        content = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        text = f"{ins.cmd} {' '.join(f'--{k}={v}' for k, v in sorted(ins.flags.items()))} " \
               f"{ins.rest}"
        if self._try_cache(st, text, content):
            return
        key = self._key
        ids = self._ids(st, chown) if chown else None
        mode = int(chmod, 8) if chmod else None
        mkdirs = [dest_rel] if dest_is_dir and dest_rel else []
        path = self._write_layer(st, items, mkdirs=mkdirs, ids=ids, mode=mode,
                                 archives=archives)
        kind = "dir" if len(matched) == 1 and tree.entries[matched[0]].kind == "d" else "file"
        created_by = f"/bin/sh -c #(nop) {ins.cmd} {kind}:{content} in {dest_abs} "
        try:
            self._commit(st, [path], created_by, empty=False, key=key)
        finally:
            os.unlink(path)

    def _write_layer(self, st: _State, items: list[tuple[str, ctx_mod.Entry]], *,
                     mkdirs: list[str], ids: tuple[int, int] | None = None,
                     mode: int | None = None,
                     archives: list[tuple[str, bytes]] | None = None) -> str:
        """A layer tar of copied files, with their parent directories as the image has them."""
        path = self._tmp()
        done: set[str] = set()
        with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w",
                                                 format=tarfile.PAX_FORMAT) as tf:
            def parents(rel: str, include_self: bool) -> None:
                chain = []
                p = rel if include_self else (rel.rsplit("/", 1)[0] if "/" in rel else "")
                while p and p not in done:
                    chain.append(p)
                    p = p.rsplit("/", 1)[0] if "/" in p else ""
                for d in reversed(chain):
                    done.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    s = self._image_stat(st, d)
                    if s is not None and stat.S_ISDIR(s.st_mode):
                        info.mode, info.uid, info.gid = stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid
                        info.mtime = int(s.st_mtime)
                    else:
                        info.mode = 0o755
                        if ids and d in mkdirs:
                            info.uid, info.gid = ids
                    tf.addfile(info)

            for d in mkdirs:
                parents(d, True)
            for target, e in items:
                if not target:
                    continue
                parents(target, False)
                info = tarfile.TarInfo(target)
                info.mode = mode if mode is not None else e.mode
                info.uid, info.gid = ids or (0, 0)
                info.mtime = e.mtime
                if e.kind == ctx_mod.DIR:
                    info.type = tarfile.DIRTYPE
                    done.add(target)
                    tf.addfile(info)
                elif e.kind == ctx_mod.LINK:
                    info.type = tarfile.SYMTYPE
                    info.linkname = e.link
                    info.mode = 0o777
                    tf.addfile(info)
                else:
                    data = e.read() if e.read else b""
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
            for dest, data in archives or []:
                parents(dest, True)
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as src:
                    for m in src:
                        name = ctx_mod.clean(posixpath.join(dest, m.name))
                        if not name or m.isdev():
                            continue
                        parents(name, False)
                        m.name = name
                        if m.islnk():
                            m.linkname = ctx_mod.clean(posixpath.join(dest, m.linkname))
                        if ids:
                            m.uid, m.gid = ids
                        m.uname = m.gname = ""
                        tf.addfile(m, src.extractfile(m) if m.isreg() else None)
        return path


def _is_archive(data: bytes) -> bool:
    """ADD unpacks local tar archives (plain, gzip, bzip2, xz), recognised by content."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, EOFError, OSError):
        return False
