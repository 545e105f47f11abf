"""The three pages as HTML: the overview, a target's timeline and decisions, one decision.

Everything is escaped here and nowhere else. Styles and the live-update script are the
package's own files (``static/``), inlined, so the page needs nothing from the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from ..audit import ACTIONS, AuditRecord, format_ts
from ..audit.render import NOT_SCALED_WORDS, reason_in_words
from ..core.durations import format_duration
from .model import HeldRun, State, TargetInfo, Timeline, collapse_held, why_in_words
from .svg import sparkline, timeline_svg

__all__ = [
    "MAX_ROWS",
    "WINDOWS",
    "StreamStatus",
    "render_decision",
    "render_message",
    "render_overview",
    "render_target",
]

WINDOWS: Mapping[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
# rows of the decision list (after held runs are folded); older ones: a narrower window
MAX_ROWS = 500


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """Whether the audit stream answered the last read, and since when it has not."""

    unreachable_since: datetime | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.unreachable_since is None


@cache
def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _page(title: str, body: str, *, newest: str, status: StreamStatus, crumbs: str = "") -> str:
    notice = ""
    if not status.ok:
        assert status.unreachable_since is not None
        notice = (
            '<div class="notice" role="alert"><strong>⚠ The audit stream is unreachable</strong>'
            f" since {status.unreachable_since:%Y-%m-%d %H:%M:%S} UTC ({escape(status.error or '')})."
            " Showing what this scalerd process remembers; it retries every few seconds.</div>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · scalerd</title><style>{_static('page.css')}</style></head>"
        f'<body><header><a class="home" href="/">scalerd</a>{crumbs}</header>'
        f'<main data-live data-newest="{escape(newest)}">{notice}{body}</main>'
        f'<p class="live" aria-live="polite" id="live-status"></p>'
        f"<script>{_static('page.js')}</script></body></html>"
    )


def render_message(title: str, message: str, status: StreamStatus | None = None) -> str:
    body = f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
    return _page(title, body, newest="", status=status or StreamStatus())


# --- the overview ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    info: TargetInfo
    state: State
    last_change: AuditRecord | None
    history: Timeline


def render_overview(
    cards: Sequence[Card], *, newest: str, status: StreamStatus, now: datetime
) -> str:
    ordered = sorted(cards, key=lambda card: (card.state.rank, card.info.name))
    body = (
        f'<h1>Targets <span class="muted">{len(cards)}, attention first · {now:%H:%M:%S} UTC</span></h1>'
        f'<ul class="cards">{"".join(_card(card, now) for card in ordered)}</ul>'
        '<p class="muted">JSON: <a href="/api/targets">/api/targets</a> · '
        '<a href="/api/decisions">/api/decisions</a> · <a href="/metrics">/metrics</a> · '
        '<a href="/readyz">/readyz</a></p>'
    )
    return _page("targets", body, newest=newest, status=status)


def _card(card: Card, now: datetime) -> str:
    info, last = card.info, card.info.last
    name = escape(info.name)
    head = (
        f'<li class="card state-{card.state.css}" data-target="{name}">'
        f'<div class="card-head"><h2><a href="/targets/{name}">{name}</a></h2>'
        f"{_badge(card.state)}</div>"
        f'<p class="scales">{escape(info.scales)}</p>'
    )
    if last is None:
        return head + '<p class="muted">not evaluated yet</p></li>'
    current = last.current or {}
    provisioned, ready = current.get("provisioned"), current.get("ready")
    if last.action == "scaled" and last.desired is not None:
        # the record holds the capacity before its change: show the one after it (removed
        # replicas go at once, new ones are not ready yet)
        provisioned, ready = last.desired, min(ready or 0, last.desired)
    change = card.last_change
    changed = (
        f'last change <a href="/decisions/{escape(change.id)}">'
        f"{_change(change)}</a> {_ago(now - change.ts)} ago"
        if change is not None
        else "no change in the last 6 h"
    )
    h = card.history
    span = h.end - h.start
    if h.at and h.at[0] - h.start > span / 20:  # a younger history: say how long it is
        span = h.end - h.at[0]
    return (
        head
        + _capacity_bar(provisioned, ready, info.minimum, info.maximum)
        + f'<p class="changed">{changed}</p>'
        + f'<p class="why"><a href="/decisions/{escape(last.id)}">{escape(last.action)}</a> '
        + f'{_ago(now - last.ts)} ago: <span class="why-text">{escape(why_in_words(last))}</span></p>'
        + f'<div class="spark-row">{sparkline(h.at, h.provisioned, h.end - span, h.end)}'
        + f'<span class="muted">capacity, last {_ago(span)}</span></div></li>'
    )


def _badge(state: State) -> str:
    title = f' title="{escape(state.detail)}"' if state.detail else ""
    detail = (
        f" · {escape(state.detail)}"
        if state.detail and state.name in ("paused", "override", "breaker open")
        else ""
    )
    return f'<span class="badge {state.css}"{title}>{escape(state.name)}{detail}</span>'


def _capacity_bar(provisioned: Any, ready: Any, minimum: int, maximum: int) -> str:
    if provisioned is None:
        return '<p class="capacity muted">capacity unknown (the actuator did not answer)</p>'
    top = max(maximum, int(provisioned), 1)
    fill = min(100.0, int(provisioned) / top * 100)
    ready_at = min(100.0, int(ready or 0) / top * 100)
    low = minimum / top * 100
    return (
        f'<div class="capacity"><span class="numbers"><strong>{provisioned}</strong> provisioned / '
        f'<strong>{ready}</strong> ready <span class="muted">(min {minimum}, max {maximum})</span></span>'
        f'<div class="bar" role="meter" aria-valuemin="0" aria-valuemax="{top}" aria-valuenow="{provisioned}" '
        f'aria-label="{provisioned} provisioned of max {maximum}">'
        f'<div class="fill" style="width:{fill:.1f}%"></div>'
        f'<div class="ready" style="width:{ready_at:.1f}%"></div>'
        f'<div class="min" style="left:{low:.1f}%" title="min {minimum}"></div></div></div>'
    )


def _change(record: AuditRecord) -> str:
    current = record.current or {}
    before = current.get("provisioned", "?")
    arrow = "▲" if (record.desired or 0) > (before if isinstance(before, int) else 0) else "▼"
    return f"{arrow} {before} → {record.desired}"


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    return format_duration(timedelta(seconds=seconds // 60 * 60))


# --- the target page -------------------------------------------------------------------------


def render_target(
    info: TargetInfo,
    timeline: Timeline,
    records: Sequence[AuditRecord],
    *,
    window: str,
    action: str,
    reason: str,
    newest: str,
    status: StreamStatus,
) -> str:
    name = escape(info.name)
    windows = " ".join(
        f'<a href="?{urlencode({"window": w, "action": action, "reason": reason})}"'
        f"{' aria-current=page class=current' if w == window else ''}>{w}</a>"
        for w in WINDOWS
    )
    chosen = [
        r
        for r in records
        if (not action or r.action == action) and (not reason or r.not_scaled_reason == reason)
    ]
    rows = collapse_held(chosen)[::-1]  # newest first
    shown = "".join(_row(row) for row in rows[:MAX_ROWS])
    more = (
        f'<li class="muted">{len(rows) - MAX_ROWS} older rows not shown: choose a shorter window or a filter</li>'
        if len(rows) > MAX_ROWS
        else ""
    )
    rules = "".join(f"<li>{escape(line)}</li>" for line in info.rules)
    body = (
        f'<h1>{name} <span class="muted">{escape(info.scales)}</span></h1>'
        f'<nav class="windows" aria-label="window">window: {windows}</nav>'
        f'<figure class="chart" data-start="{format_ts(timeline.start)}">{timeline_svg(timeline)}'
        f"<figcaption>{_legend()}</figcaption></figure>"
        f'<h2>Decisions <span class="muted">{len(chosen)} of {len(records)} in {window}</span></h2>'
        f"{_filters(window, action, reason)}"
        f'<ol class="decisions" reversed>{shown}{more}</ol>'
        f'<details class="rules"><summary>Rules of {name}</summary><ul>{rules}</ul></details>'
    )
    crumbs = f' &rsaquo; <a href="/targets/{name}">{name}</a>'
    return _page(info.name, body, newest=newest, status=status, crumbs=crumbs)


def _legend() -> str:
    items = (
        ("provisioned", "━ provisioned"),
        ("ready", "━ ready"),
        ("desired", "┅ desired"),
        ("recommended", "┈ recommended"),
        ("band", "▒ min…max"),
        ("up", "▲ scaled up"),
        ("down", "▼ scaled down"),
        ("failed", "✕ failed"),
        ("skipped", "◆ skipped"),
    )
    return "".join(f'<span class="key {css}">{escape(text)}</span>' for css, text in items)


def _filters(window: str, action: str, reason: str) -> str:
    actions = "".join(
        f'<option value="{a}"{" selected" if a == action else ""}>{a or "any action"}</option>'
        for a in ("", *ACTIONS)
    )
    reasons = "".join(
        f'<option value="{r}"{" selected" if r == reason else ""}>{r or "any reason"}</option>'
        for r in ("", *(str(code) for code in NOT_SCALED_WORDS))
    )
    return (
        f'<form class="filters" method="get"><input type="hidden" name="window" value="{window}">'
        f'<label>action <select name="action">{actions}</select></label> '
        f'<label>reason <select name="reason">{reasons}</select></label> '
        '<button type="submit">filter</button></form>'
    )


def _row(row: AuditRecord | HeldRun) -> str:
    if isinstance(row, HeldRun):
        reasons = ", ".join(
            f"{reason_in_words(reason) if reason else 'no reason'}"
            + (f" \u00d7{count}" if count != len(row.records) else "")
            for reason, count in row.reasons()
        )
        return (
            f'<li class="held-run" data-id="{escape(row.last.id)}">'
            f'<span class="when">{row.first.ts:%m-%d %H:%M:%S}&hellip;{row.last.ts:%H:%M:%S}</span> '
            f'<span class="action held">held {len(row.records)}&times;</span> &mdash; {escape(reasons)} '
            f'<span class="muted">(<a href="/decisions/{escape(row.last.id)}">latest</a>, '
            f'<a href="/decisions/{escape(row.first.id)}">first</a>)</span></li>'
        )
    record = row
    trigger = (record.trigger or {}).get("type")
    trigger = None if trigger == "poll" else trigger
    current = record.current or {}
    capacity = (
        f"{current.get('provisioned')} → {record.desired}"
        if record.desired is not None and record.desired != current.get("provisioned")
        else str(current.get("provisioned", "?"))
    )
    return (
        f'<li class="decision {escape(record.action)}" data-id="{escape(record.id)}">'
        f'<a class="when" href="/decisions/{escape(record.id)}">{record.ts:%m-%d %H:%M:%S}</a> '
        f'<span class="action {escape(record.action)}">{escape(record.action)}</span> '
        f'<span class="cap">{escape(capacity)}</span> '
        + (f'<span class="tag">\u26a1 {escape(trigger)}</span> ' if trigger else "")
        + f'<span class="why-text">{escape(why_in_words(record))}</span></li>'
    )


# --- the decision page -----------------------------------------------------------------------


def render_decision(
    record: AuditRecord, following: AuditRecord | None, *, newest: str, status: StreamStatus
) -> str:
    current = record.current or {}
    name = escape(record.target)
    capacity = (
        f'<p class="capacity-line">capacity <strong>{current.get("provisioned")}</strong> provisioned / '
        f"<strong>{current.get('ready')}</strong> ready → desired <strong>{record.desired}</strong> "
        f"(recommended {record.recommended}){', tier ' + escape(record.tier) if record.tier else ''}</p>"
        if record.current is not None
        else '<p class="muted">no capacity was read</p>'
    )
    chain = (
        '<nav class="chain" aria-label="chain">'
        + (
            f'<a rel="prev" href="/decisions/{escape(record.prev)}">← previous</a>'
            if record.prev
            else '<span class="muted">no previous record</span>'
        )
        + (
            f' <a rel="next" href="/decisions/{escape(following.id)}">next →</a>'
            if following is not None
            else ' <span class="muted">latest record of this target</span>'
        )
        + "</nav>"
    )
    raw = json.dumps(record.as_dict(), indent=2, ensure_ascii=False, default=str)
    body = (
        f'<h1><a href="/targets/{name}">{name}</a> '
        f'<span class="action {escape(record.action)}">{escape(record.action)}</span></h1>'
        f'<p class="muted">{record.ts:%Y-%m-%d %H:%M:%S}.{record.ts.microsecond // 1000:03d} UTC'
        f"{' · dry run' if record.dry_run else ''}</p>"
        f"{chain}{capacity}{_trigger(record)}{_verdict(record)}"
        f"{_inputs(record.inputs)}{_rules(record.rules)}{_steps(record)}{_shadow(record)}"
        f'<p class="muted provenance">record {escape(record.id)} · {record.duration_ms:.1f} ms · '
        f"{escape(record.kind)} on {escape(record.instance)}{_fence(record)} · "
        f"config {escape(record.config_version)}</p>"
        f'<details class="raw"><summary>raw JSON</summary><pre>{escape(raw)}</pre></details>'
    )
    crumbs = f' &rsaquo; <a href="/targets/{name}">{name}</a> &rsaquo; decision'
    return _page(f"{record.target} decision", body, newest=newest, status=status, crumbs=crumbs)


def _fence(record: AuditRecord) -> str:
    """The lease's fencing token the record acted under, in a cluster."""
    return f" (fence {record.fence})" if record.fence is not None else ""


