"""The one command grammar behind the ``pyjail`` CLI and the ``%container`` magic.

Both front ends parse with the parser built here, so a flag means the same thing in a
shell and in a notebook. The module imports only ``argparse`` (``pyjail --help`` must
start fast). Errors never exit the process: ``GrammarError`` carries argparse's one-line
message, ``GrammarExit`` a finished ``--help``; each front end decides what to do.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any, NoReturn

DEFAULT_IMAGE = "busybox"

# Subcommands only the shell has: they manage this host, not a daemon's objects.
CLI_ONLY = ("daemon", "demo", "storage")


class GrammarError(Exception):
    """A bad command line; ``str()`` is one readable line."""


class GrammarExit(Exception):
    """``--help`` was answered (argparse already printed it)."""

    def __init__(self, status: int = 0) -> None:
        super().__init__(status)
        self.status = status


class GrammarParser(argparse.ArgumentParser):
    """argparse that raises instead of calling ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise GrammarError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise GrammarError(message.strip())
        raise GrammarExit(status)


# -- value types: bad values become argparse errors naming the flag ------------------------
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}


def size_bytes(text: str) -> int:
    """Docker's memory sizes: ``512``, ``64m``, ``1.5g``, ``2GiB`` → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r} (use e.g. 64m, 1g)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def duration_ns(text: str) -> int:
    """Go durations as docker's health flags take them: ``30s``, ``1m30s``, ``500ms``."""
    text = text.strip()
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"invalid duration: {text!r} (use e.g. 30s, 1m30s)")
    return int(total)


_DAYS = re.compile(r"(\d+(?:\.\d*)?)d")


def duration_seconds(text: str) -> float:
    """Schedules and retention: Go durations plus days (``7d``, ``1d12h``) → seconds."""
    days = 0.0
    match = _DAYS.match(text.strip())
    rest = text.strip()
    if match:
        days, rest = float(match.group(1)), rest[match.end():]
    seconds = days * 86400 + (duration_ns(rest) / 1e9 if rest else 0.0)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration: {text!r} (use e.g. 30m, 6h, 7d)")
    return seconds


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def restart_policy(text: str) -> str:
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure") or (
            count and (name != "on-failure" or not count.isdigit())):
        raise argparse.ArgumentTypeError(
            f"invalid restart policy: {text!r} (no, always, unless-stopped, on-failure[:N])")
    return text


