"""One function per subcommand, shared by the CLI and the magic.

Each takes the ``Session`` (a daemon client and a front end) and the parsed arguments,
and returns a value the front end renders: a ``Table`` (DataFrame or text), a list of
names, a ``RunResult``, an ID string, a live object (widget), or None.
"""

from __future__ import annotations

import argparse
import io
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import errors, pyjail_api, runner, views
from .connection import Client
from .grammar import GrammarError, duration_ns, filters, split_pairs
from .progress import StreamTracker
from .tables import Column, Table, human_duration
from .ui import Frontend


@dataclass
class Session:
    client: Client
    frontend: Frontend


Handler = Callable[[Session, argparse.Namespace], Any]


def parse_time(text: str | None) -> float | None:
    """``--since``/``--until``: unix seconds, RFC 3339, or a duration back from now (``10m``)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return time.time() - duration_ns(text) / 1e9
    except argparse.ArgumentTypeError:
        pass
    from .tables import to_utc
    when = to_utc(text)
    if when is None:
        raise GrammarError(f"invalid time {text!r}: use unix seconds, RFC 3339 or e.g. 10m")
    return when.timestamp()


def _api_time(value: float | None) -> Any:
    return None if value is None else (int(value) if value == int(value) else value)


# -- containers ----------------------------------------------------------------------------
def cmd_run(s: Session, a: argparse.Namespace) -> Any:
    return runner.run(s.client, a, a.cmd, s.frontend)


def cmd_ps(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        entries = s.client.api.containers(all=a.all, filters=filters(a.filter) or None,
                                          limit=a.last, size=a.size)
    if a.quiet:
        return [e["Id"] if a.no_trunc else e["Id"][:12] for e in entries]
    return views.ps_rows(entries)


def cmd_logs(s: Session, a: argparse.Namespace) -> Any:
    since = _api_time(parse_time(a.since))
    if a.follow:
        return s.frontend.follow_logs(s.client, a.container, tail=a.tail,
                                      timestamps=a.timestamps,
                                      since=None if since is None else str(since))
    until = _api_time(parse_time(a.until))
    with s.client.translated():
        tail: Any = "all" if a.tail == "all" else int(a.tail)
        data = s.client.api.logs(a.container, stdout=True, stderr=True,
                                 timestamps=a.timestamps, tail=tail, since=since, until=until)
    s.frontend.write(data.decode(errors="replace"))
    return None


def cmd_stats(s: Session, a: argparse.Namespace) -> Any:
    client = s.client
    targets = list(a.containers)
    if not targets:
        with client.translated():
            targets = [c["Id"] for c in client.api.containers(all=a.all)]
    if a.live:
        return s.frontend.live_stats(client, targets, interval=a.interval,
                                     duration=a.duration, wait=a.wait)

    def one(ref: str) -> dict[str, Any]:
        with client.translated():
            return client.api.stats(ref, stream=False)

    if not targets:
        return views.stats_rows([])
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        samples = list(pool.map(one, targets))
    return views.stats_rows(samples)


def cmd_inspect(s: Session, a: argparse.Namespace) -> Any:
    api = s.client.api
    kinds = {"container": api.inspect_container, "image": api.inspect_image,
             "volume": api.inspect_volume}
    order = [a.type] if a.type else ["container", "image", "volume"]
    found = []
    for name in a.names:
        for kind in order:
            try:
                with s.client.translated():
                    found.append((name, kinds[kind](name)))
                break
            except errors.NotFound:
                continue
        else:
            raise errors.NotFound(f"No such object: {name}")
    return views.inspect_rows(found)


def cmd_top(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        answer = s.client.api.top(a.container, ps_args=" ".join(a.ps_args) or None)
    return views.top_rows(answer)


def cmd_exec(s: Session, a: argparse.Namespace) -> Any:
    return runner.exec_(s.client, a, s.frontend)


def _each(s: Session, names: list[str], action: Callable[[str], None]) -> list[str]:
    """Docker's habit: do every one, report every failure at the end."""
    done, failed = [], []
    for name in names:
        try:
            with s.client.translated():
                action(name)
            done.append(name)
        except errors.ClientError as exc:
            failed.append(str(exc))
    if failed:
        raise errors.ClientError("; ".join(failed))
    return done


