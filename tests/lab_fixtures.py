"""A real ``jupyter lab`` on loopback and Debian's chromium driven by Playwright.

Used by test_sidebar_browser.py and bench/bench_sidebar.py. The lab runs as a subprocess
with its own root, config, runtime and settings directories (nothing of the user's is read
or written) and the pyjail extension pointed at a test daemon; it is stopped by PID.
Chromium is the system browser (``/usr/bin/chromium``): Playwright's own browser
downloads are never used.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon_fixtures import wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("PYJAIL_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    process: subprocess.Popen
    port: int
    token: str
    base: Path

    @property
    def root_dir(self) -> Path:
        return self.base / "root"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab?token={self.token}"

    def log_text(self) -> str:
        try:
            return (self.base / "lab.log").read_text(errors="replace")
        except OSError:
            return ""


def _use_this_checkout(env: dict[str, str], base: Path) -> None:
    """The lab runs this checkout's server extension and built labextension, whatever copy
    an (editable) install elsewhere put into site-packages and share/jupyter: the path of
    JUPYTER_PATH comes first, and the first ``pyjail-jupyter`` found wins."""
    paths = [str(ROOT / "jupyter_ext"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    built = ROOT / "jupyter_ext" / "pyjail_jupyter" / "labextension"
    if (built / "package.json").exists():
        exts = base / "jupyter" / "labextensions"
        exts.mkdir(parents=True)
        (exts / "pyjail-jupyter").symlink_to(built)
        env["JUPYTER_PATH"] = os.pathsep.join(
            [str(base / "jupyter"), *filter(None, [env.get("JUPYTER_PATH")])])


def start_lab(daemon_host: str, timeout: float = 60, extra_args: list[str] | None = None) -> Lab:
    """``jupyter lab`` with the sidebar's server extension talking to ``daemon_host``
    (``extra_args``: more command-line options, e.g. ``--PyjailJupyterConfig.read_only=True``)."""
    base = Path(tempfile.mkdtemp(prefix="pyjail-test-lab-", dir="/var/tmp"))
    for sub in ("root", "config", "runtime", "settings", "workspaces", "data"):
        (base / sub).mkdir()
    # no "get Jupyter news?" prompt over the screenshots
    notes = base / "settings" / "@jupyterlab" / "apputils-extension"
    notes.mkdir(parents=True)
    (notes / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), PYJAIL_HOST=daemon_host)
    _use_this_checkout(env, base)
    env.pop("JUPYTER_DATA_DIR", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
           "--allow-root",
           f"--ServerApp.root_dir={base / 'root'}",
           f"--LabApp.user_settings_dir={base / 'settings'}",
           f"--LabApp.workspaces_dir={base / 'workspaces'}",
           f"--PyjailJupyterConfig.host={daemon_host}",
           "--ServerApp.jpserver_extensions={'pyjail_jupyter.server': True}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate", *(extra_args or [])]
    with open(base / "lab.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=base / "root",
                                start_new_session=True)
    lab = Lab(proc, port, token, base)

    def answers() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                    timeout=2) as resp:
            return resp.status == 200

    wait_until_answering("jupyter lab", proc, answers, lab.log_text, lambda: stop_lab(lab),
                         timeout)
    return lab


def stop_lab(lab: Lab) -> None:
    """SIGTERM by PID (its kernels are its children: their session goes with it)."""
    proc = lab.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    shutil.rmtree(lab.base, ignore_errors=True)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless system chromium under Playwright (which gives every launch a fresh
    throw-away profile: ``--user-data-dir`` is its own to set)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_sidebar(page: Any, lab: Lab, timeout: float = 60) -> None:
    """Load the lab and show the pyjail panel (its tab in the left sidebar)."""
    page.goto(lab.url, timeout=timeout * 1000)
    tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="pyjail-sidebar"]')
    tab.wait_for(timeout=timeout * 1000)
    if not page.locator("#pyjail-sidebar").is_visible():
        tab.click()
    page.locator("#pyjail-sidebar .pj-live[data-state='live']").wait_for(timeout=timeout * 1000)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / "sidebar"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path
