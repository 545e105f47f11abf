"""The ``scalerd audit`` listing: one line per record in fixed-width columns.

The widths depend only on the terminal and the config's target names, never on the
records, so ``--follow`` prints its header once and every later line lines up under it.
At 80 columns the "why" is cut with ``…``; ``--wide`` shows the full time, the reason code
and the whole why (wrapped, not cut).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rich.text import Text

from .record import AuditRecord
from .render import _ACTION_STYLE, _capacity_change, _why

__all__ = ["AuditColumns"]

_GAP = "  "
_ACTION_WIDTH = 7  # "dry-run", "skipped"
_CAPACITY_WIDTH = 8  # "capacity", "12→20"
_REASON_WIDTH = 24  # "OutsideMaintenanceWindow"
_TARGET_MIN, _TARGET_MAX = 6, 20
_WHY_MIN = 16


@dataclass
class AuditColumns:
    """Formats records for a terminal ``width`` wide, for targets named ``targets``."""

    width: int
    targets: Iterable[str]
    wide: bool = False
    _latest: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        longest = max((len(name) for name in self.targets), default=_TARGET_MIN)
        self.target_width = min(max(longest, _TARGET_MIN), _TARGET_MAX)
        self.time_width = 19 if self.wide else 14
        fixed = [self.time_width, self.target_width, _ACTION_WIDTH, _CAPACITY_WIDTH]
        if self.wide:
            fixed.append(_REASON_WIDTH)
        self.why_width = max(self.width - sum(fixed) - len(_GAP) * len(fixed), _WHY_MIN)

    def header(self) -> Text:
        cells = ["time (UTC)", "target", "action", "capacity"]
        if self.wide:
            cells.append("reason")
        return Text(self._join([*cells, "why"]), style="bold")

    def rows(self, records: Iterable[AuditRecord]) -> Iterator[Text]:
        for record in records:
            yield self.row(record)

    def row(self, record: AuditRecord) -> Text:
        """One record; a record whose ``prev`` is not the last one shown for its target
        says that records are missing in between."""
        previous = self._latest.get(record.target)
        self._latest[record.target] = record.id
        broken = previous is not None and record.prev != previous
        time_format = "%Y-%m-%d %H:%M:%S" if self.wide else "%m-%d %H:%M:%S"
        line = Text()
        line.append(_fit(f"{record.ts:{time_format}}", self.time_width) + _GAP)
        line.append(_fit(record.target, self.target_width) + _GAP)
        line.append(
            _fit(record.action, _ACTION_WIDTH) + _GAP, style=_ACTION_STYLE.get(record.action, "")
        )
        line.append(_fit(_capacity_change(record), _CAPACITY_WIDTH, right=True) + _GAP)
        if self.wide:
            reason = record.not_scaled_reason or ("error" if record.error else "")
            line.append(_fit(reason, _REASON_WIDTH) + _GAP)
        why = ("records missing before this one; " if broken else "") + _why(record)
        if self.wide:
            line.append(why, style="bold red" if broken else "")
        else:
            line.append(_cut(why, self.why_width), style="bold red" if broken else "")
        return line

    def _join(self, cells: list[str]) -> str:
        widths = [self.time_width, self.target_width, _ACTION_WIDTH, _CAPACITY_WIDTH]
        if self.wide:
            widths.append(_REASON_WIDTH)
        fitted = [_fit(cell, width) for cell, width in zip(cells, widths, strict=False)]
        return _GAP.join([*fitted, cells[-1]])


def _cut(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters, ``…`` where it was cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _fit(text: str, width: int, *, right: bool = False) -> str:
    cut = _cut(text, width)
    return cut.rjust(width) if right else cut.ljust(width)
