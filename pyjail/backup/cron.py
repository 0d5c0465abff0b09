"""A small 5-field cron matcher (minute hour day-of-month month day-of-week)."""

from __future__ import annotations

import time

from ..errors import InvalidArgument

_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a_s, b_s = rng.split("-", 1)
            a, b = int(a_s), int(b_s)
        else:
            a = int(rng)
            b = hi if step_s else a
        if not (lo <= a <= hi and lo <= b <= hi) or step < 1:
            raise ValueError(part)
        out.update(range(a, b + 1, step))
    return out


class Cron:
    """Parsed once; ``next_after(t)`` is the first matching minute after unix time t."""

    def __init__(self, expr: str) -> None:
        fields = expr.split()
        if len(fields) != 5:
            raise InvalidArgument(f"cron expression needs 5 fields: {expr!r}")
        try:
            self.sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
        except ValueError as e:
            raise InvalidArgument(f"bad cron field {e} in {expr!r}") from None
        if 7 in self.sets[4]:
            self.sets[4].add(0)
        self.dom_any, self.dow_any = fields[2] == "*", fields[4] == "*"

    def matches(self, t: float) -> bool:
        tm = time.localtime(t)
        minute, hour, dom, month, dow = self.sets
        if tm.tm_min not in minute or tm.tm_hour not in hour or tm.tm_mon not in month:
            return False
        dom_ok, dow_ok = tm.tm_mday in dom, (tm.tm_wday + 1) % 7 in dow
        if self.dom_any or self.dow_any:   # cron's rule: both restricted means either matches
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next_after(self, t: float) -> float:
        start = (int(t) // 60 + 1) * 60
        for i in range(366 * 24 * 60):
            cand = start + i * 60
            if self.matches(cand):
                return float(cand)
        raise InvalidArgument("cron expression never matches")
