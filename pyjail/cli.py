"""The ``pyjail`` command. Today: ``demo`` and ``image bootstrap`` on the in-process engine.

Heavy modules are imported inside the subcommands so ``pyjail --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_DATA_ROOT = "/var/lib/pyjail"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyjail", description="pyjail container engine")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT,
                        help="where images, containers and volumes live (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="make the offline base image and run a demo container")
    demo.add_argument("--image", default="busybox:latest")
    image = sub.add_parser("image", help="image tools")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    boot = image_sub.add_parser("bootstrap", help="make busybox:latest from the host's busybox")
    boot.add_argument("--tag", default="busybox:latest")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .errors import PyjailError
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "image" and args.image_command == "bootstrap":
            from .engine import Engine
            from .images import busybox_image
            engine = Engine(args.data_root)
            image = busybox_image(engine.images, args.tag)
            print(image.id)
            engine.close()
            return 0
    except PyjailError as exc:
        print(f"pyjail: {exc}", file=sys.stderr)
        return 1
    return 2


def _demo(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .images import busybox_image
    engine = Engine(args.data_root)
    image = busybox_image(engine.images, args.image)
    print(f"image {args.image}: {image.id}")
    script = ("echo \"hello from $(hostname), PID $$ in its own namespaces\"; "
              "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; uname -a")
    result = engine.run(args.image, ["sh", "-c", script], timeout=60)
    sys.stdout.write(result["stdout"].decode())
    sys.stderr.write(result["stderr"].decode())
    print(f"container {result['Id'][:12]} exited with status {result['StatusCode']}")
    engine.close()
    return result["StatusCode"]


if __name__ == "__main__":
    sys.exit(main())
