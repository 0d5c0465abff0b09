"""The demo notebooks, executed end to end by a real kernel against a real daemon.

quickstart goes through ``pyjail demo --notebook`` (the README's main job: start the
daemon, make the image, run the notebook headless, write HTML); the others through
nbclient directly, with the daemon address in PYJAIL_HOST.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from test_client import DaemonProcess, require_server

from pyjail.client.connection import Client
from pyjail.client.notebook_demo import NOTEBOOKS, execute_notebook

WIDGET = "application/vnd.jupyter.widget-view+json"


def outputs(nb) -> list[tuple[str, list]]:
    return [(c.source, c.outputs) for c in nb.cells if c.cell_type == "code"]


def output_of(nb, fragment: str) -> list:
    for source, outs in outputs(nb):
        if fragment in source:
            return outs
    raise AssertionError(f"no cell with {fragment!r}")


def text_of(outs: list) -> str:
    parts = []
    for o in outs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/plain", ""))
    return "".join(parts)


def assert_no_errors(nb) -> None:
    for source, outs in outputs(nb):
        errors = [o for o in outs if o.output_type == "error"]
        assert not errors, f"{source!r}: {errors[0].ename}: {errors[0].evalue}"


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess().start()
    yield d
    d.stop()


def test_quickstart_via_pyjail_demo_notebook():
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-demo-", dir="/var/tmp"))
    host = f"unix://{root}/pyjaild.sock"
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("PYJAIL_HOST", "DOCKER_HOST")}
        proc = subprocess.run([sys.executable, "-m", "pyjail", "--data-root", str(root), "-H",
                               host, "demo", "--notebook", "--output-dir", str(root / "out")],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "executed quickstart.ipynb" in proc.stdout
        nb = nbformat.read(root / "out" / "quickstart.ipynb", as_version=4)
        assert_no_errors(nb)
        assert "sha256:" in text_of(output_of(nb, "image bootstrap"))
        run = text_of(output_of(nb, "r = %container run --rm"))
        assert "hello from" in run and "NoNewPrivs:\t1" in run and run.strip().endswith("0")
        ps = output_of(nb, "ps = %container ps")[0]
        assert "text/html" in ps.data and "ticker" in ps.data["text/plain"]
        assert "datetime64[ns, UTC]" in text_of(output_of(nb, "ps.dtypes"))
        tail = next(o for o in output_of(nb, "logs -f ticker") if o.output_type == "display_data")
        assert WIDGET in tail.data and "tick 1" in tail.data["text/plain"]
        plot = next(o for o in output_of(nb, "stats --live") if o.output_type == "display_data")
        assert WIDGET in plot.data
        assert base64.b64decode(plot.data["image/png"]).startswith(b"\x89PNG")
        assert "ticker" in text_of(output_of(nb, "plot.frame"))
        assert "Empty DataFrame" in text_of(output_of(nb, "%container ps -a --filter"))
        assert "widget-state" in str(nb.metadata.get("widgets", {}))
        html = (root / "out" / "quickstart.html").read_text()
        assert "<img" in html and "tick 1" in html
    finally:
        from pyjail.engine import Engine
        Engine(root, restart_policies=False).shutdown_supervisor()
        shutil.rmtree(root, ignore_errors=True)


def test_build_and_run_notebook(daemon, tmp_path):
    client = Client(daemon.host)
    require_server(client, "POST", "/build")
    require_server(client, "GET", "/images/json")
    client.close()
    _, html, nb = execute_notebook(NOTEBOOKS / "build-and-run.ipynb", daemon.host, tmp_path,
                                   timeout=120)
    assert_no_errors(nb)
    progress = [o for o in output_of(nb, "%%containerfile") if o.output_type == "display_data"]
    assert progress and "build hello-pyjail:1: done" in progress[0].data["text/plain"]
    assert "hello from a built image" in text_of(output_of(nb, "r = %container run"))
    assert "script run by notebook" in text_of(output_of(nb, "%%container --rm"))
    assert "hello-pyjail" in text_of(output_of(nb, "images = %container images"))
    assert html.exists()


def test_health_and_restart_notebook(daemon, tmp_path):
    _, _, nb = execute_notebook(NOTEBOOKS / "health-and-restart.ipynb", daemon.host, tmp_path,
                                timeout=120)
    assert_no_errors(nb)
    assert text_of(output_of(nb, "deadline = time.time() + 15\nwhile health")).strip() \
        == "'healthy'"
    assert text_of(output_of(nb, "exec healthy rm")).strip() == "'unhealthy'"
    assert text_of(output_of(nb, "state('crashy')")).strip() == "('exited', 2, 1)"
    assert text_of(output_of(nb, "%container logs crashy")).count("starting") == 3
    assert "restart" in text_of(output_of(nb, "events = %container events"))


def test_backup_and_restore_notebook(daemon, tmp_path):
    client = Client(daemon.host)
    require_server(client, "GET", "/pyjail/v1/backups")
    client.close()
    _, _, nb = execute_notebook(NOTEBOOKS / "backup-and-restore.ipynb", daemon.host, tmp_path,
                                timeout=120)
    assert_no_errors(nb)
    assert "notes-demo" in text_of(output_of(nb, "backups = %container backups"))
    assert "written before the backup" in text_of(output_of(nb, "%container exec notes-restored"))
