"""Widgets that keep a static copy of themselves in the notebook file.

A widget view needs a live kernel (or JavaScript from a CDN) to render. Our widgets
add an HTML or PNG rendering to their display bundle and refresh it, through a display
ID, when they finish, so an executed notebook and its HTML copy show the final state.
"""

from __future__ import annotations

from typing import Any


class StaticFallback:
    """Mixin for ``ipywidgets.Widget`` subclasses; they implement ``fallback_bundle``."""

    _handles: list[Any]
    _skip_next_display = False

    def fallback_bundle(self) -> dict[str, Any]:
        return {}

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data.update(self.fallback_bundle())
        return data

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Display with a display ID, so ``refresh_display`` can update the static copy."""
        if self._skip_next_display:  # already shown by the magic that returned us
            self._skip_next_display = False
            return
        from IPython.display import display
        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if not hasattr(self, "_handles"):
            self._handles = []
        if handle is not None:
            self._handles.append(handle)

    def show(self, returned: bool = False) -> None:
        """Display now; ``returned``: the magic also returns us, do not display twice."""
        self._ipython_display_()
        self._skip_next_display = returned

    def refresh_display(self) -> None:
        for handle in getattr(self, "_handles", []):
            try:
                handle.update(self._repr_mimebundle_(), raw=True)
            except Exception:  # noqa: BLE001 - the kernel may be going away
                pass