def trigger_in_words(record: AuditRecord) -> str | None:
    """What started the evaluation, when it was not the regular poll."""
    trigger = record.trigger or {}
    kind = trigger.get("type")
    if kind in (None, "poll"):
        return None
    if kind != "event":
        return f"{kind} (an operator asked for it)" if kind == "manual" else str(kind)
    words = f"event {trigger.get('kind') or ''}".rstrip()
    if trigger.get("summary"):
        words += f" “{trigger['summary']}”"
    if trigger.get("source"):
        words += f" from {trigger['source']}"
    if trigger.get("endpoint"):
        words += f" at /events/{trigger['endpoint']}"
    values = trigger.get("values") or {}
    if values:
        words += "; values " + ", ".join(f"{name}={value:g}" for name, value in values.items())
    if trigger.get("coalesced"):
        words += f"; {trigger['coalesced']} more merged in"
    return words


def _trigger(record: AuditRecord) -> str:
    words = trigger_in_words(record)
    return f"<p><strong>Triggered by:</strong> {escape(words)}</p>" if words else ""


def _shadow(record: AuditRecord) -> str:
    shadow = record.shadow
    if not shadow:
        return ""
    held = shadow.get("not_scaled_reason")
    outcome = (
        f"would hold: {reason_in_words(held)}" if held else f"would decide {shadow.get('desired')}"
    )
    rows = [
        [
            str(number),
            escape(str(step.get("code"))),
            escape(f"{step.get('before')} → {step.get('after')}"),
            escape(str(step.get("detail"))),
        ]
        for number, step in enumerate(shadow.get("steps") or [], start=1)
    ]
    return (
        f'<h2>Shadow rules <span class="muted">{escape(str(shadow.get("rules")))}, never acted on</span></h2>'
        f"<p>On the same readings: recommended {escape(str(shadow.get('recommended')))}, "
        f"{escape(outcome)}.</p>"
        + _table("Shadow steps", ("#", "step", "capacity", "detail"), rows)
    )


