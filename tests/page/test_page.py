"""The page's values and routes without a browser: the why in words, held runs folded, the
timeline's marks, attention order, and every route's answers (good, bad, unreachable)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from page_history import diurnal, make_history

from scalerd.audit import AuditRecord
from scalerd.core.rules import MetricSpec, Rule, TargetSpec
from scalerd.web import TargetInfo, Threshold, add_page_routes, build_timeline, why_in_words
from scalerd.web.model import collapse_held, state_of

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
SPEC = TargetSpec(
    "api",
    Rule.model_validate(
        {
            "max": 12,
            "track": [
                {
                    "metric": "demand",
                    "type": "total",
                    "target": 10,
                    "aggregation": "p95",
                    "window": "5m",
                }
            ],
            "behavior": {"scale_down": {"stabilization_window": "5m"}},
        }
    ),
    {"demand": MetricSpec("demand", timedelta(minutes=1))},
)
INFO = TargetInfo(
    "api",
    "recording pool",
    1,
    12,
    15.0,
    (Threshold("demand", "target 10 per replica", 10, per_replica=True),),
)


def _history(count: int = 960) -> list[AuditRecord]:
    return make_history(
        SPEC, "demand", diurnal(90), end=NOW, count=count, interval=timedelta(seconds=15)
    )


def test_why_names_the_aggregate_its_value_the_arithmetic_and_every_step() -> None:
    records = _history()
    limited = next(
        r
        for r in records
        if any(s["code"] == "scale_down_stabilized" and s["before"] != s["after"] for s in r.steps)
    )
    words = why_in_words(limited)
    read = limited.inputs[0]
    assert words.startswith(f"p95 of demand over 5m = {read['value']:g}: ")
    assert f"ceil({read['value']:g} / 10) = {limited.recommended}" in words
    assert f"stabilized to {limited.desired}" in words
    held = next(r for r in records if r.not_scaled_reason == "WithinTolerance")
    assert "held: the metric is within the tolerance band" in why_in_words(held)
    failed = replace(held, action="failed", error="timeout reading demand")
    assert why_in_words(failed) == "failed: timeout reading demand"


def test_held_runs_fold_and_what_acted_stays_a_row() -> None:
    records = _history()
    rows = collapse_held(records)
    acted = [r for r in records if r.action != "held"]
    assert [row for row in rows if isinstance(row, AuditRecord) and row.action != "held"] == acted
    unfolded = [
        record
        for row in rows
        for record in (row.records if not isinstance(row, AuditRecord) else (row,))
    ]
    assert unfolded == records  # nothing lost, nothing reordered
    assert len(rows) < len(records) / 3


def test_timeline_marks_one_per_action_and_bounds_follow_a_schedule() -> None:
    records = _history()
    timeline = build_timeline(records, INFO, NOW - timedelta(hours=1), NOW)
    in_window = [r for r in records if r.ts >= NOW - timedelta(hours=1)]
    assert len(timeline) == len(in_window)
    assert [m.record.id for m in timeline.marks] == [
        r.id for r in in_window if r.action == "scaled"
    ]
    kinds = {m.kind for m in timeline.marks}
    assert kinds <= {"up", "down"} and kinds
    # the line a total is judged against is the target per replica times provisioned
    ((_, line),) = timeline.lines["demand"]
    first = in_window[0]
    assert line[0] == 10 * first.current["provisioned"]  # type: ignore[index]
    scheduled = replace(
        first,
        steps=(
            {
                "code": "schedule",
                "before": 3,
                "after": 3,
                "detail": "",
                "data": {"min": 4, "max": 20},
            },
            *first.steps,
        ),
    )
    bounded = build_timeline([scheduled], INFO, NOW - timedelta(hours=1), NOW)
    assert (bounded.minimum, bounded.maximum) == ([4], [20])


def test_attention_comes_first() -> None:
    record = _history(4)[-1]
    failing = replace(INFO, name="a", last=replace(record, action="failed", error="boom"))
    at_max = replace(
        INFO, name="b", last=replace(record, not_scaled_reason="AlreadyAtMax", recommended=30)
    )
    paused = replace(INFO, name="c", pause="scale_in", last=record)
    holding = replace(INFO, name="d", last=record)
    states = sorted(
        (
            state_of(info, None, NOW + timedelta(hours=1))
            for info in (holding, paused, at_max, failing)
        ),
        key=lambda state: state.rank,
    )
    assert [s.name for s in states] == ["failing", "at max, wants more", "paused", "holding"]


@dataclass
class FakeData:
    records: list[AuditRecord]
    infos: Sequence[TargetInfo]
    broken: bool = False
    reads: list[dict[str, object]] = field(default_factory=list)

    def targets(self) -> Sequence[TargetInfo]:
        return self.infos

    def now(self) -> datetime:
        return NOW

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        if self.broken:
            raise ConnectionError("Error 111 connecting to redis://:hunter2@127.0.0.1:6390")
        self.reads.append({"target": target, "since": since, "limit": limit})
        found = [
            r
            for r in self.records
            if (target is None or r.target == target) and (since is None or r.ts >= since)
        ]
        return found[-limit:] if limit is not None else found

    async def known(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return [info.last for info in self.infos if info.last is not None]

    def outage(self) -> tuple[datetime, str] | None:
        return None  # the page keeps its own account


async def _client(data: FakeData) -> TestClient[web.Request, web.Application]:
    app = web.Application()
    add_page_routes(app, data)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_routes_answer_good_and_bad_requests() -> None:
    records = _history()
    data = FakeData(records, [replace(INFO, last=records[-1])])
    client = await _client(data)
    try:
        overview = await client.get("/")
        text = await overview.text()
        assert overview.status == 200 and 'data-target="api"' in text
        assert (
            '<meta name="viewport"' in text
            and "<script src" not in text
            and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        )
        page = await client.get("/targets/api", params={"window": "6h"})
        body = await page.text()
        scaled = [r for r in records if r.action == "scaled"]
        assert len(scaled) > 4
        assert len(re.findall(r'<a class="mark (?:up|down)"', body)) == len(scaled)
        assert re.search(r"held \d+&times;", body)
        assert "&amp;" not in body.replace("&amp;action", "").replace("&amp;reason", "")
        only = await (
            await client.get("/targets/api", params={"window": "1h", "action": "scaled"})
        ).text()
        assert "held-run" not in only.split('<ol class="decisions"')[1]
        for path, status in (
            ("/targets/nope", 404),
            ("/targets/api?window=2y", 400),
            ("/targets/api?action=exploded", 400),
            ("/targets/api?reason=Whim", 400),
            ("/decisions/not-an-id", 404),
            ("/decisions/01a22fc5da6f-0000000000000000", 404),
        ):
            assert (await client.get(path)).status == status, path
        decision = scaled[len(scaled) // 2]
        shown = await (await client.get(f"/decisions/{decision.id}")).text()
        following = records[records.index(decision) + 1]
        assert f'href="/decisions/{decision.prev}">← previous' in shown
        assert f'href="/decisions/{following.id}">next →' in shown
        assert "raw JSON" in shown and decision.id in shown
        # a live poll that already shows the newest record gets nothing new
        newest = records[-1].id
        quiet = await client.get(
            "/", params={"fragment": "1"}, headers={"X-Scalerd-Newest": newest}
        )
        assert quiet.status == 204
        assert data.reads[-1]["limit"] == 1  # nothing new costs one record's read
        stale = await client.get("/", params={"fragment": "1"}, headers={"X-Scalerd-Newest": "old"})
        assert stale.status == 200
    finally:
        await client.close()


async def test_an_unreachable_stream_is_a_notice_not_an_error() -> None:
    records = _history(40)
    data = FakeData(records, [replace(INFO, last=records[-1])], broken=True)
    client = await _client(data)
    try:
        for path in (
            "/",
            "/targets/api",
            f"/decisions/{records[-1].id}",
            f"/decisions/{records[0].id}",
        ):
            answer = await client.get(path)
            text = await answer.text()
            assert answer.status == 200, path
            assert "audit stream is unreachable" in text and "since 2026-11-22 18:00:00 UTC" in text
            assert "hunter2" not in text  # the error is shown redacted
        data.broken = False
        assert "unreachable" not in await (await client.get("/")).text()
    finally:
        await client.close()


def _luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_text_colour_reads_on_every_light_background() -> None:
    """WCAG AA (4.5:1) for normal text, against the darkest light background the page
    uses (table heads); white is only used on the dark header."""
    from importlib import resources

    css = resources.files("scalerd.web").joinpath("static", "page.css").read_text()
    colours = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})\b", css))
    backgrounds = set(re.findall(r"background:\s*(#[0-9a-fA-F]{3,6})\b", css))
    lightest_dark = "#1b2a3a"  # the header
    assert lightest_dark in backgrounds and "#eef1f4" in backgrounds
    for colour in colours - {"#fff"}:
        assert _contrast(colour, "#eef1f4") >= 4.5, colour
    assert _contrast("#fff", lightest_dark) >= 4.5


async def test_what_triggered_it_and_the_shadow_rules_are_shown() -> None:
    records = _history(40)
    held = [i for i, r in enumerate(records) if r.action == "held"]
    pushed_at = held[len(held) // 2]
    trigger = {
        "type": "event",
        "kind": "azure-monitor-alert",
        "endpoint": "alerts",
        "id": "a-1",
        "source": "cpu-alert",
        "summary": "CPU above 80",
        "values": {"demand": 120.0},
    }
    shadow = {
        "rules": "rules/candidate.toml",
        "recommended": 7,
        "desired": 7,
        "not_scaled_reason": None,
        "steps": [{"code": "recommended", "before": 3, "after": 7, "detail": "'x' proposes 7"}],
    }
    records[pushed_at] = replace(records[pushed_at], trigger=trigger, shadow=shadow)
    data = FakeData(records, [replace(INFO, last=records[-1])])
    client = await _client(data)
    try:
        page = await (await client.get("/targets/api", params={"window": "1h"})).text()
        row = re.search(
            rf'<li class="decision held" data-id="{records[pushed_at].id}">.*?</li>', page
        )
        assert row is not None and "\u26a1 event" in row.group(0)  # its own row, not folded
        shown = await (await client.get(f"/decisions/{records[pushed_at].id}")).text()
        assert (
            "Triggered by:</strong> event azure-monitor-alert \u201cCPU above 80\u201d from "
            "cpu-alert at /events/alerts; values demand=120" in shown
        )
        assert "Shadow rules" in shown and "would decide 7" in shown
        plain = await (await client.get(f"/decisions/{records[pushed_at - 1].id}")).text()
        assert "Triggered by" not in plain and "Shadow rules" not in plain
    finally:
        await client.close()
