"""The JupyterLab sidebar under load, in a real browser (chromium via Playwright).

Figures:
  * event -> panel latency: a container is paused/unpaused through the daemon API; the
    time from the API call's return to the row's new state in the DOM (MutationObserver
    timestamps, same host clock), median and max over repeats, with N containers listed;
  * render time of the containers list with N containers: a full rebuild of every row and
    an incremental render after one state change (median of repeats, layout included);
  * responsiveness: filtering the N rows by typing (input event -> rows re-rendered).

Usage: python3 bench/bench_sidebar.py [--containers 200] [--repeats 10]
Screenshot of the loaded panel: test-artifacts/sidebar/bench-200.png
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from daemon_fixtures import running_daemon  # noqa: E402
from lab_fixtures import chromium, open_sidebar, screenshot, start_lab, stop_lab  # noqa: E402

from pyjail.client.connection import Client  # noqa: E402

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.5; done"

# wrapped in an object: a returned Promise would make evaluate_handle wait for it
WATCH = """([id, want]) => ({done: new Promise(resolve => {
  const sel = `#pyjail-sidebar .pj-container[data-id="${id}"]`;
  const check = () => {
    const el = document.querySelector(sel);
    return el && el.dataset.state === want;
  };
  if (check()) { resolve(Date.now()); return; }
  const obs = new MutationObserver(() => {
    if (check()) { obs.disconnect(); resolve(Date.now()); }
  });
  obs.observe(document.getElementById('pyjail-sidebar'),
              {subtree: true, childList: true, attributes: true});
})})"""

FULL_RENDER = """(n) => {
  const c = window.pyjailSidebar.containers;
  const times = [];
  for (let i = 0; i < n; i++) {
    c.rows = new Map();
    const t0 = performance.now();
    c.render();
    void document.body.offsetHeight;   // style and layout included
    times.push(performance.now() - t0);
  }
  return times;
}"""

FILTER = """([text]) => {
  const input = document.querySelector('#pyjail-sidebar .pj-filter');
  const t0 = performance.now();
  input.value = text;
  input.dispatchEvent(new Event('input'));
  void document.body.offsetHeight;
  const ms = performance.now() - t0;
  const rows = Number(window.pyjailSidebar.containers.body.dataset.rows);
  input.value = '';
  input.dispatchEvent(new Event('input'));
  return [ms, rows];
}"""


def median_ms(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms  max {max(values):7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--running", type=int, default=10, help="how many of them run")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds through the finally below: nothing is left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    gen = running_daemon()
    daemon = next(gen)
    client = Client(daemon.host, timeout=60)
    lab = None
    try:
        t0 = time.monotonic()
        ids = []
        for i in range(args.containers):
            ids.append(client.api.create_container(
                "busybox", ["sh", "-c", LOOP], name=f"bench-{i:03d}",
                labels={"com.docker.compose.project": f"project-{i % 10}"},
                host_config=client.api.create_host_config(network_mode="none"))["Id"])
        for cid in ids[:args.running]:
            client.api.start(cid)
        print(f"setup: {args.containers} containers ({args.running} running) in "
              f"{time.monotonic() - t0:.1f} s")
        lab = start_lab(daemon.host)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            t0 = time.monotonic()
            open_sidebar(page, lab)
            page.wait_for_function(
                f"() => Number(window.pyjailSidebar?.containers.body.dataset.rows) === "
                f"{args.containers}", timeout=60000)
            print(f"lab loaded and {args.containers} rows shown: {time.monotonic() - t0:.2f} s "
                  f"(first render {page.evaluate('window.pyjailSidebar.containers.lastRenderMs'):.1f}"
                  " ms)")
            screenshot(page, f"bench-{args.containers}")

            full = page.evaluate(FULL_RENDER, args.repeats)
            print(f"full render of {args.containers} rows:        {median_ms(full)}")

            target = ids[0]
            latencies, incremental = [], []
            for _ in range(args.repeats):
                for action, want in (("pause", "paused"), ("unpause", "running")):
                    watch = page.evaluate_handle(WATCH, [target, want])
                    getattr(client.api, action)(target)
                    returned = time.time()
                    seen = page.evaluate("w => w.done", watch) / 1000
                    latencies.append((seen - returned) * 1000)
                    incremental.append(page.evaluate(
                        "window.pyjailSidebar.containers.lastRenderMs"))
            print(f"incremental render (1 row changed):    {median_ms(incremental)}")
            print(f"event -> panel latency ({len(latencies)} changes): {median_ms(latencies)}"
                  f"  (budget 1000 ms: median is {statistics.median(latencies) / 1000:.3f} of it)")

            filters = [page.evaluate(FILTER, ["bench-1"]) for i in range(args.repeats)]
            print(f"filter typing over {args.containers} rows:    "
                  f"{median_ms([f[0] for f in filters])}  ({filters[0][1]} rows matched)")
    finally:
        if lab is not None:
            stop_lab(lab)
        client.close()
        gen.close()


if __name__ == "__main__":
    main()