def _verdict(record: AuditRecord) -> str:
    lines = [f'<p class="why"><strong>Why:</strong> {escape(why_in_words(record))}</p>']
    if record.error:
        lines.append(
            f'<p class="error"><strong>It {escape(record.action)}:</strong> {escape(record.error)}</p>'
        )
    elif record.not_scaled_reason:
        lines.append(
            f"<p><strong>It did not scale:</strong> {escape(reason_in_words(record.not_scaled_reason))} "
            f"(<code>{escape(record.not_scaled_reason)}</code>)</p>"
        )
    elif record.current is not None:
        verb = "It would scale" if record.action == "dry-run" else "It scaled"
        cooldown = (
            f"; cooldown {format_duration(timedelta(seconds=record.cooldown_s))}"
            if record.cooldown_s
            else ""
        )
        lines.append(
            f"<p><strong>{verb} {record.current.get('provisioned')} → {record.desired}</strong>{cooldown}</p>"
        )
    if record.restarts:
        lines.append("<p><strong>This change restarts the resource.</strong></p>")
    if record.operation:
        lines.append(f"<p>Operation: <code>{escape(record.operation)}</code></p>")
    lines += [f"<p>Note: {escape(note)}</p>" for note in record.notes]
    return "".join(lines)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    labels = [escape(h, quote=True) for h in headers]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{label}">{cell}</td>' for label, cell in zip(labels, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<h2>{escape(title)}</h2><div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _num(value: Any) -> str:
    return (
        "&ndash;"
        if value is None
        else escape(f"{value:g}" if isinstance(value, float) else str(value))
    )


