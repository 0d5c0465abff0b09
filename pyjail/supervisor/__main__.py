"""``python -m pyjail.supervisor --run-dir DIR``: start the supervisor, detached.

The first process forks the real supervisor into its own session and exits at once,
so whoever started it (a daemon, a notebook) never has it as a child to reap.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _runtimes() -> dict:
    from ..runtime.builtin import BuiltinRuntime
    from ..runtime.oci import OciCliRuntime
    return {"builtin": BuiltinRuntime,
            "runc": lambda: OciCliRuntime("runc"),
            "crun": lambda: OciCliRuntime("crun")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyjail-supervisor")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--foreground", action="store_true")
    args = parser.parse_args(argv)
    if not args.foreground:
        if os.fork() != 0:
            os._exit(0)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if args.log_file:
        out = os.open(args.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
    elif not args.foreground:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    os.close(devnull)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s supervisor %(levelname)s %(message)s")
    from .server import Supervisor
    sup = Supervisor(args.run_dir, _runtimes())
    sup.listen()
    sup.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
