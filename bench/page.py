"""The target page over a busy day: 10,000 decisions of one target in its 24 h window.

Three timings of the same records, in the same run, best of ``--repeat``:

- baseline: reading them back from the audit file and parsing them (what any page or
  ``scalerd audit`` pays first);
- render: the timeline and the HTML (chart, decision list) from the parsed records;
- request: ``GET /targets/busy?window=24h`` through aiohttp, read, parse and render.

    python bench/page.py [--decisions 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the working tree, installed or not
sys.path.insert(0, str(ROOT / "tests"))  # the history maker the page tests use

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from page_history import diurnal, make_history  # noqa: E402

from scalerd.audit import AuditRecord, JsonlAuditLog, read_jsonl  # noqa: E402
from scalerd.core.rules import MetricSpec, Rule, TargetSpec  # noqa: E402
from scalerd.web import TargetInfo, Threshold, add_page_routes, build_timeline  # noqa: E402
from scalerd.web.html import StreamStatus, render_target  # noqa: E402

RULE = {
    "interval": "5s",
    "max": 40,
    "track": [{"metric": "rps", "type": "total", "target": 50}],
    "behavior": {"scale_down": {"stabilization_window": "60s"}},
}


class FileData:
    """The page's data over an audit file, as the daemon serves it."""

    def __init__(self, log: JsonlAuditLog, info: TargetInfo, now: datetime) -> None:
        self.log, self.info, self._now = log, info, now

    def targets(self) -> Sequence[TargetInfo]:
        return [self.info]

    def now(self) -> datetime:
        return self._now

    async def read(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return await self.log.read(target=target, since=since, limit=limit)

    async def known(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return []

    def outage(self) -> tuple[datetime, str] | None:
        return None


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


async def request(data: FileData, repeat: int) -> tuple[float, int]:
    app = web.Application()
    add_page_routes(app, data)
    async with TestClient(TestServer(app)) as client:
        times, size = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            answer = await client.get("/targets/busy", params={"window": "24h"})
            body = await answer.read()
            times.append(time.perf_counter() - started)
            assert answer.status == 200, body[:300]
            size = len(body)
    return min(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    now = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    interval = timedelta(days=1) / args.decisions
    spec = TargetSpec(
        "busy", Rule.model_validate(RULE), {"rps": MetricSpec("rps", timedelta(minutes=1))}
    )
    made = time.perf_counter()
    records = make_history(
        spec, "rps", diurnal(1800), end=now, count=args.decisions, interval=interval
    )
    made = time.perf_counter() - made
    info = TargetInfo(
        "busy", "recording pool", 1, 40, 5.0, (Threshold("rps", "target 50 per replica", 50, True),)
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        path.write_text("".join(record.to_json() + "\n" for record in records))
        since = now - timedelta(hours=24)
        read_s, parsed = best(args.repeat, lambda: read_jsonl(path, target="busy", since=since))
        assert len(parsed) == args.decisions

        def render() -> str:
            timeline = build_timeline(parsed, info, since, now)
            return render_target(
                info,
                timeline,
                parsed,
                window="24h",
                action="",
                reason="",
                newest=parsed[-1].id,
                status=StreamStatus(),
            )

        render_s, html = best(args.repeat, render)
        request_s, size = asyncio.run(
            request(FileData(JsonlAuditLog(path), info, now), args.repeat)
        )

    scaled = sum(record.action == "scaled" for record in records)
    print(
        f"{args.decisions} decisions of one target over 24 h ({scaled} scaled), "
        f"made by the core in {made:.1f} s; best of {args.repeat}\n"
    )
    print(f"{'step':<48}{'seconds':>9}{'x baseline':>12}")
    print("-" * 69)
    rows = (
        ("baseline: read and parse the audit file", read_s),
        (f"render: timeline + HTML ({len(html) / 1e6:.2f} MB)", render_s),
        (f"request: GET /targets/busy?window=24h ({size / 1e6:.2f} MB)", request_s),
    )
    for label, seconds in rows:
        print(f"{label:<48}{seconds:>9.3f}{seconds / read_s:>12.2f}")


if __name__ == "__main__":
    main()