# -- the grammar ---------------------------------------------------------------------------
Adder = Callable[..., Any]


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """docker run's flags (the subset pyjail supports), shared by run and ``%%container``."""
    a = p.add_argument
    a("--rm", action="store_true", help="remove the container when it exits")
    a("-d", "--detach", action="store_true", help="run in the background, print its ID")
    a("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
      help="set an environment variable (repeatable)")
    a("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]",
      help="bind mount a host path or a named volume (repeatable)")
    a("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER[/proto]",
      help="publish a container port on the host (repeatable)")
    a("--name", help="name of the container")
    a("-m", "--memory", type=size_bytes, metavar="SIZE", help="memory limit, e.g. 64m")
    a("--cpus", type=positive_float, metavar="N", help="CPU quota in cores, e.g. 0.5")
    a("--health-cmd", metavar="CMD", help="command that checks health (run with sh -c)")
    a("--health-interval", type=duration_ns, metavar="DURATION", help="time between checks")
    a("--health-retries", type=int, metavar="N", help="failures before unhealthy")
    a("--health-timeout", type=duration_ns, metavar="DURATION", help="time one check may take")
    a("--health-start-period", type=duration_ns, metavar="DURATION",
      help="grace period before failures count")
    a("--no-healthcheck", action="store_true", help="disable the image's health check")
    a("--restart", type=restart_policy, metavar="POLICY",
      help="no, always, unless-stopped, on-failure[:N]")
    a("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    a("-u", "--user", metavar="USER[:GROUP]", help="user to run as")
    a("--entrypoint", metavar="CMD", help="override the image's entrypoint")
    a("-l", "--label", action="append", default=[], metavar="KEY=VALUE",
      help="set a label (repeatable)")
    a("--init", action="store_true", help="run an init (tini) as PID 1")
    a("--cap-add", action="append", default=[], metavar="CAP", help="add a capability")
    a("--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability")
    a("--privileged", action="store_true", help="all capabilities, no seccomp, all devices")
    a("--network", "--net", metavar="NET", help="network: none, host or a network name")
    a("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    a("-h", "--hostname", metavar="NAME", help="container host name")
    a("--pull", choices=("missing", "always", "never"), default="missing",
      help="pull the image before running (default %(default)s)")


def _add_help(p: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help", help="show this help")


def _sub(sub: Any, name: str, help_text: str, *, aliases: tuple[str, ...] = (),
         own_help: bool = True) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases),
                       add_help=own_help)
    return p


def build_parser(prog: str = "pyjail", *, cli: bool = True) -> GrammarParser:
    """The parser; ``cli=False`` leaves out what only the shell has (daemon, demo)."""
    parser = GrammarParser(prog=prog, description=(
        "pyjail: run and manage containers through a pyjail (or Docker) daemon"))
    if cli:
        parser.add_argument("-H", "--host", metavar="URL",
                            help="daemon socket, e.g. unix:///run/pyjail/pyjail.sock "
                                 "(default: $PYJAIL_HOST, then $DOCKER_HOST)")
        parser.add_argument("--data-root", metavar="DIR",
                            help="data root for the commands that work on it directly "
                                 "(daemon start, image bootstrap, demo; default "
                                 "/var/lib/pyjail)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=GrammarParser)
    sub.required = True

    # run: -h is --hostname there, as in docker run
    p = _sub(sub, "run", "create and start a container, stream its output", own_help=False)
    _add_help(p)
    _add_run_options(p)
    p.add_argument("image", metavar="IMAGE", help="image to run")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                   help="command and arguments (default: the image's)")

    p = _sub(sub, "ps", "list containers (a DataFrame in a notebook)")
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="filter, e.g. status=running, name=web, label=k=v")
    p.add_argument("-n", "--last", type=int, default=-1, metavar="N",
                   help="the N most recently created")
    p.add_argument("-s", "--size", action="store_true", help="with the writable layer size")
    p.add_argument("--no-trunc", action="store_true", help="full IDs in the text table")

    p = _sub(sub, "images", "list images")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="also intermediate images")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-trunc", action="store_true", help="full IDs in the text table")

    p = _sub(sub, "volumes", "list volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="only names")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE")

    p = _sub(sub, "logs", "a container's output; -f follows it live (a widget in a notebook)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--follow", action="store_true", help="follow new output")
    p.add_argument("-n", "--tail", default="all", metavar="N", help="only the last N lines")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", metavar="TIME", help="since a time (RFC 3339, unix, or 10m)")
    p.add_argument("--until", metavar="TIME", help="until a time (RFC 3339, unix, or 10m)")

    p = _sub(sub, "stats", "CPU, memory, network and block I/O of containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER",
                   help="containers (default: all running)")
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("--live", action="store_true",
                   help="follow over time: a live plot in a notebook, lines in a shell")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS",
                   help="with --live: stop after this long (default: until stopped)")
    p.add_argument("--interval", type=positive_float, default=1.0, metavar="SECONDS",
                   help="with --live: seconds between samples (default %(default)s)")
    p.add_argument("--wait", action="store_true",
                   help="with --live in a notebook: block the cell until the plot ends")

    p = _sub(sub, "inspect", "low-level details, flattened to field/value rows")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--type", choices=("container", "image", "volume"),
                   help="what NAME is (default: try container, image, volume)")

    p = _sub(sub, "top", "processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS-OPTIONS")

    p = _sub(sub, "exec", "run a command in a running container", own_help=False)
    _add_help(p)
    p.add_argument("-d", "--detach", action="store_true", help="run it in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND ...")

    for name, text in (("start", "start stopped containers"),
                       ("stop", "stop running containers (SIGTERM, then SIGKILL)"),
                       ("restart", "restart containers"),
                       ("rm", "remove containers")):
        p = _sub(sub, name, text)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        if name in ("stop", "restart"):
            p.add_argument("-t", "--time", type=int, metavar="SECONDS",
                           help="seconds to wait before killing")
        if name == "stop":
            p.add_argument("-s", "--signal", metavar="SIGNAL", help="signal to send first")
        if name == "rm":
            p.add_argument("-f", "--force", action="store_true", help="kill it if running")
            p.add_argument("-v", "--volumes", action="store_true",
                           help="also its anonymous volumes")

    p = _sub(sub, "pull", "pull an image from a registry (with a progress bar)")
    p.add_argument("image", metavar="IMAGE[:TAG]")
    p.add_argument("--platform", metavar="OS/ARCH")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")

    p = _sub(sub, "push", "push an image to a registry (with a progress bar)")
    p.add_argument("image", metavar="IMAGE[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")

    p = _sub(sub, "build", "build an image from a Dockerfile (with a progress bar)")
    p.add_argument("path", metavar="PATH", help="build context directory")
    _add_build_options(p)

    p = _sub(sub, "history", "the layers of an image")
    p.add_argument("image", metavar="IMAGE")

    p = _sub(sub, "tag", "give an image another name")
    p.add_argument("source", metavar="SOURCE[:TAG]")
    p.add_argument("target", metavar="TARGET[:TAG]")

    p = _sub(sub, "prune", "remove stopped containers, dangling images, unused volumes")
    p.add_argument("what", nargs="?", default="system",
                   choices=("system", "containers", "images", "volumes", "build-cache",
                            "backups"),
                   help="what to prune (default: system = containers, dangling images and "
                        "the build cache)")
    p.add_argument("-a", "--all", action="store_true",
                   help="images: all unused, not only dangling; build-cache: every key")
    p.add_argument("--volumes", action="store_true", help="system: also unused volumes")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--keep", type=int, metavar="N",
                   help="backups: keep the newest N of each container")
    p.add_argument("--max-age", type=duration_seconds, metavar="DURATION",
                   help="backups: drop those older than this, e.g. 7d")
    p.add_argument("--container", metavar="NAME", help="backups: only this container's")

    p = _sub(sub, "df", "disk usage of images, containers and volumes")
    p.add_argument("-v", "--verbose", action="store_true", help="(accepted for docker parity)")

    p = _sub(sub, "events", "daemon events between two times (default: all kept, until now)")
    p.add_argument("--since", default="1", metavar="TIME")
    p.add_argument("--until", metavar="TIME", help="(default: now; with --follow: forever)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--follow", action="store_true", help="keep streaming new events")

    p = _sub(sub, "backup", "back up a container; prints the archive's path "
                            "(pyjail daemons only)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--mode", choices=("live", "pause", "stop"), default="live",
                   help="live copy, freeze it meanwhile, or stop and restart it "
                        "(default %(default)s)")
    p.add_argument("--with-image", action="store_true", help="also store its image")
    p.add_argument("--include-binds", action="store_true",
                   help="also store the contents of its bind mounts")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="also download the archive to FILE (or into a directory)")
    p.add_argument("--name", metavar="NAME", help="name of the backup")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")

    p = _sub(sub, "restore", "make a container from a backup (pyjail daemons only)")
    p.add_argument("backup", metavar="FILE|BACKUP",
                   help="a local archive (uploaded) or a backup name from 'backups'")
    p.add_argument("--name", metavar="NAME", help="name of the restored container")
    p.add_argument("--force", action="store_true",
                   help="replace an existing container or volume of that name")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")

    p = _sub(sub, "backups", "list backups (pyjail daemons only)")

    p = _sub(sub, "verify", "check a backup archive: exit status 0 only if intact "
                            "(pyjail daemons only)")
    p.add_argument("backup", metavar="FILE|BACKUP",
                   help="a local archive (uploaded) or a backup name from 'backups'")

    p = _sub(sub, "schedule", "scheduled backups with retention (pyjail daemons only)")
    ssub = p.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND",
                            parser_class=GrammarParser)
    ssub.required = True
    add = ssub.add_parser("add", help="back up a container (or --volume) on a schedule")
    add.add_argument("container", nargs="?", metavar="CONTAINER")
    add.add_argument("--volume", metavar="NAME", help="back up this volume instead")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=duration_seconds, metavar="DURATION",
                      help="interval, e.g. 30m, 6h, 90s")
    when.add_argument("--cron", metavar="'M H DOM MON DOW'", help="5-field cron expression")
    add.add_argument("--keep", type=int, default=0, metavar="N",
                     help="keep only the newest N archives of this schedule")
    add.add_argument("--max-age", type=duration_seconds, default=0, metavar="DURATION",
                     help="drop archives of this schedule older than this, e.g. 7d, 48h")
    add.add_argument("--mode", choices=("live", "pause", "stop"), default="live")
    add.add_argument("--with-image", action="store_true")
    ssub.add_parser("ls", help="list schedules", aliases=["list"])
    rm = ssub.add_parser("rm", help="remove schedules", aliases=["remove"])
    rm.add_argument("ids", nargs="+", metavar="ID")

    p = _sub(sub, "image", "image tools")
    image_sub = p.add_subparsers(dest="image_command", metavar="SUBCOMMAND",
                                 parser_class=GrammarParser)
    image_sub.required = True
    boot = image_sub.add_parser("bootstrap", help="make an image from the host's static busybox "
                                                  "(offline)")
    boot.add_argument("--tag", default="busybox:latest", help="name (default %(default)s)")

    if cli:
        _add_cli_only(sub)
    return parser


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]")
    p.add_argument("-f", "--file", metavar="DOCKERFILE", help="Dockerfile path in the context")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--target", metavar="STAGE")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true", help="always pull newer base images")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the ID")


