"""``pyjail demo --notebook``: the main job as a person would see it.

Start the daemon (unless one answers), make the offline base image through it, execute
``notebooks/<name>.ipynb`` headless with a real kernel, and write the executed notebook
and an HTML copy. The HTML prefers each widget's static rendering (PNG plot, HTML log)
over the widget view, which would need JavaScript from the network to show anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import daemonctl
from .connection import Client
from .errors import ClientError
from .hosts import ping
from .pyjail_api import bootstrap_image

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
STATIC_FIRST = ["image/png", "image/svg+xml", "text/html", "text/markdown", "text/latex",
                "application/vnd.jupyter.widget-view+json", "application/javascript",
                "image/jpeg", "text/plain"]


def find_notebook(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path
    candidate = NOTEBOOKS / f"{name}.ipynb"
    if not candidate.exists():
        raise ClientError(f"no notebook {name!r} (looked for {candidate})")
    return candidate


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """The kernel inherits our environment: PYJAIL_HOST tells the magics where to go."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(path: Path, host: str, output_dir: Path, timeout: float = 600.0
                     ) -> tuple[Path, Path, Any]:
    """Run every cell with nbclient; write NAME.ipynb (with outputs) and NAME.html."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3",
                            store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    output_dir.mkdir(parents=True, exist_ok=True)
    out_nb = output_dir / path.name
    out_html = output_dir / (path.stem + ".html")
    try:
        with environment(PYJAIL_HOST=host):
            client.execute()
    finally:
        nbformat.write(nb, out_nb)
    exporter = HTMLExporter()
    exporter.config.NbConvertBase.display_data_priority = STATIC_FIRST
    exporter = HTMLExporter(config=exporter.config)
    body, _ = exporter.from_notebook_node(nb)
    out_html.write_text(body)
    return out_nb, out_html, nb


def run_demo(args: argparse.Namespace) -> int:
    root = args.data_root or daemonctl.DEFAULT_DATA_ROOT
    host = daemonctl.daemon_host(args.host)
    pidfile = (str(Path(root) / "pyjaild.pid") if args.data_root
               else daemonctl.DEFAULT_PIDFILE)
    notebook = find_notebook(args.notebook)
    started_here = not ping(host, timeout=1).ok
    status = daemonctl.start(host, root, pidfile)
    print(status)
    try:
        client = Client(host)
        image_id = bootstrap_image(client, args.image)
        client.close()
        print(f"image {args.image}: {image_id}")
        began = time.monotonic()
        try:
            out_nb, out_html, nb = execute_notebook(notebook, host, Path(args.output_dir),
                                                    args.timeout)
        except Exception as exc:  # noqa: BLE001 - nbclient's CellExecutionError is long
            first = str(exc).strip().splitlines()
            raise ClientError(f"notebook {notebook.name} failed: "
                              f"{first[-1] if first else type(exc).__name__}") from None
        cells = sum(1 for c in nb.cells if c.cell_type == "code")
        print(f"executed {notebook.name}: {cells} code cells in "
              f"{time.monotonic() - began:.1f}s")
        print(f"wrote {out_nb} and {out_html}")
    finally:
        if started_here and not args.keep_daemon:
            pid = daemonctl.stop(pidfile)
            print(f"stopped pyjaild (pid {pid}); its containers keep running", file=sys.stderr)
    return 0