def cmd_start(s: Session, a: argparse.Namespace) -> Any:
    return _each(s, a.containers, s.client.api.start)


def cmd_stop(s: Session, a: argparse.Namespace) -> Any:
    api = s.client.api

    def stop(name: str) -> None:
        params: dict[str, Any] = {}
        if a.time is not None:
            params["t"] = a.time
        if a.signal:
            params["signal"] = a.signal
        timeout = (a.time if a.time is not None else 10) + s.client.timeout
        resp = api._post(api._url("/containers/{0}/stop", name), params=params,
                         timeout=timeout)
        api._raise_for_status(resp)

    return _each(s, a.containers, stop)


def cmd_restart(s: Session, a: argparse.Namespace) -> Any:
    api = s.client.api
    return _each(s, a.containers, lambda n: api.restart(n, timeout=a.time if a.time is not None
                                                        else 10))


def cmd_rm(s: Session, a: argparse.Namespace) -> Any:
    api = s.client.api
    return _each(s, a.containers, lambda n: api.remove_container(n, v=a.volumes, force=a.force))


# -- images --------------------------------------------------------------------------------
def cmd_images(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        entries = s.client.api.images(name=a.repository, all=a.all,
                                      filters=filters(a.filter) or None)
    if a.quiet:
        ids = [e["Id"] if a.no_trunc else e["Id"].removeprefix("sha256:")[:12] for e in entries]
        return list(dict.fromkeys(ids))
    return views.images_rows(entries)


def cmd_pull(s: Session, a: argparse.Namespace) -> Any:
    ref = runner.pull_image(s.client, a.image, s.frontend, quiet=a.quiet, platform=a.platform)
    with s.client.translated():
        return s.client.api.inspect_image(ref or a.image)["Id"]


def cmd_push(s: Session, a: argparse.Namespace) -> Any:
    repo, tag = runner.split_tag(a.image)
    tracker = StreamTracker(s.frontend.progress(f"push {a.image}", a.quiet))
    with s.client.translated():
        tracker.run(s.client.api.push(repo, tag=tag, stream=True, decode=True), "pushed")
    return tracker.result_id


def build(s: Session, a: argparse.Namespace, dockerfile_text: str | None = None) -> str:
    """``build PATH`` and ``%%containerfile``: the context, progress, every tag."""
    api = s.client.api
    tags = list(a.tag)
    kwargs: dict[str, Any] = dict(
        tag=tags[0] if tags else None, nocache=a.no_cache, pull=a.pull, rm=True,
        forcerm=True, buildargs=split_pairs(a.build_arg, "--build-arg") or None,
        labels=split_pairs(a.label, "--label") or None, target=a.target, decode=True)
    with s.client.translated():
        if dockerfile_text is None:
            stream = api.build(path=a.path, dockerfile=a.file, **kwargs)
        elif a.path:
            from docker.utils import build as build_utils
            name = f".pyjail-cell-{uuid.uuid4().hex[:8]}.Dockerfile"
            context = build_utils.tar(a.path, dockerfile=(name, dockerfile_text))
            stream = api.build(fileobj=context, custom_context=True, dockerfile=name,
                               **kwargs)
        else:
            stream = api.build(fileobj=io.BytesIO(dockerfile_text.encode()), **kwargs)
        title = f"build {tags[0]}" if tags else "build"
        image_id = StreamTracker(s.frontend.progress(title, a.quiet)).run(stream, "built")
        if not image_id:
            raise errors.ClientError("build finished without an image ID")
        for extra in tags[1:]:
            repo, tag = runner.split_tag(extra)
            api.tag(image_id, repo, tag)
    return image_id


def cmd_build(s: Session, a: argparse.Namespace) -> Any:
    return build(s, a)


def cmd_history(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        return views.history_rows(s.client.api.history(a.image))


def cmd_tag(s: Session, a: argparse.Namespace) -> Any:
    repo, tag = runner.split_tag(a.target)
    with s.client.translated():
        s.client.api.tag(a.source, repo, tag)
    return None


def cmd_image(s: Session, a: argparse.Namespace) -> Any:
    if a.image_command == "bootstrap":
        return pyjail_api.bootstrap_image(s.client, a.tag)
    raise GrammarError(f"image: unknown subcommand {a.image_command!r}")


# -- system --------------------------------------------------------------------------------
PRUNE = (Column("type"), Column("deleted", "int"), Column("space_reclaimed", "int"),
         Column("ids", "obj"))


def cmd_prune(s: Session, a: argparse.Namespace) -> Any:
    api = s.client.api
    given = filters(a.filter) or None
    if a.what == "backups":
        if a.keep is None and a.max_age is None:
            raise GrammarError("prune backups: give --keep N and/or --max-age DURATION")
        answer = pyjail_api.prune_backups(s.client, a.keep, a.max_age, a.container or "")
        ids = answer.get("BackupsDeleted") or []
        return Table(PRUNE, [{"type": "backups", "deleted": len(ids),
                              "space_reclaimed": answer.get("SpaceReclaimed") or 0,
                              "ids": ids}])
    what = {"system": ["containers", "images", "build-cache"]
            + (["volumes"] if a.volumes else []),
            "containers": ["containers"], "images": ["images"],
            "volumes": ["volumes"], "build-cache": ["build-cache"]}[a.what]
    rows = []
    for kind in what:
        if a.what == "system" and kind != "containers" and not _serves(s, kind):
            continue
        with s.client.translated():
            if kind == "build-cache":
                resp = api._post(api._url("/build/prune"), params={"all": a.all or None})
                answer = api._result(resp, json=True)
                ids = answer.get("CachesDeleted") or []
            elif kind == "containers":
                answer = api.prune_containers(filters=given)
                ids = answer.get("ContainersDeleted") or []
            elif kind == "images":
                image_filters = dict(given or {})
                if a.all:
                    image_filters["dangling"] = ["false"]
                answer = api.prune_images(filters=image_filters or None)
                ids = [next(iter(d.values())) for d in answer.get("ImagesDeleted") or []]
            else:
                answer = api.prune_volumes(filters=given)
                ids = answer.get("VolumesDeleted") or []
        rows.append({"type": kind, "deleted": len(ids),
                     "space_reclaimed": answer.get("SpaceReclaimed") or 0, "ids": ids})
    return Table(PRUNE, rows)


def _serves(s: Session, kind: str) -> bool:
    """System prune skips what the daemon does not implement (pyjail without images yet)."""
    api = s.client.api
    if kind == "build-cache":
        return True   # Docker and pyjail both serve /build/prune
    path = {"images": "/images/json", "volumes": "/volumes"}[kind]
    with s.client.translated():
        return api._get(api._url(path)).status_code != 404


def cmd_volumes(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        entries = (s.client.api.volumes(filters=filters(a.filter) or None) or {}).get(
            "Volumes") or []
    if a.quiet:
        return [v["Name"] for v in entries]
    return views.volumes_rows(entries)


def cmd_df(s: Session, a: argparse.Namespace) -> Any:
    with s.client.translated():
        return views.df_rows(s.client.api.df())


def cmd_events(s: Session, a: argparse.Namespace) -> Any:
    since = parse_time(a.since)
    until = parse_time(a.until)
    if until is None and not a.follow:
        until = time.time()
    api = s.client.api
    with s.client.translated():
        stream = api.events(since=_api_time(since), until=_api_time(until),
                            filters=filters(a.filter) or None, decode=True)
        if not a.follow:
            return views.events_rows(list(stream))
        try:
            for event in stream:
                row = views.event_row(event)
                when = row["time"].isoformat() if isinstance(row["time"], datetime) else ""
                s.frontend.write(f"{when} {row['type']} {row['action']} {row['id'][:12]}"
                                 f"{' (' + row['name'] + ')' if row['name'] else ''}\n")
        except KeyboardInterrupt:
            pass
        finally:
            stream.close()
    return None


# -- pyjail only ---------------------------------------------------------------------------
class BackupResult(str):
    """The backup's catalogue ID (what ``restore`` takes; a notebook keeps it in a
    variable), carrying the archive's ``path``: the shell prints the path."""

    path: str

    def __new__(cls, backup_id: str, path: str) -> BackupResult:
        obj = super().__new__(cls, backup_id)
        obj.path = path
        return obj


def cmd_backup(s: Session, a: argparse.Namespace) -> Any:
    """With ``-o`` the archive is also downloaded, and ``path`` is the local copy."""
    result = pyjail_api.backup(s.client, a.container, a.name, s.frontend, a.quiet,
                               mode=a.mode, with_image=a.with_image,
                               include_binds=a.include_binds)
    backup_id = str(result.get("ID") or "")
    if a.output:
        pyjail_api.download(s.client, backup_id, a.output)
        target = os.path.join(a.output, backup_id) if os.path.isdir(a.output) else a.output
        return BackupResult(backup_id, os.path.abspath(target))
    return BackupResult(backup_id, str(result.get("Path") or backup_id))


def cmd_restore(s: Session, a: argparse.Namespace) -> Any:
    return pyjail_api.restore(s.client, a.backup, a.name, s.frontend, a.quiet, force=a.force)


def cmd_backups(s: Session, a: argparse.Namespace) -> Any:
    return views.backups_rows(pyjail_api.backups(s.client))


def cmd_verify(s: Session, a: argparse.Namespace) -> Any:
    """One line either way; a damaged archive is a ``BadRequest`` (non-zero exit)."""
    answer = pyjail_api.verify(s.client, a.backup)
    what = answer.get("Container") or answer.get("Kind") or "archive"
    return f"{a.backup}: intact ({what}, {answer.get('Members', 0)} members)"


SCHEDULES = (Column("id"), Column("target"), Column("when"), Column("keep", "int"),
             Column("max_age", "float"), Column("mode"), Column("runs", "int"),
             Column("next_run", "time"), Column("last_error"))


def cmd_schedule(s: Session, a: argparse.Namespace) -> Any:
    sub = a.schedule_command
    if sub == "add":
        if bool(a.container) == bool(a.volume):
            raise GrammarError("schedule add: give a CONTAINER or --volume NAME (one of them)")
        body = {"Container": a.container or "", "Volume": a.volume or "",
                "Interval": a.every or 0, "Cron": a.cron or "", "Keep": a.keep,
                "MaxAge": a.max_age, "Mode": a.mode, "WithImage": a.with_image}
        return pyjail_api.add_schedule(s.client, body)["Id"]
    if sub in ("rm", "remove"):
        done = []
        for sched_id in a.ids:
            pyjail_api.remove_schedule(s.client, sched_id)
            done.append(sched_id)
        return done
    rows = [{"id": x["Id"], "target": x.get("Container") or f"volume {x.get('Volume')}",
             "when": x.get("Cron") or f"every {human_duration(x.get('Interval') or 0)}",
             "keep": x.get("Keep") or 0,
             "max_age": float(x.get("MaxAge") or 0), "mode": x.get("Mode", ""),
             "runs": x.get("Runs") or 0,
             "next_run": datetime.fromtimestamp(x["NextRun"], UTC) if x.get("NextRun") else None,
             "last_error": x.get("LastError") or ""}
            for x in pyjail_api.schedules(s.client)]
    return Table(SCHEDULES, rows)


COMMANDS: dict[str, Handler] = {
    "run": cmd_run, "ps": cmd_ps, "images": cmd_images, "volumes": cmd_volumes,
    "logs": cmd_logs, "stats": cmd_stats, "inspect": cmd_inspect, "top": cmd_top,
    "exec": cmd_exec, "start": cmd_start, "stop": cmd_stop, "restart": cmd_restart,
    "rm": cmd_rm, "pull": cmd_pull, "push": cmd_push, "build": cmd_build,
    "history": cmd_history, "tag": cmd_tag, "prune": cmd_prune, "df": cmd_df,
    "events": cmd_events, "backup": cmd_backup, "restore": cmd_restore,
    "backups": cmd_backups, "image": cmd_image, "verify": cmd_verify,
    "schedule": cmd_schedule,
}


def execute(session: Session, args: argparse.Namespace) -> Any:
    """Run the parsed command; ``ClientError`` and ``GrammarError`` are the user's errors."""
    handler = COMMANDS.get(args.command)
    if handler is None:
        raise GrammarError(f"unknown command {args.command!r}")
    return handler(session, args)
