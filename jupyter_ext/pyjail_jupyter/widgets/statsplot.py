"""A live CPU and memory plot over time for one or many containers.

Samples come from ``pyjail.client.live.StatsSampler`` in a background thread; each tick
redraws a matplotlib figure (Agg, off-screen) into an ``ipywidgets.Image``. Without
matplotlib the widget shows the latest figures as a table only.
"""

from __future__ import annotations

import html
import io
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from pyjail.client.live import StatsSampler
from pyjail.client.tables import Table, human_size
from pyjail.client.views import STATS

from .display import StaticFallback

if TYPE_CHECKING:
    import pandas as pd

    from pyjail.client.connection import Client


def render_png(history: list[dict[str, Any]], started: float) -> bytes | None:
    """CPU % and memory (MiB) against seconds, one line per container."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(8, 3.2), dpi=80)
    cpu_ax, mem_ax = fig.subplots(1, 2)
    series: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        series.setdefault(row["name"] or row["id"][:12], []).append(row)
    for name, rows in series.items():
        xs = [r["read"].timestamp() - started if r["read"] else 0.0 for r in rows]
        cpu_ax.plot(xs, [r["cpu_percent"] for r in rows], label=name)
        mem_ax.plot(xs, [r["mem_usage"] / 2**20 for r in rows], label=name)
    cpu_ax.set_title("CPU %")
    mem_ax.set_title("memory (MiB)")
    for ax in (cpu_ax, mem_ax):
        ax.set_xlabel("seconds")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    if series:
        mem_ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class StatsPlot(StaticFallback, w.VBox):
    """Follows ``containers`` (all running ones if empty) for ``duration`` seconds or until
    ``stop()``, the Stop button, or the end of every container."""

    def __init__(self, client: Client, containers: list[str], *, interval: float = 1.0,
                 duration: float | None = None) -> None:
        self.sampler = StatsSampler(client, containers, interval=interval, duration=duration)
        self.started = time.time()
        self.png: bytes | None = None
        self.error: str | None = None
        self.finished = threading.Event()  # sampling is over
        self.done = threading.Event()  # and the final plot is drawn
        self.header = w.HTML(self._header_html("sampling"))
        self.stop_button = w.Button(description="Stop", button_style="warning",
                                    layout=w.Layout(width="80px"))
        self.stop_button.on_click(lambda _b: self.stop())
        self.image = w.Image(format="png", layout=w.Layout(width="640px"))
        self.table = w.HTML("")
        super().__init__([w.HBox([self.header, self.stop_button]), self.image, self.table])
        self._dirty = threading.Event()
        self._latest: list[dict[str, Any]] = []
        # Drawing (matplotlib's first import takes a second) must not delay sampling.
        self._drawer = threading.Thread(target=self._draw_loop, daemon=True,
                                        name="pyjail-stats-draw")
        self._thread = threading.Thread(target=self._run, daemon=True, name="pyjail-stats-plot")
        self._drawer.start()
        self._thread.start()

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.sampler.history

    @property
    def frame(self) -> pd.DataFrame:
        """Every sample so far, with the ``stats`` columns."""
        return Table(STATS, list(self.history)).to_frame()

    def _header_html(self, state: str) -> str:
        return f"<b>container stats</b> <i>({html.escape(state)})</i>"

    def _latest_html(self, rows: list[dict[str, Any]]) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td>{r['cpu_percent']:.1f}%</td>"
            f"<td>{human_size(r['mem_usage'])}</td><td>{r['pids']}</td></tr>" for r in rows)
        return ("<table><tr><th>name</th><th>CPU</th><th>memory</th><th>pids</th></tr>"
                f"{cells}</table>")

    def _draw(self, rows: list[dict[str, Any]]) -> None:
        png = render_png(self.history, self.started)
        if png is not None:
            self.png = png
            self.image.value = png
        self.table.value = self._latest_html(rows)

    def _draw_loop(self) -> None:
        while not self.finished.is_set():
            if self._dirty.wait(0.2):
                self._dirty.clear()
                try:
                    self._draw(self._latest)
                except Exception as exc:  # noqa: BLE001 - shown in the widget
                    self.error = f"drawing failed: {exc}"

    def _run(self) -> None:
        state = "ended"
        try:
            for rows in self.sampler.samples():
                self._latest = rows
                self._dirty.set()
                self.header.value = self._header_html(f"sampling, {len(self.history)} samples")
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.error = str(exc)
            state = f"error: {exc}"
        finally:
            self.finished.set()
            self._drawer.join(5)
            if self.history:
                self._draw(self._latest)
            self.header.value = self._header_html(f"{state}, {len(self.history)} samples")
            self.stop_button.disabled = True
            self.done.set()
            self.refresh_display()

    def stop(self) -> None:
        self.sampler.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def fallback_bundle(self) -> dict[str, Any]:
        names = sorted({r["name"] for r in self.history})
        data: dict[str, Any] = {"text/plain": f"StatsPlot({len(self.history)} samples of "
                                              f"{', '.join(names) or 'no container'})"}
        if self.png is not None:
            import base64
            data["image/png"] = base64.b64encode(self.png).decode()
        return data
