"""The on-call page (``GET /``): every target at a glance — what it runs at, what it last
did and why (or why not) — and the recent decisions. Server-rendered HTML from the same
records as ``/api/decisions``; no JavaScript, refreshed every few seconds."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..audit import AuditRecord
from ..audit.render import reason_in_words
from .tick import TargetRuntime

__all__ = ["render_page"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .8em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scaled { color: #0a6; font-weight: 600; } .failed { color: #c00; font-weight: 600; }
.skipped { color: #b60; } .held, .dry-run { color: #555; } .muted { color: #888; }
"""


def render_page(
    runtimes: Sequence[TargetRuntime], recent: Sequence[AuditRecord], version: str
) -> str:
    rows = "".join(_target_row(runtime) for runtime in runtimes)
    decisions = "".join(_decision_row(record) for record in reversed(recent))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>scalerd</title><style>{_STYLE}</style></head><body>
<h1>scalerd <span class="muted">config {escape(version)}</span></h1>
<table><tr><th>target</th><th>scales</th><th>capacity</th><th>last action</th><th>why</th><th>at</th></tr>
{rows}</table>
<h2>Recent decisions</h2>
<table><tr><th>at (UTC)</th><th>target</th><th>action</th><th>capacity</th><th>why</th></tr>
{decisions}</table>
<p class="muted">JSON: <a href="/api/targets">/api/targets</a>, <a href="/api/decisions">/api/decisions</a>,
<a href="/metrics">/metrics</a>, <a href="/readyz">/readyz</a></p>
</body></html>"""


def _target_row(runtime: TargetRuntime) -> str:
    actuator = runtime.target.actuator
    last = runtime.last_record
    if last is None:
        return (
            f"<tr><td>{escape(runtime.name)}</td><td>{escape(actuator.kind)} {escape(actuator.name)}</td>"
            '<td class="muted" colspan="4">not evaluated yet</td></tr>'
        )
    return (
        f"<tr><td>{escape(runtime.name)}</td><td>{escape(actuator.kind)} {escape(actuator.name)}</td>"
        f'<td class="num">{_capacity(last)}</td><td class="{escape(last.action)}">{escape(last.action)}</td>'
        f"<td>{escape(_why(last))}</td><td>{last.ts:%H:%M:%S}</td></tr>"
    )


def _decision_row(record: AuditRecord) -> str:
    return (
        f"<tr><td>{record.ts:%Y-%m-%d %H:%M:%S}</td><td>{escape(record.target)}</td>"
        f'<td class="{escape(record.action)}">{escape(record.action)}</td>'
        f'<td class="num">{_capacity(record)}</td><td>{escape(_why(record))}</td></tr>'
    )


def _capacity(record: AuditRecord) -> str:
    if record.current is None:
        return "?"
    current = record.current["provisioned"]
    if record.desired is None or record.desired == current:
        return str(current)
    return f"{current} → {record.desired}"


def _why(record: AuditRecord) -> str:
    if record.error:
        return record.error
    if record.not_scaled_reason:
        return reason_in_words(record.not_scaled_reason)
    moved = [step for step in record.steps if step.get("before") != step.get("after")]
    return str(moved[-1]["detail"]) if moved else ""
