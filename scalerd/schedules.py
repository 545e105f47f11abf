"""Cron windows on apscheduler's cron triggers: the :class:`~scalerd.core.rules.Calendar`
the core is handed for scheduled profiles and maintenance windows.

Two traps are handled here so ops can write cron the way they know it:

* apscheduler 3 numbers weekdays from Monday = 0, where cron says Sunday = 0 (and 7), so
  ``1-5`` would silently mean Tuesday to Saturday. Weekday numbers are rewritten as names.
* cron has no "previous fire time"; the last opening before ``now`` is found by looking
  back over growing spans, and the answer is cached so replaying two weeks stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from .core.rules import CronWindow

__all__ = ["CronCalendar", "cron_trigger"]

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# spans to look back for the latest opening; a window that opens less often than yearly
# is not a schedule anyone writes
_LOOKBACK = (
    timedelta(minutes=2),
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
)


_FULL_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def _weekday(token: str) -> int:
    lowered = token.strip().lower()
    for names in (_WEEKDAYS, _FULL_NAMES):
        if lowered in names:
            return names.index(lowered)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"invalid day of week {token!r}: use 0-7 (0 and 7 are Sunday) or mon..sun")


def _weekdays_as_names(field: str) -> str:
    """Cron's day-of-week field with numbers (Sunday = 0 or 7) spelled as names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"invalid step in day of week {part!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, end = base.split("-", 1)
            first, last = _weekday(start), _weekday(end)
            if end.strip() == "7":
                last = 7
        else:
            first = last = _weekday(base)
        if last < first:
            raise ValueError(f"invalid range in day of week {part!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A 5-field cron expression (or ``@daily`` & co.) in an IANA time zone."""
    text = _MACROS.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}: "
            f"{expression!r}"
        )
    fields[4] = _weekdays_as_names(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=ZoneInfo(timezone))


@dataclass
class _Opening:
    start: datetime
    end: datetime


class CronCalendar:
    """``opened_at(window, now)``: when the occurrence of ``window`` containing ``now`` opened.

    A pure function of its arguments; the caches only remember answers.
    """

    def __init__(self) -> None:
        self._triggers: dict[tuple[str, str], CronTrigger] = {}
        self._open: dict[CronWindow, _Opening] = {}
        self._closed_until: dict[CronWindow, tuple[datetime, datetime]] = {}

    def _trigger(self, expression: str, timezone: str) -> CronTrigger:
        key = (expression, timezone)
        trigger = self._triggers.get(key)
        if trigger is None:
            trigger = self._triggers[key] = cron_trigger(expression, timezone)
        return trigger

    def opened_at(self, window: CronWindow, now: datetime) -> datetime | None:
        cached = self._open.get(window)
        if cached is not None and cached.start <= now < cached.end:
            return cached.start
        closed = self._closed_until.get(window)
        if closed is not None and closed[0] <= now < closed[1]:
            return None
        opening = self._opening(window, now)
        if opening is not None:
            self._open[window] = opening
            return opening.start
        starts = self._trigger(window.cron, window.timezone)
        upcoming = starts.get_next_fire_time(None, now)
        if upcoming is not None:
            self._closed_until[window] = (now, upcoming)
        return None

    def _opening(self, window: CronWindow, now: datetime) -> _Opening | None:
        starts = self._trigger(window.cron, window.timezone)
        if window.duration is not None:
            # the earliest start in (now - duration, now]: overlapping occurrences are one
            # continuous opening, and a ramp counts from its beginning
            first = starts.get_next_fire_time(
                None, now - window.duration + timedelta(microseconds=1)
            )
            if first is None or first > now:
                return None
            return _Opening(first, self._continuous_end(starts, first, window.duration))
        assert window.end is not None  # CronWindow guarantees duration or end
        start = self._latest_fire(starts, now)
        if start is None:
            return None
        ends = self._trigger(window.end, window.timezone)
        end = ends.get_next_fire_time(None, start + timedelta(seconds=1))
        if end is None or now >= end:
            return None
        return _Opening(start, end)

    @staticmethod
    def _continuous_end(starts: CronTrigger, first: datetime, duration: timedelta) -> datetime:
        end = first + duration
        for _ in range(1000):  # bounded: a window can be reopened only so often
            following = starts.get_next_fire_time(None, first + timedelta(seconds=1))
            if following is None or following >= end:
                return end
            first, end = following, following + duration
        return end

    @staticmethod
    def _latest_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
        for span in _LOOKBACK:
            fire = trigger.get_next_fire_time(None, now - span)
            if fire is None or fire > now:
                continue
            while True:
                following = trigger.get_next_fire_time(None, fire + timedelta(seconds=1))
                if following is None or following > now:
                    return _aware(fire)
                fire = following
        return None


def _aware(moment: object) -> datetime:
    """apscheduler's fire times are aware datetimes; say so to the type checker."""
    assert isinstance(moment, datetime) and moment.tzinfo is not None
    return moment
