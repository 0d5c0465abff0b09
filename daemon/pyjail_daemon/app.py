"""The Tornado application: the Docker Engine API routes, each with or without /v1.NN."""

from __future__ import annotations

import logging

from tornado.web import Application, RequestHandler

from .context import DaemonContext
from .handlers import archive as ar
from .handlers import auth as au
from .handlers import backups as bk
from .handlers import build as b
from .handlers import containers as c
from .handlers import distribution as d
from .handlers import exec as e
from .handlers import image_archives as ia
from .handlers import images as i
from .handlers import networks as n
from .handlers import system as s
from .handlers import volumes as v
from .handlers.base import PREFIX, NotFoundHandler

access_log = logging.getLogger("pyjaild.access")

ID = r"([^/]+)"
IMAGE = r"(.+)"  # image references contain slashes (registry/repo:tag)

ROUTES: list[tuple[str, type[RequestHandler]]] = [
    (r"/_ping", s.PingHandler),
    (r"/version", s.VersionHandler),
    (r"/info", s.InfoHandler),
    (r"/system/df", s.SystemDfHandler),
    (r"/events", s.EventsHandler),
    (r"/auth", au.AuthHandler),
    # containers
    (r"/containers/json", c.ContainerListHandler),
    (r"/containers/create", c.ContainerCreateHandler),
    (r"/containers/prune", c.ContainerPruneHandler),
    (rf"/containers/{ID}/json", c.ContainerInspectHandler),
    (rf"/containers/{ID}/start", c.ContainerStartHandler),
    (rf"/containers/{ID}/stop", c.ContainerStopHandler),
    (rf"/containers/{ID}/restart", c.ContainerRestartHandler),
    (rf"/containers/{ID}/kill", c.ContainerKillHandler),
    (rf"/containers/{ID}/pause", c.ContainerPauseHandler),
    (rf"/containers/{ID}/unpause", c.ContainerUnpauseHandler),
    (rf"/containers/{ID}/rename", c.ContainerRenameHandler),
    (rf"/containers/{ID}/resize", c.ContainerResizeHandler),
    (rf"/containers/{ID}/wait", c.ContainerWaitHandler),
    (rf"/containers/{ID}/logs", c.ContainerLogsHandler),
    (rf"/containers/{ID}/attach", c.ContainerAttachHandler),
    (rf"/containers/{ID}/top", c.ContainerTopHandler),
    (rf"/containers/{ID}/changes", c.ContainerChangesHandler),
    (rf"/containers/{ID}/stats", c.ContainerStatsHandler),
    (rf"/containers/{ID}/export", c.ContainerExportHandler),
    (rf"/containers/{ID}/archive", ar.ContainerArchiveHandler),
    (rf"/containers/{ID}/exec", e.ExecCreateHandler),
    (rf"/containers/{ID}", c.ContainerHandler),
    # exec
    (rf"/exec/{ID}/start", e.ExecStartHandler),
    (rf"/exec/{ID}/resize", e.ExecResizeHandler),
    (rf"/exec/{ID}/json", e.ExecInspectHandler),
    # images
    (r"/images/json", i.ImageListHandler),
    (r"/images/create", i.ImageCreateHandler),
    (r"/images/prune", i.ImagePruneHandler),
    (r"/images/get", ia.ImagesGetHandler),
    (r"/images/load", ia.ImageLoadHandler),
    (r"/build", b.BuildHandler),
    (r"/build/prune", s.BuildPruneHandler),
    (r"/commit", ia.CommitHandler),
    (rf"/images/{IMAGE}/json", i.ImageInspectHandler),
    (rf"/images/{IMAGE}/history", i.ImageHistoryHandler),
    (rf"/images/{IMAGE}/tag", i.ImageTagHandler),
    (rf"/images/{IMAGE}/push", d.ImagePushHandler),
    (rf"/images/{IMAGE}/get", ia.ImageGetHandler),
    (rf"/images/{IMAGE}", i.ImageHandler),
    # volumes
    (r"/volumes", v.VolumeListHandler),
    (r"/volumes/create", v.VolumeCreateHandler),
    (r"/volumes/prune", v.VolumePruneHandler),
    (rf"/volumes/{ID}", v.VolumeHandler),
    # networks
    *n.ROUTES,
    # pyjail's own endpoints: backups, restore, schedules, OpenAPI
    *bk.ROUTES,
]


def _log_request(handler: RequestHandler) -> None:
    """Access log at debug level: one line per request is too much for a busy socket."""
    if access_log.isEnabledFor(logging.DEBUG) or handler.get_status() >= 500:
        level = logging.ERROR if handler.get_status() >= 500 else logging.DEBUG
        access_log.log(level, "%d %s %.2fms", handler.get_status(),
                       handler._request_summary(), 1000.0 * handler.request.request_time())


def make_app(ctx: DaemonContext) -> Application:
    args = {"ctx": ctx}
    rules = [(PREFIX + path + "$", handler, args) for path, handler in ROUTES]
    return Application(rules, default_handler_class=NotFoundHandler,
                       default_handler_args=args, log_function=_log_request,
                       compress_response=False, xsrf_cookies=False)
