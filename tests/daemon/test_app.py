"""The daemon in-process: run once, dry run, reload with good and bad configs, the HTTP
endpoints, and the metrics parsed with the Prometheus text parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scalerd.actuators.recording import RecordingActuator
from scalerd.daemon.app import Daemon

from .build import replay_target, write_config

BODY = replay_target((90, 90, 10, 10), initial=2, interval="200ms", maximum=10)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with Daemon(write_config(tmp_path, BODY)) as running:
        yield running


def _pool(daemon: Daemon) -> RecordingActuator:
    actuator = daemon.runtimes["api"].actuator
    assert isinstance(actuator, RecordingActuator)
    return actuator


async def test_run_once_evaluates_acts_and_audits(daemon: Daemon, tmp_path: Path) -> None:
    (record,) = await daemon.run_once()
    assert (record.action, record.desired) == ("scaled", 6)  # 90/10 = 9, limited to max(2 + 4, 4)
    assert [call.desired for call in _pool(daemon).calls] == [6]
    records = await daemon.audit_log.read()
    assert [r.id for r in records] == [record.id]
    assert (tmp_path / "audit" / "audit.jsonl").exists()


async def test_dry_run_never_writes_to_the_actuator(tmp_path: Path) -> None:
    async with Daemon(write_config(tmp_path, BODY), dry_run=True) as daemon:
        (record,) = await daemon.run_once()
        assert (record.action, record.dry_run, record.desired) == ("dry-run", True, 6)
        assert _pool(daemon).calls == []


async def _serve(daemon: Daemon) -> tuple[asyncio.Task[None], str]:
    task = asyncio.create_task(daemon.serve())
    while daemon.listening_on is None:
        await asyncio.sleep(0.01)
    host, port = daemon.listening_on
    return task, f"http://{host}:{port}"


async def _stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    daemon.stop()
    await asyncio.wait_for(task, 10)


async def test_http_endpoints(daemon: Daemon) -> None:
    task, url = await _serve(daemon)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).json() == {"status": "alive"}
            for _ in range(100):  # until the first evaluation is in the audit
                decisions = (await http.get("/api/decisions", params={"target": "api"})).json()[
                    "decisions"
                ]
                if decisions:
                    break
                await asyncio.sleep(0.05)
            assert decisions[0]["target"] == "api" and decisions[0]["action"] == "scaled"
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["targets"]["api"]["fresh"]
            targets = (await http.get("/api/targets")).json()["targets"]
            assert targets[0]["name"] == "api" and "track demand at 10 (total)" in " ".join(
                targets[0]["rules"]
            )

            assert (await http.get("/api/decisions", params={"target": "nope"})).status_code == 404
            bad_limit = await http.get("/api/decisions", params={"limit": "many"})
            assert (bad_limit.status_code, bad_limit.json()["error"]) == (
                400,
                "limit must be a whole number",
            )
            assert (await http.get("/api/decisions", params={"limit": "0"})).status_code == 400

            page = await http.get("/")
            assert page.headers["content-type"].startswith("text/html")
            assert 'data-target="api"' in page.text and "recording pool" in page.text
            assert ">scaled</a>" in page.text

            metrics = (await http.get("/metrics")).text
            families = {family.name: family for family in text_string_to_metric_families(metrics)}
            assert {
                "scalerd_decisions",
                "scalerd_tick_duration_seconds",
                "scalerd_target_desired_capacity",
                "scalerd_source_read_seconds",
                "scalerd_audit_backlog",
            } <= set(families)
            desired = [
                s
                for s in families["scalerd_target_desired_capacity"].samples
                if s.labels == {"target": "api"}
            ]
            assert desired and desired[0].value >= 6
    finally:
        await _stop(daemon, task)


async def test_controls_pause_and_override(daemon: Daemon) -> None:
    task, url = await _serve(daemon)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            paused = await http.post(
                "/api/targets/api/controls", json={"pause": "all", "pause_for": "10m"}
            )
            assert paused.status_code == 200 and paused.json()["controls"]["pause"] == "all"
            calls = len(_pool(daemon).calls)
            await asyncio.sleep(0.6)
            assert len(_pool(daemon).calls) == calls  # paused: no more changes
            last = daemon.runtimes["api"].last_record
            assert last is not None and last.not_scaled_reason == "Paused"

            override = await http.post(
                "/api/targets/api/controls", json={"override": 3, "override_for": "1m"}
            )
            assert override.status_code == 200
            # a control the body does not name stays: the override left the pause alone
            assert override.json()["controls"]["pause"] == "all"
            resumed = await http.post("/api/targets/api/controls", json={"pause": None})
            assert resumed.json()["controls"]["pause"] is None
            assert resumed.json()["controls"]["override"] == 3
            for problem, body in [
                ("pause must be", {"pause": "sometimes"}),
                ("override must be", {"override": -1}),
                ("unknown keys", {"pasue": "all"}),
                ("must be longer than 0s", {"pause": "all", "pause_for": "0s"}),
                ("invalid duration", {"pause": "all", "pause_for": "soon"}),
                ("pause_for needs pause", {"pause_for": "10m"}),
            ]:
                response = await http.post("/api/targets/api/controls", json=body)
                assert response.status_code == 400 and problem in response.json()["error"], (
                    response.text
                )
            assert (
                await http.post("/api/targets/api/controls", content=b"{not json")
            ).status_code == 400
            assert (await http.post("/api/targets/nope/evaluate")).status_code == 404
            assert (await http.post("/api/targets/api/evaluate")).status_code == 202
    finally:
        await _stop(daemon, task)


async def test_reload_keeps_state_and_rejects_a_broken_config(daemon: Daemon) -> None:
    path = daemon.config_path
    await daemon.run_once()
    before = daemon.runtimes["api"].stored
    assert before.state.events  # a scale happened: rate limits remember it

    path.write_text(path.read_text().replace("max = 10", "max = 12"))
    assert await daemon.reload()
    assert daemon.config.targets[0].spec.rule.maximum == 12
    assert daemon.runtimes["api"].stored == before  # same identity: same memory
    assert daemon.readiness()["reload"]["ok"] is True

    valid = path.read_text()
    line = valid.splitlines().index("max = 12") + 1
    for broken, problem in [
        (
            'max = "twelve"',
            f"config.toml:{line}: targets[0].max: must be an integer (got 'twelve')",
        ),
        ("max = twelve", f"config.toml:{line}: TOML syntax error"),
    ]:
        path.write_text(valid.replace("max = 12", broken))
        assert not await daemon.reload()
        assert daemon.config.targets[0].spec.rule.maximum == 12  # the old config keeps running
        readiness = daemon.readiness()
        assert readiness["ready"] is False
        assert problem in readiness["reload"]["error"]

    path.write_text(valid.replace('name = "api"', 'name = "web"'))
    assert await daemon.reload()
    assert set(daemon.runtimes) == {"web"}
    assert daemon.runtimes["web"].stored.state.events == ()  # a new identity starts afresh


async def test_reload_keeps_unchanged_plugins(daemon: Daemon) -> None:
    pool = _pool(daemon)
    path = daemon.config_path
    path.write_text(path.read_text().replace("max = 10", "max = 11"))
    assert await daemon.reload()
    assert _pool(daemon) is pool  # e.g. a process pool keeps its workers
    path.write_text(path.read_text().replace("initial = 2", "initial = 3"))
    assert await daemon.reload()
    assert _pool(daemon) is not pool


async def test_a_changed_config_file_is_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scalerd.daemon.app

    monkeypatch.setattr(scalerd.daemon.app, "CONFIG_POLL_S", 0.05)
    path = write_config(tmp_path, BODY)
    path.write_text(path.read_text().replace("watch_config = false", "watch_config = true"))
    async with Daemon(path) as daemon:
        task, _ = await _serve(daemon)
        try:
            await asyncio.sleep(0.1)
            path.write_text(path.read_text().replace("max = 10", "max = 7"))
            for _ in range(100):
                if daemon.config.targets[0].spec.rule.maximum == 7:
                    break
                await asyncio.sleep(0.05)
            assert daemon.config.targets[0].spec.rule.maximum == 7
            assert daemon.reload_status is not None and daemon.reload_status.ok
        finally:
            await _stop(daemon, task)
