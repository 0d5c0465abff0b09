"""The JupyterLab sidebar in a real browser: ``jupyter lab`` on loopback, Debian's chromium
driven by Playwright, a real ``pyjaild`` with real containers.

Screenshots go to test-artifacts/sidebar/ (printed with -s). Latencies are printed, not
asserted tightly (bench/bench_sidebar.py measures medians); the waits have timeouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("playwright")
pytest.importorskip("jupyterlab")
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
if not shutil.which("jupyter-labextension"):
    pytest.skip("jupyterlab is not installed", allow_module_level=True)

from daemon_fixtures import Daemon, running_daemon  # noqa: E402
from lab_fixtures import Lab, chromium, open_sidebar, screenshot, start_lab, stop_lab  # noqa: E402

from pyjail.client.connection import Client  # noqa: E402

# exits on SIGTERM (after the current sleep), so a Stop does not wait out docker's 10 s
LOOP = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
NAME = "pj-browser-web"
OTHER = "pj-browser-db"


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """Shadows pytest-jupyter's autouse fixture (loaded by test_jupyter_server_ext.py in a
    whole-suite run): it would close the loop Playwright's sync API keeps running here."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """Shadows pytest-jupyter's in-process server cleanup: the lab here is a subprocess."""
    yield None


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    yield from running_daemon()


@pytest.fixture(scope="module")
def client(daemon: Daemon) -> Iterator[Client]:
    c = Client(daemon.host, timeout=30)
    yield c
    c.close()


@pytest.fixture(scope="module")
def lab(daemon: Daemon) -> Iterator[Lab]:
    lab = start_lab(daemon.host)
    yield lab
    stop_lab(lab)


@pytest.fixture(scope="module")
def containers(client: Client) -> Iterator[dict[str, str]]:
    """Two running containers of one compose project, started by the test (not the panel)."""
    made = {}
    for name in (NAME, OTHER):
        made[name] = client.api.create_container(
            "busybox", ["sh", "-c", LOOP], name=name,
            labels={"com.docker.compose.project": "shop", "pyjail-test": "browser"},
            host_config=client.api.create_host_config(network_mode="none"))["Id"]
        client.api.start(made[name])
    yield made
    for cid in made.values():
        with contextlib.suppress(Exception):
            client.api.remove_container(cid, force=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@contextlib.contextmanager
def lab_page(browser: Any, lab: Lab) -> Iterator[Any]:
    """A fresh browser context on ``lab`` with the panel open; fails if the page reloaded
    or threw a pyjail error meanwhile."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=f"http://127.0.0.1:{lab.port}")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_sidebar(page, lab)
    page.evaluate("window.__noReload = 42")
    yield page
    assert page.evaluate("window.__noReload") == 42, "the page reloaded"
    assert not [e for e in errors if "pyjail" in e.lower()], errors
    context.close()


@pytest.fixture(scope="module")
def page(browser: Any, lab: Lab, containers: dict[str, str]) -> Iterator[Any]:
    with lab_page(browser, lab) as p:
        yield p


def row(page: Any, name: str) -> Any:
    return page.locator(f'#pyjail-sidebar .pj-container[data-name="{name}"]')


def show_panel(page: Any) -> None:
    """Bring the pyjail panel up (clicking the tab of the open panel would fold it)."""
    if not page.locator("#pyjail-sidebar").is_visible():
        page.locator('.jp-SideBar.jp-mod-left li[data-id="pyjail-sidebar"]').click()


def wait_state(page: Any, name: str, state: str, timeout: float = 5) -> float:
    """Seconds until the row of ``name`` shows ``state`` (DOM mutation, no reload)."""
    t0 = time.monotonic()
    page.locator(f'#pyjail-sidebar .pj-container[data-name="{name}"][data-state="{state}"]'
                 ).wait_for(timeout=timeout * 1000)
    return time.monotonic() - t0