def build_containerfile_parser(prog: str = "%%containerfile") -> GrammarParser:
    """``%%containerfile TAG [CONTEXT] [build options]``: the cell is the Dockerfile."""
    p = GrammarParser(prog=prog, description="build an image from the cell (a Dockerfile)")
    p.add_argument("image_tag", metavar="TAG", help="name of the image")
    p.add_argument("path", nargs="?", metavar="CONTEXT", help="build context directory "
                                                               "(default: none)")
    _add_build_options(p)
    return p


def build_script_parser(prog: str = "%%container",
                        default_image: str = DEFAULT_IMAGE) -> GrammarParser:
    """``%%container [run options] [IMAGE] [SHELL]``: the cell is a script for SHELL."""
    p = GrammarParser(prog=prog, add_help=False,
                      description="run the cell as a script in a new container")
    _add_help(p)
    _add_run_options(p)
    p.add_argument("image", nargs="?", default=default_image, metavar="IMAGE",
                   help="image (default %(default)s)")
    p.add_argument("shell", nargs="?", default="sh", metavar="SHELL",
                   help="interpreter for the cell (default %(default)s)")
    return p


def _add_cli_only(sub: Any) -> None:
    p = sub.add_parser("daemon", help="start, stop or ask about the local pyjail daemon")
    dsub = p.add_subparsers(dest="daemon_command", metavar="SUBCOMMAND",
                            parser_class=GrammarParser)
    dsub.required = True
    start = dsub.add_parser("start", help="start pyjaild in the background and wait for it")
    start.add_argument("--pidfile", help="PID file (default /run/pyjail/pyjaild.pid)")
    start.add_argument("--log-file", help="daemon log (default: pyjaild.log in the data root)")
    start.add_argument("--timeout", type=positive_float, default=30.0,
                       help="seconds to wait for /_ping (default %(default)s)")
    start.add_argument("--runtime", help="default OCI runtime: builtin, runc, crun")
    start.add_argument("--config", metavar="FILE",
                       help="pyjaild's daemon.json (data-root and other options; the command "
                            "line wins)")
    stop = dsub.add_parser("stop", help="stop the daemon by its PID file")
    stop.add_argument("--pidfile", help="PID file (default /run/pyjail/pyjaild.pid)")
    stop.add_argument("--timeout", type=positive_float, default=15.0)
    dsub.add_parser("status", help="ping the daemon")

    p = sub.add_parser("storage", help="where the data root lives")
    stsub = p.add_subparsers(dest="storage_command", metavar="SUBCOMMAND",
                             parser_class=GrammarParser)
    stsub.required = True
    mig = stsub.add_parser("migrate", help="move the data root (the daemon must be stopped, "
                                           "no container running)")
    mig.add_argument("--from", dest="source", metavar="DIR",
                     help="current data root (default: --data-root, else /var/lib/pyjail)")
    mig.add_argument("--to", dest="target", required=True, metavar="DIR",
                     help="new data root (absent or empty)")
    mig.add_argument("--config", metavar="FILE",
                     help="daemon.json whose data-root to point at DIR afterwards")
    mig.add_argument("--copy", action="store_true",
                     help="copy, verify, then delete even on one filesystem (no rename)")

    p = sub.add_parser("demo", help="make the offline base image and run a demo container "
                                    "(--notebook: the quickstart notebook, headless)")
    p.add_argument("--image", default="busybox:latest")
    p.add_argument("--notebook", nargs="?", const="quickstart", metavar="NAME",
                   help="start the daemon, make the image, execute notebooks/NAME.ipynb "
                        "headless and write NAME.html (default: quickstart)")
    p.add_argument("--output-dir", default="demo-output",
                   help="with --notebook: where the executed notebook and HTML go "
                        "(default %(default)s)")
    p.add_argument("--keep-daemon", action="store_true",
                   help="with --notebook: leave the daemon it started running")
    p.add_argument("--timeout", type=positive_float, default=600.0,
                   help="with --notebook: seconds a cell may take (default %(default)s)")


def split_pairs(items: list[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` items → dict; a bare KEY maps to "" (docker's label semantics)."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise GrammarError(f"invalid {flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def filters(items: list[str]) -> dict[str, list[str]]:
    """``-f key=value`` items → Docker's filters map (values of one key are OR-ed)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GrammarError(f"invalid filter {item!r}: expected KEY=VALUE")
        out.setdefault(key, []).append(value)
    return out
