"""The ``pyjail`` command: the ``%container`` grammar for the shell, plus host tools.

Container and image commands go to a daemon through ``pyjail.client`` (tables printed
as text). ``daemon start|stop|status`` manage a local ``pyjaild``; ``image bootstrap`` and
``demo`` can also work on a data root directly, in process. Every heavy import happens
inside the command that needs it, so ``pyjail --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_DATA_ROOT = "/var/lib/pyjail"


def main(argv: list[str] | None = None) -> int:
    from .client.errors import ClientError
    from .client.grammar import GrammarError, GrammarExit, build_parser
    parser = build_parser("pyjail", cli=True)
    try:
        args = parser.parse_args(argv)
        return _dispatch(args)
    except GrammarExit as exc:
        return exc.status
    except GrammarError as exc:
        print(f"{exc}\nSee 'pyjail --help'.", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"pyjail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "daemon":
        return _daemon(args)
    if args.command == "storage":
        return _storage(args)
    if args.command == "demo":
        if args.notebook:
            from .client.notebook_demo import run_demo
            return run_demo(args)
        return _demo(args)
    if args.command == "image" and args.image_command == "bootstrap" and _bootstrap_locally(args):
        return _bootstrap(args.data_root or DEFAULT_DATA_ROOT, args.tag)
    from .client.commands import Session, execute
    from .client.connection import Client
    from .client.ui import Frontend
    client = Client(args.host)
    try:
        result = execute(Session(client, Frontend()), args)
        return _render(result, args)
    finally:
        client.close()


def _render(result: Any, args: argparse.Namespace) -> int:
    from .client.commands import BackupResult
    from .client.runner import RunResult
    from .client.tables import Table
    if isinstance(result, BackupResult):
        print(result.path)
    elif isinstance(result, Table):
        if getattr(args, "live", False):
            return 0  # every sample was printed as it came
        print(result.to_text(no_trunc=getattr(args, "no_trunc", False)))
    elif isinstance(result, RunResult):
        if result.exit_code is None:
            print(result.container_id)
            return 0
        return result.exit_code
    elif isinstance(result, list):
        for item in result:
            print(item)
    elif result is not None:
        print(result)
    return 0


# -- host tools ----------------------------------------------------------------------------
def _daemon(args: argparse.Namespace) -> int:
    from .client import daemonctl
    if args.daemon_command == "start":
        status = daemonctl.start(args.host, args.data_root, args.pidfile, args.log_file,
                                 args.timeout, args.runtime, args.config)
        print(status)
        return 0
    if args.daemon_command == "stop":
        pid = daemonctl.stop(args.pidfile, args.timeout)
        print(f"pyjaild (pid {pid}) stopped; its containers keep running")
        return 0
    status = daemonctl.status(args.host)
    print(status)
    return 0 if status.running else 1


def _storage(args: argparse.Namespace) -> int:
    """``storage migrate``: in this process, on the data root itself (no daemon runs)."""
    from .errors import PyjailError
    from .storage.migrate import migrate, set_config_data_root
    source = args.source or args.data_root or DEFAULT_DATA_ROOT
    try:
        result = migrate(source, args.target, copy=args.copy,
                         say=lambda m: print(m, file=sys.stderr))
        if args.config:
            set_config_data_root(args.config, result["To"])
            print(f"{args.config}: data-root is now {result['To']}", file=sys.stderr)
    except PyjailError as exc:
        print(f"pyjail: {exc.message}", file=sys.stderr)
        return 1
    print(result["To"])
    return 0


def _bootstrap_locally(args: argparse.Namespace) -> bool:
    """``--data-root`` given, or no daemon answers: write into the data root directly."""
    if args.data_root:
        return True
    from .client.hosts import ping, resolve_host
    return not ping(resolve_host(args.host), timeout=1).ok


def _bootstrap(data_root: str, tag: str) -> int:
    """Only the image store, no supervisor: a running daemon sees the image at once."""
    from pathlib import Path

    from .errors import PyjailError
    from .images import ImageStore, busybox_image
    try:
        image = busybox_image(ImageStore(Path(data_root) / "images"), tag)
    except PyjailError as exc:
        print(f"pyjail: {exc}", file=sys.stderr)
        return 1
    print(image.id)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .errors import PyjailError
    from .images import busybox_image
    try:
        engine = Engine(args.data_root or DEFAULT_DATA_ROOT)
        image = busybox_image(engine.images, args.image)
        print(f"image {args.image}: {image.id}")
        script = ("echo \"hello from $(hostname), PID $$ in its own namespaces\"; "
                  "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; uname -a")
        result = engine.run(args.image, ["sh", "-c", script], timeout=60)
    except PyjailError as exc:
        print(f"pyjail: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(result["stdout"].decode())
    sys.stderr.write(result["stderr"].decode())
    print(f"container {result['Id'][:12]} exited with status {result['StatusCode']}")
    engine.close()
    return result["StatusCode"]


if __name__ == "__main__":
    sys.exit(main())
