"""``pyjaild``: the command that runs the daemon (``python -m pyjail_daemon.main``)."""

from __future__ import annotations

import asyncio
import logging
import sys

from .config import LOG_LEVELS, ConfigError, load


def main(argv: list[str] | None = None) -> int:
    try:
        config = load(argv)
    except ConfigError as exc:
        print(f"pyjaild: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=LOG_LEVELS[config.log_level], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pyjail.errors import PyjailError

    from .server import DaemonServer
    try:
        asyncio.run(DaemonServer(config).run())
    except ConfigError as exc:
        logging.getLogger("pyjaild").error("%s", exc)
        return 1
    except PyjailError as exc:
        logging.getLogger("pyjaild").error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