def _inputs(inputs: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            escape(str(i.get("metric"))),
            escape(str(i.get("source"))),
            _num(i.get("value")),
            escape(str(i.get("aggregation")))
            + (
                f" {format_duration(timedelta(seconds=i['window_s']))}" if i.get("window_s") else ""
            ),
            _num(i.get("points")),
            "&ndash;"
            if i.get("age_s") is None
            else escape(format_duration(timedelta(seconds=i["age_s"]))),
            f'<span class="error">{escape(i["error"])}</span>' if i.get("error") else "",
        ]
        for i in inputs
    ]
    return _table(
        "Inputs", ("metric", "source", "value", "aggregation", "points", "age", "error"), rows
    )


def _rules(rules: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            escape(str(r.get("rule"))),
            escape(str(r.get("kind"))),
            '<span class="yes">✔ fired</span>'
            if r.get("fired")
            else '<span class="muted">&ndash; no</span>',
            _num(r.get("proposed")),
            escape(str(r.get("detail"))),
        ]
        for r in rules
    ]
    return _table("Rules", ("rule", "kind", "fired", "proposed", "arithmetic"), rows)


def _steps(record: AuditRecord) -> str:
    held_at = None
    for number in range(len(record.steps), 0, -1):
        if (
            record.not_scaled_reason
            and record.steps[number - 1].get("holds_as") == record.not_scaled_reason
        ):
            held_at = number
            break
    rows = []
    for number, step in enumerate(record.steps, start=1):
        moved = step.get("before") != step.get("after")
        arrow = f"{step.get('before')} → {step.get('after')}"
        rows.append(
            [
                str(number),
                escape(str(step.get("code"))),
                f"<strong>{arrow}</strong>" if moved else f'<span class="muted">{arrow}</span>',
                escape(str(step.get("detail")))
                + (' <strong class="held-here">◀ held here</strong>' if number == held_at else ""),
            ]
        )
    return _table("Steps", ("#", "step", "capacity", "detail"), rows)
