"""The notebook's front end: widgets where a kernel can show them, text elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyjail.client.ui import Frontend, Progress

if TYPE_CHECKING:
    from pyjail.client.connection import Client


def in_kernel(shell: Any) -> bool:
    """A Jupyter kernel (comms, widgets) rather than terminal IPython."""
    return getattr(shell, "kernel", None) is not None


class NotebookFrontend(Frontend):
    def __init__(self, shell: Any, widgets: bool = True) -> None:
        self.shell = shell
        self.rich = widgets and in_kernel(shell)

    def progress(self, title: str, quiet: bool = False) -> Progress:
        if quiet or not self.rich:
            return super().progress(title, quiet)
        from .widgets.progress import ProgressBar
        bar = ProgressBar(title)
        bar.show()
        return bar

    def follow_logs(self, client: Client, container: str, *, tail: str = "all",
                    timestamps: bool = False, since: str | None = None) -> Any:
        if not self.rich:
            return super().follow_logs(client, container, tail=tail, timestamps=timestamps,
                                       since=since)
        from .widgets.logtail import LogTail
        return LogTail(client, container, tail=tail, timestamps=timestamps, since=since)

    def live_stats(self, client: Client, containers: list[str], *, interval: float = 1.0,
                   duration: float | None = None, wait: bool = True) -> Any:
        if not self.rich:
            return super().live_stats(client, containers, interval=interval,
                                      duration=duration, wait=wait)
        from .widgets.statsplot import StatsPlot
        plot = StatsPlot(client, containers, interval=interval, duration=duration)
        if wait:
            plot.show(returned=True)
            try:
                plot.wait()
            except KeyboardInterrupt:
                plot.stop()
                plot.wait(5)
        return plot
