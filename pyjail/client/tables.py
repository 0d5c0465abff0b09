"""Tables with a fixed schema: a DataFrame in a notebook, aligned text in a shell.

Every listing command returns a ``Table`` whose columns and dtypes are declared up front,
so an empty answer still gives a frame with the right columns and dtypes. pandas is
imported only by ``to_frame``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Column kinds → pandas dtypes. "string" is pandas' StringDtype in pandas 2 and 3 alike.
DTYPES = {"str": "string", "int": "int64", "float": "float64", "bool": "bool",
          "time": "datetime64[ns, UTC]", "obj": "object"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"  # a key of DTYPES
    title: str = ""  # header in the text table (default: NAME in capitals)
    short_id: bool = False  # text table shows 12 characters unless --no-trunc

    @property
    def dtype(self) -> str:
        return DTYPES[self.kind]

    @property
    def header(self) -> str:
        return self.title or self.name.replace("_", " ").upper()


@dataclass
class Table:
    """Rows (dicts keyed by column name) under a schema."""

    columns: Sequence[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    index: str | None = None  # a column to use as the frame's index (inspect)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd
        data = {}
        for col in self.columns:
            values = [_clean(row.get(col.name), col.kind) for row in self.rows]
            if col.kind == "time":
                data[col.name] = pd.Series(pd.to_datetime(values, utc=True), dtype=col.dtype)
            elif col.kind == "obj":
                data[col.name] = pd.Series(values, dtype=object)
            else:
                data[col.name] = pd.Series(values, dtype=col.dtype)
        frame = pd.DataFrame(data, columns=[c.name for c in self.columns])
        if self.index:
            frame = frame.set_index(self.index)
        return frame

    def to_text(self, *, no_trunc: bool = False, now: datetime | None = None) -> str:
        """Docker-style aligned columns (three spaces between them)."""
        cols = list(self.columns)
        now = now or datetime.now(UTC)
        cells = [[c.header for c in cols]]
        for row in self.rows:
            cells.append([format_cell(row.get(c.name), c, no_trunc=no_trunc, now=now)
                          for c in cols])
        widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
        lines = ["   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                 for r in cells]
        return "\n".join(lines)


def _clean(value: Any, kind: str) -> Any:
    """Missing values get each dtype's neutral value (int64 columns hold no NaN)."""
    if kind == "int":
        try:
            return int(value or 0)
        except (TypeError, ValueError):
            return 0
    if kind == "float":
        return float(value) if value is not None else float("nan")
    if kind == "bool":
        return bool(value)
    if kind == "str":
        return "" if value is None else str(value)
    if kind == "time":
        return value  # a datetime or None (NaT)
    return value


# -- conversions shared by the views -------------------------------------------------------
def to_utc(value: Any) -> datetime | None:
    """Docker times (RFC 3339 with nanoseconds, unix seconds or nanoseconds) → aware UTC."""
    if value in (None, "", 0, "0001-01-01T00:00:00Z"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1e9 if value > 1e12 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if text.isdigit():
        return to_utc(int(text))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most 6 fractional digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_size(n: int | float) -> str:
    """Docker's units (decimal: 1kB = 1000 B), e.g. ``4.26MB``."""
    n = float(n or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def _count(secs: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if secs >= size:
            count = secs // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return ""


def human_ago(when: datetime | None, now: datetime) -> str:
    """Docker's "3 minutes ago"; a time still to come (a schedule's next run) reads "in 59 minutes"."""
    if when is None:
        return ""
    delta = int((now - when).total_seconds())
    if delta <= -1:
        return f"in {_count(-delta)}"
    if delta < 1:
        return "Less than a second ago"
    return f"{_count(delta)} ago"


def human_duration(seconds: float) -> str:
    """A span in the grammar's own units (``90s``, ``6h``, ``7d``, ``1h30m``); "" for none."""
    secs = int(seconds or 0)
    if secs <= 0:
        return ""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return "".join(parts)


def format_cell(value: Any, col: Column, *, no_trunc: bool, now: datetime) -> str:
    if value is None:
        return ""
    if col.kind == "time":
        return human_ago(value, now)
    if col.kind == "int" and col.name in SIZE_COLUMNS:
        return human_size(value)
    if col.kind == "float" and col.name in DURATION_COLUMNS:
        return human_duration(value)
    if col.kind == "float":
        return f"{value:.2f}%" if col.name.endswith("_percent") else f"{value:g}"
    if col.kind == "obj":
        if isinstance(value, dict):
            return ",".join(f"{k}={v}" if v else k for k, v in value.items())
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return json.dumps(value) if not isinstance(value, str) else value
    text = str(value)
    if col.short_id and not no_trunc:
        text = text.removeprefix("sha256:")[:12]
    return text


DURATION_COLUMNS = {"max_age"}   # seconds in the DataFrame, "7d" in the text table
SIZE_COLUMNS = {"size", "size_rw", "mem_usage", "mem_limit", "net_rx", "net_tx",
                "block_read", "block_write", "reclaimable", "virtual_size"}


def table(columns: Iterable[Column], rows: Iterable[dict[str, Any]] = ()) -> Table:
    return Table(list(columns), list(rows))