def test_sidebar_lists_the_containers_the_test_started(page: Any) -> None:
    for name in (NAME, OTHER):
        expect_running = row(page, name)
        expect_running.wait_for(timeout=10000)
        assert expect_running.get_attribute("data-state") == "running"
        assert "busybox" in expect_running.locator(".pj-image").inner_text()
        assert expect_running.locator(".pj-uptime").inner_text().startswith("Up")
    group = page.locator('#pyjail-sidebar .pj-group[data-group="shop"]')
    assert "2/2 running" in group.inner_text()
    assert "busybox:latest" in page.locator("#pyjail-sidebar [data-section=images]").inner_text()
    assert not page.locator("#pyjail-sidebar .pj-read-only").is_visible()
    screenshot(page, "01-sidebar-running")


def test_a_state_change_made_elsewhere_shows_without_reload(page: Any, client: Client,
                                                            containers: dict[str, str]) -> None:
    client.api.pause(containers[OTHER])
    paused = wait_state(page, OTHER, "paused")
    client.api.unpause(containers[OTHER])
    resumed = wait_state(page, OTHER, "running")
    print(f"daemon-side pause -> panel: {paused * 1000:.0f} ms; "
          f"unpause -> panel: {resumed * 1000:.0f} ms")


def test_stop_from_the_panel_asks_first_then_the_state_changes(page: Any, client: Client,
                                                               containers: dict[str, str]) -> None:
    row(page, NAME).locator('button[data-action="Stop"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=5000)
    assert NAME in dialog.inner_text()
    screenshot(page, "02-stop-confirmation")
    dialog.locator(".jp-mod-accept").click()
    t0 = time.monotonic()
    page.locator(f'#pyjail-sidebar .pj-container[data-name="{NAME}"][data-state="exited"]'
                 ).wait_for(timeout=15000)
    seen = time.monotonic() - t0
    assert client.api.inspect_container(containers[NAME])["State"]["Status"] == "exited"
    print(f"panel Stop (confirm -> exited shown): {seen * 1000:.0f} ms")
    assert row(page, NAME).locator('button[data-action="Start"]').count() == 1
    screenshot(page, "03-after-stop")


def test_logs_view_follows_searches_and_copies(page: Any, client: Client,
                                               containers: dict[str, str]) -> None:
    row(page, OTHER).locator('button[data-action="Logs"]').click()
    logs = page.locator(".pj-logs").last
    logs.wait_for(timeout=10000)
    text = logs.locator(".pj-logs-text")
    page.wait_for_function(
        "el => (el.textContent.match(/tick/g) || []).length >= 3", arg=text.element_handle(),
        timeout=10000)
    first = text.inner_text().count("tick")
    page.wait_for_function(
        f"el => (el.textContent.match(/tick/g) || []).length > {first}",
        arg=text.element_handle(), timeout=10000)   # it follows: new lines keep coming
    logs.locator(".pj-logs-search").fill("tick 2")
    assert logs.locator(".pj-hit").count() >= 1
    logs.locator(".pj-logs-only").check()
    visible = page.evaluate(   # what is rendered, not just what is flagged hidden
        "() => [...document.querySelectorAll('.pj-logs .pj-log-line')]"
        ".filter(l => l.getClientRects().length > 0).map(l => l.textContent)")
    assert visible and all("tick 2" in line for line in visible)
    logs.locator(".pj-logs-copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "tick 1\n" in copied
    screenshot(page, "04-logs")


def test_details_show_sparklines_run_line_and_inspect(page: Any) -> None:
    other = row(page, OTHER)
    other.locator(".pj-row-main").click()
    detail = other.locator(".pj-row-detail")
    detail.wait_for(timeout=5000)
    page.wait_for_function(
        "() => { const s = document.querySelector("
        f"'.pj-container[data-name=\"{OTHER}\"] .pj-spark[data-label=cpu]');"
        " return s && Number(s.dataset.samples) >= 3; }", timeout=15000)
    assert "MiB" in other.locator('.pj-spark-value[data-metric="mem"]').inner_text()
    box = other.locator(".pj-spark[data-label=cpu]").bounding_box()
    assert box and box["width"] >= 100 and box["height"] >= 20, box
    points = other.locator(".pj-spark[data-label=cpu] polyline").get_attribute("points")
    assert len(points.split()) >= 3
    copy = other.locator('button[data-action="Copy run line"]')
    copy.click()
    page.wait_for_function(
        "el => !!el.dataset.copied", arg=copy.element_handle(), timeout=5000)
    line = copy.get_attribute("data-copied")
    assert line.startswith(f"%container run -d --name {OTHER} ")
    assert "-l com.docker.compose.project=shop" in line and "busybox" in line
    assert shlex.split(line)[-4:] == ["busybox", "sh", "-c", LOOP]   # quoted right
    screenshot(page, "05-details-sparklines")
    other.locator('button[data-action="Inspect"]').first.click()
    tree = page.locator(".pj-inspect").last
    tree.wait_for(timeout=5000)
    tree.locator('summary:has-text("State")').first.click()   # collapsed below the top
    assert "Running: true" in tree.inner_text()
    screenshot(page, "06-inspect")


def test_build_from_the_file_browser_context_menu(page: Any, lab: Lab, client: Client) -> None:
    folder = lab.root_dir / "webapp"
    folder.mkdir()
    (folder / "greeting.txt").write_text("built from the browser\n")
    (folder / "Dockerfile").write_text("FROM busybox\nCOPY greeting.txt /\nRUN cat /greeting.txt\n")
    page.locator('.jp-SideBar.jp-mod-left li[data-id="filebrowser"]').click()
    page.locator('.jp-DirListing-item[title*="webapp"]').first.dblclick(timeout=10000)
    item = page.locator('.jp-DirListing-item[title*="Dockerfile"]').first
    item.click(timeout=10000)
    item.click(button="right")
    entry = page.locator('.lm-Menu-item:has-text("Build Image with pyjail")')
    entry.wait_for(timeout=5000)
    screenshot(page, "07-build-context-menu")
    entry.click()
    status = accept_and_follow(page, "pj-browser-built:1")
    assert status.get_attribute("data-state") == "done", page.locator(".pj-progress").last.inner_text()
    assert "built from the browser" in page.locator(".pj-progress").last.inner_text()
    screenshot(page, "08-build")
    try:
        show_panel(page)
        page.locator('#pyjail-sidebar .pj-image-row[data-ref="pj-browser-built:1"]'
                     ).wait_for(timeout=5000)   # the image event refreshed the list
    finally:
        with contextlib.suppress(Exception):
            client.api.remove_image("pj-browser-built:1", force=True)


def test_insert_a_cell_into_the_open_notebook_and_run_it(page: Any, lab: Lab) -> None:
    nb = {"cells": [], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (lab.root_dir / "containers.ipynb").write_text(json.dumps(nb))
    page.locator('.jp-SideBar.jp-mod-left li[data-id="filebrowser"]').click()
    page.locator(".jp-BreadCrumbs-home").click()
    page.locator('.jp-DirListing-item[title*="containers.ipynb"]').first.dblclick(timeout=10000)
    page.locator(".jp-NotebookPanel .jp-Notebook").last.wait_for(timeout=20000)
    # the kernel is up (status bar "… | Idle") and the panel is revealed (no spinner)
    page.wait_for_function("() => document.querySelector('.jp-StatusBar-Widget') && "
                           "document.body.innerText.includes('| Idle')", timeout=90000)
    page.locator(".jp-NotebookPanel .jp-Spinner").wait_for(state="detached", timeout=30000)
    show_panel(page)
    if not row(page, OTHER).locator(".pj-row-detail").count():
        row(page, OTHER).locator(".pj-row-main").click()
    row(page, OTHER).locator(".pj-snippets").select_option("Show its logs")
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell").last.element_handle()
    page.wait_for_function("el => el.textContent.includes('%container logs')", arg=cell,
                           timeout=5000)
    assert f"%container logs {OTHER}" in cell.query_selector(".jp-InputArea").inner_text()
    cell.query_selector(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")   # the kernel reaches the same daemon ($PYJAIL_HOST)
    page.wait_for_function("el => el.querySelector('.jp-OutputArea') && "
                           "el.querySelector('.jp-OutputArea').textContent.includes('tick 3')",
                           arg=cell, timeout=60000)
    screenshot(page, "09-inserted-cell")


def test_backup_from_the_panel_then_verify_and_delete(page: Any) -> None:
    show_panel(page)
    other = row(page, OTHER)
    if not other.locator(".pj-row-detail").count():
        other.locator(".pj-row-main").click()
    other.locator('button[data-action="Back up"]').click()
    status = accept_and_follow(page, "pj-browser-backup")
    assert status.get_attribute("data-state") == "done"
    backup = page.locator('#pyjail-sidebar .pj-backup-row:has-text("pj-browser-backup")')
    backup.wait_for(timeout=5000)
    backup.locator('button[data-action="Verify"]').click()
    page.locator('.Toastify__toast:has-text("is valid")').wait_for(timeout=15000)
    screenshot(page, "10-backup-verified")
    backup.locator('button[data-action="Remove"]').click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    backup.wait_for(state="detached", timeout=10000)


def test_grouping_choice_goes_through_the_settings_registry(page: Any, lab: Lab) -> None:
    import urllib.request
    show_panel(page)
    page.locator("#pyjail-sidebar .pj-group-select").select_option("none")
    page.locator('#pyjail-sidebar .pj-group[data-group="shop"]').wait_for(
        state="detached", timeout=5000)
    url = (f"http://127.0.0.1:{lab.port}/lab/api/settings/pyjail-jupyter:plugin"
           f"?token={lab.token}")
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(url, timeout=10) as resp:
            saved = json.loads(resp.read())
        if saved.get("settings", {}).get("groupBy") == "none" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert saved["settings"]["groupBy"] == "none", saved
    page.locator("#pyjail-sidebar .pj-group-select").select_option("compose")
    page.locator('#pyjail-sidebar .pj-group[data-group="shop"]').wait_for(timeout=5000)


def test_health_badge_follows_the_health_check(page: Any, client: Client) -> None:
    cid = client.api.create_container(
        "busybox", ["sh", "-c", LOOP], name="pj-browser-health",
        healthcheck={"test": ["CMD-SHELL", "true"], "interval": 500_000_000,
                     "retries": 1},
        host_config=client.api.create_host_config(network_mode="none"))["Id"]
    try:
        client.api.start(cid)
        show_panel(page)
        badge = row(page, "pj-browser-health").locator(".pj-health")
        badge.wait_for(timeout=20000)   # "starting" first, then the check's verdict
        page.locator('#pyjail-sidebar .pj-container[data-name="pj-browser-health"] '
                     '.pj-health-healthy').wait_for(timeout=20000)
        assert badge.inner_text() == "healthy"
    finally:
        client.api.remove_container(cid, force=True)
    row(page, "pj-browser-health").wait_for(state="detached", timeout=5000)


def toast(page: Any, text: str) -> Any:
    return page.locator(f'.Toastify__toast:has-text("{text}")')


def answer_dialog(page: Any, title: str, value: str | None = None) -> None:
    """Fill the input of the open dialog titled ``title`` (if given a value) and accept."""
    dialog = page.locator(f'.jp-Dialog:has(.jp-Dialog-header:has-text("{title}"))')
    dialog.wait_for(timeout=5000)
    if value is not None:
        dialog.locator("input").fill(value)
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=5000)


def accept_and_follow(page: Any, value: str) -> Any:
    """Fill and accept the open dialog, then wait (up to a minute) for the streamed progress
    it starts to end; returns that progress' status element."""
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(value)
    dialog.locator(".jp-mod-accept").click()
    status = page.locator(".pj-progress-status").last
    page.wait_for_function("el => el.dataset.state !== 'running'", arg=status.element_handle(),
                           timeout=60000)
    return status


def assert_not_clipped(page: Any, locator: Any) -> None:
    """No text in ``locator`` ends in an ellipsis or runs out of its box."""
    clipped = page.evaluate(
        "el => [...el.querySelectorAll('*')].filter(e => e.childElementCount === 0 && "
        "e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)", locator.element_handle())
    assert not clipped, clipped


def settled(page: Any, toast_: Any) -> None:
    """Wait until a notification has slid fully into the window (for the screenshot)."""
    page.wait_for_function(
        "el => { const r = el.getBoundingClientRect(); return r.left >= 0 && "
        "r.right <= innerWidth && r.bottom <= innerHeight; }",
        arg=toast_.element_handle(), timeout=5000)


def import_image(daemon: Daemon, ref: str) -> None:
    """A busybox rootfs imported under ``ref``: a new image id each time (its own Created)."""
    from urllib.parse import quote

    from daemon_fixtures import busybox_rootfs_tar
    repo, tag = ref.rsplit(":", 1)
    resp = daemon.request(
        "POST", f"/images/create?fromSrc=-&repo={quote(repo)}&tag={quote(tag)}",
        raw=busybox_rootfs_tar(), headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200, resp.body


def image_row(page: Any, tag: str) -> Any:
    return page.locator(f'#pyjail-sidebar .pj-image-row:has(.pj-name:text-matches("(^|, ){tag}(,|$)"))')


def test_image_remove_in_use_shows_the_conflict_then_tag_remove_and_prune(
        page: Any, daemon: Daemon, client: Client) -> None:
    import_image(daemon, "pj-browser-img:v1")
    user = client.api.create_container("pj-browser-img:v1", ["true"], name="pj-browser-img-user",
                                       host_config=client.api.create_host_config(network_mode="none"))
    try:
        show_panel(page)
        img = image_row(page, "pj-browser-img:v1")
        img.wait_for(timeout=10000)
        # in use by a container: the daemon's 409 shows as a readable notification
        img.locator('button[data-action="Remove"]').click()
        answer_dialog(page, "Remove pj-browser-img:v1?")
        error = toast(page, "remove pj-browser-img:v1:")   # earlier tests' toasts may linger
        error.wait_for(timeout=10000)
        # the reason survives JupyterLab's 140-character cut; Details has the whole message
        said = error.inner_text()
        assert f"container {user['Id'][:12]} is using its referenced image" in said, said
        assert "…" not in said, said
        settled(page, error)
        screenshot(page, "11-image-remove-in-use")
        error.locator('button:has-text("Details")').click()
        details = page.locator(".jp-Dialog")
        details.wait_for(timeout=5000)
        assert 'unable to remove repository reference "pj-browser-img:v1" (must force)' in \
            details.inner_text()
        error.wait_for(state="detached", timeout=5000)   # the action closed the toast
        screenshot(page, "11b-image-remove-in-use-details")
        details.locator(".jp-Dialog-footer button").first.click()
        details.wait_for(state="detached", timeout=5000)
        assert client.api.inspect_image("pj-browser-img:v1")

        img.locator('button[data-action="Tag"]').click()
        answer_dialog(page, "Tag pj-browser-img:v1", "pj-browser-img:v2")
        both = image_row(page, "pj-browser-img:v2")
        both.wait_for(timeout=10000)
        assert "pj-browser-img:v1" in both.locator(".pj-name").inner_text()
        assert_not_clipped(page, both.locator(".pj-row-main"))
        assert (client.api.inspect_image("pj-browser-img:v2")["Id"]
                == client.api.inspect_image("pj-browser-img:v1")["Id"])
        screenshot(page, "12-image-tagged")
    finally:
        client.api.remove_container(user["Id"], force=True)
    # no user now: the first Remove takes one name, the second the image
    for _ in range(2):
        row_ = image_row(page, "pj-browser-img:v[12]")
        ref = row_.get_attribute("data-ref")
        row_.locator('button[data-action="Remove"]').click()
        answer_dialog(page, f"Remove {ref}?")
        page.locator(f'#pyjail-sidebar .pj-image-row[data-ref="{ref}"]').wait_for(
            state="detached", timeout=10000)
    assert not [i for i in client.api.images() if any(
        t.startswith("pj-browser-img:") for t in i.get("RepoTags") or [])]

    # importing a name again leaves the old image dangling: Prune removes it
    import_image(daemon, "pj-browser-dangling:x")
    import_image(daemon, "pj-browser-dangling:x")
    dangling = [i["Id"] for i in client.api.images(filters={"dangling": True})]
    assert dangling, client.api.images()
    gone = page.locator(f'#pyjail-sidebar .pj-image-row[data-id="{dangling[0]}"]')
    gone.wait_for(timeout=10000)
    page.locator('#pyjail-sidebar [data-section=images] button[data-action="Prune"]').click()
    answer_dialog(page, "Prune images?")
    pruned = toast(page, "Pruned")
    pruned.wait_for(timeout=10000)
    gone.wait_for(state="detached", timeout=10000)
    settled(page, pruned)
    assert not client.api.images(filters={"dangling": True})
    screenshot(page, "13-images-pruned")
    client.api.remove_image("pj-browser-dangling:x")


def test_volume_create_schedule_and_remove(page: Any, client: Client) -> None:
    show_panel(page)
    page.locator('#pyjail-sidebar [data-section=volumes] button[data-action="New"]').click()
    answer_dialog(page, "New volume", "pj-browser-vol")
    vol = page.locator('#pyjail-sidebar .pj-volume-row[data-name="pj-browser-vol"]')
    vol.wait_for(timeout=10000)
    assert client.api.inspect_volume("pj-browser-vol")["Name"] == "pj-browser-vol"

    vol.locator('button[data-action="Schedule"]').click()
    answer_dialog(page, "Back up pj-browser-vol on a schedule", "7200")
    answer_dialog(page, "Keep how many backups?", "3")
    sched = page.locator('#pyjail-sidebar .pj-schedule-row:has-text("volume pj-browser-vol")')
    sched.wait_for(timeout=10000)
    text = sched.inner_text()
    assert "every 7200 s" in text and "keep 3" in text, text
    assert_not_clipped(page, sched.locator(".pj-row-main"))
    assert sched.locator(".pj-when").inner_text() == "every 7200 s"
    made = [s for s in client.pyjail_request("GET", "schedules", feature="s").json()
            if s.get("Volume") == "pj-browser-vol"]
    assert len(made) == 1 and made[0]["Interval"] == 7200 and made[0]["Keep"] == 3, made
    sched.scroll_into_view_if_needed()
    screenshot(page, "14-volume-schedule")
    sched.locator('button[data-action="Remove"]').click()
    answer_dialog(page, "Remove the schedule?")
    sched.wait_for(state="detached", timeout=10000)

    vol.locator('button[data-action="Remove"]').click()
    answer_dialog(page, "Remove volume pj-browser-vol?")
    vol.wait_for(state="detached", timeout=10000)
    assert "pj-browser-vol" not in [v["Name"] for v in client.api.volumes().get("Volumes") or []]


def test_restore_a_backup_from_the_panel_under_a_new_name(page: Any, client: Client,
                                                          containers: dict[str, str]) -> None:
    from pyjail.client import pyjail_api
    from pyjail.client.ui import Frontend
    made = pyjail_api.backup(client, containers[OTHER], "pj-browser-restore-src", Frontend(),
                             quiet=True)
    try:
        show_panel(page)
        backup = page.locator('#pyjail-sidebar .pj-backup-row:has-text("pj-browser-restore-src")')
        backup.wait_for(timeout=10000)
        backup.locator('button[data-action="Restore"]').click()
        answer_dialog(page, "Restore", "pj-browser-restored")
        toast(page, "Restored").wait_for(timeout=60000)
        restored = row(page, "pj-browser-restored")
        restored.wait_for(timeout=10000)
        assert "busybox" in restored.locator(".pj-image").inner_text()
        info = client.api.inspect_container("pj-browser-restored")
        assert info["Config"]["Cmd"] == ["sh", "-c", LOOP]
        restored.scroll_into_view_if_needed()
        screenshot(page, "15-restored")
    finally:
        with contextlib.suppress(Exception):
            client.api.remove_container("pj-browser-restored", force=True)
        with contextlib.suppress(Exception):
            client.pyjail_request("DELETE", f"backups/{made['ID']}", feature="backups")
    restored.wait_for(state="detached", timeout=10000)


DESTRUCTIVE = ("Stop", "Restart", "Kill", "Remove", "Prune", "Restore")


def test_read_only_lab_hides_destructive_actions(browser: Any, daemon: Daemon, client: Client,
                                                 containers: dict[str, str]) -> None:
    from pyjail.client import pyjail_api
    from pyjail.client.ui import Frontend
    client.api.create_volume("pj-browser-ro-vol")
    made = pyjail_api.backup(client, containers[OTHER], "pj-browser-ro-backup", Frontend(),
                             quiet=True)
    sched = pyjail_api.add_schedule(client, {"Volume": "pj-browser-ro-vol", "Interval": 3600})
    ro = start_lab(daemon.host, extra_args=["--PyjailJupyterConfig.read_only=True"])
    try:
        with lab_page(browser, ro) as page:
            badge = page.locator("#pyjail-sidebar .pj-read-only")
            assert badge.is_visible() and badge.inner_text() == "read-only"
            assert_not_clipped(page, page.locator("#pyjail-sidebar .pj-header .pj-read-only"))
            for selector in (f'.pj-container[data-name="{OTHER}"]',
                             '.pj-volume-row[data-name="pj-browser-ro-vol"]',
                             '.pj-backup-row:has-text("pj-browser-ro-backup")',
                             '.pj-schedule-row:has-text("pj-browser-ro-vol")',
                             '.pj-image-row[data-ref="busybox:latest"]'):
                page.locator(f"#pyjail-sidebar {selector}").wait_for(timeout=10000)
            visible = page.evaluate(
                "() => [...document.querySelectorAll('#pyjail-sidebar button[data-action]')]"
                ".filter(b => b.getClientRects().length > 0).map(b => b.dataset.action)")
            assert not set(visible) & set(DESTRUCTIVE), visible
            # what stays allowed is still offered
            assert {"Pause", "Logs", "Inspect", "Verify", "Tag", "New"} <= set(visible), visible
            stopped = row(page, NAME)
            if stopped.get_attribute("data-state") != "running":
                assert stopped.locator('button[data-action="Start"]').count() == 1
            screenshot(page, "16-read-only")
            # and the server refuses them anyway
            status = page.evaluate(
                """async () => (await fetch('/pyjail/api/images/prune', {method: 'POST',
                     headers: {'X-XSRFToken': document.cookie.match(/_xsrf=([^;]+)/)[1]}})).status""")
            assert status == 403
            # switching daemons is refused too, and the panel says so (not only the console)
            set_daemon_address(page, "unix:///nonexistent/elsewhere.sock")
            refused = toast(page, "changing the daemon is disabled")
            refused.wait_for(timeout=10000)
            settled(page, refused)
            screenshot(page, "16b-read-only-switch-refused")
            assert daemon.socket_path in page.locator("#pyjail-sidebar .pj-host").inner_text()
    finally:
        stop_lab(ro)
        pyjail_api.remove_schedule(client, sched["Id"])
        client.pyjail_request("DELETE", f"backups/{made['ID']}", feature="backups")
        client.api.remove_volume("pj-browser-ro-vol")


def set_daemon_address(page: Any, value: str) -> None:
    """Type the address into Settings → Settings Editor → pyjail, as a user would."""
    page.keyboard.press("Control+,")
    entry = page.locator('.jp-PluginList-entry:has-text("pyjail")').first
    entry.wait_for(timeout=15000)
    entry.click()
    field = page.locator('.jp-SettingsPanel input[id$="daemonAddress"]').first
    field.wait_for(timeout=10000)
    field.fill(value)
    field.press("Tab")


def test_switching_the_daemon_address_in_the_settings_shows_the_other_daemon(
        page: Any, lab: Lab, daemon: Daemon) -> None:
    other_gen = running_daemon()
    other = next(other_gen)
    try:
        oc = Client(other.host, timeout=30)
        first = oc.api.create_container("busybox", ["sh", "-c", LOOP], name="pj-browser-elsewhere",
                                        host_config=oc.api.create_host_config(network_mode="none"))
        set_daemon_address(page, other.host)
        screenshot(page, "17-settings-daemon-address")
        show_panel(page)
        row(page, "pj-browser-elsewhere").wait_for(timeout=15000)
        row(page, OTHER).wait_for(state="detached", timeout=10000)
        assert other.socket_path in page.locator("#pyjail-sidebar .pj-host").inner_text()
        assert_not_clipped(page, page.locator("#pyjail-sidebar .pj-header"))
        # the event stream follows the switch: a start on the new daemon shows live
        oc.api.start(first["Id"])
        wait_state(page, "pj-browser-elsewhere", "running", timeout=10)
        screenshot(page, "18-other-daemon")
        set_daemon_address(page, "")
        show_panel(page)
        row(page, OTHER).wait_for(timeout=15000)
        row(page, "pj-browser-elsewhere").wait_for(state="detached", timeout=10000)
        assert daemon.socket_path in page.locator("#pyjail-sidebar .pj-host").inner_text()
        oc.api.remove_container(first["Id"], force=True)
        oc.close()
    finally:
        other_gen.close()
