"""The SQLite state store: group commit, write-ahead, the import of a state file, and
``kill -9`` through the real tick with no change lost or repeated."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from crash import kill_9_after

from scalerd.audit import MemorySink
from scalerd.clock import ManualClock
from scalerd.config import load_config
from scalerd.core import Capacity, Decision, ScaleEvent, TargetState
from scalerd.core.model import BreakerState, Recommendation, Sample
from scalerd.daemon.app import Daemon
from scalerd.daemon.metrics import DaemonMetrics
from scalerd.daemon.outage import Outage
from scalerd.daemon.sqlite_state import SqliteStateStore, encode_row
from scalerd.daemon.state import (
    FileStateStore,
    InFlight,
    StateError,
    StoredTarget,
    decode_document,
    encode_stored,
)
from scalerd.daemon.state_codec import FORMAT, ROW_FORMAT, EncodedRuns, encode_row_state
from scalerd.daemon.tick import TargetRuntime, TickContext, evaluate, recover_pending
from scalerd.files import replace_atomically
from scalerd.plugins import Applied, BuildContext
from scalerd.sources import SOURCES

from .build import replay_target, write_config
from .test_state import rich_state, stored

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


async def test_saves_that_arrive_together_commit_together(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    await store.load_all()  # opened: the schema is its own transaction
    await asyncio.gather(*(store.save(f"target-{n}", stored(n)) for n in range(500)))
    # the first save starts a commit; the 499 that arrive while it runs share the next
    assert store.commits <= 2
    assert len(await store.load_all()) == 500
    await store.aclose()


async def test_a_save_is_committed_when_it_returns(tmp_path: Path) -> None:
    """Write-ahead: what another process reads right after ``save`` returns."""
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    await store.save("web", stored(7))
    with sqlite3.connect(path) as other:
        (document,) = other.execute("SELECT document FROM targets WHERE name = 'web'").fetchone()
    assert json.loads(document)["state"]["consecutive_failures"] == 7
    assert json.loads(document)["pending"] is not None  # the change in flight, written ahead
    await store.aclose()


async def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    await store.load_all()
    with sqlite3.connect(tmp_path / "state.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert await store.pragmas() == {"journal_mode": "wal", "synchronous": "FULL"}
    await store.aclose()


async def test_a_database_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await SqliteStateStore(path).aclose()
    store = SqliteStateStore(path)
    await store.save("web", stored())
    await store.aclose()
    with sqlite3.connect(path) as other:
        other.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    store = SqliteStateStore(path)
    with pytest.raises(
        StateError, match=f"state format 99, this scalerd reads formats {FORMAT} and {ROW_FORMAT}"
    ):
        await store.load_all()
    await store.aclose()


async def test_a_file_that_is_not_a_database_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text('{"format": 1, "targets": {}}')
    store = SqliteStateStore(path)
    with pytest.raises(StateError, match="not a state database") as raised:
        await store.load_all()
    assert str(path) in str(raised.value)
    await store.aclose()


@pytest.mark.parametrize(
    "kept",
    [
        pytest.param(stored(), id="every-field"),
        pytest.param(StoredTarget(), id="empty"),
        pytest.param(
            StoredTarget(
                operation=InFlight("op-1", '{"url": "x"}', T0, 2, 3, 60.0, "P2", ("restarts",))
            ),
            id="in-flight",
        ),
    ],
)
def test_a_row_is_the_codec_s_json(kept: StoredTarget) -> None:
    """The row has the codec's JSON, its datetimes written by orjson
    (a field added to one and not the other fails here)."""
    assert json.loads(encode_row(kept)) == json.loads(json.dumps(_row_document(kept)))


def _row_document(kept: StoredTarget) -> dict[str, object]:
    """The codec's stored target with its state as a row holds it."""
    return {**encode_stored(kept), "state": encode_row_state(kept.state)}


def test_a_row_s_runs_are_arrays_of_microseconds_and_half_the_bytes() -> None:
    """What a row is for: the runs, which move on at every save, take half the bytes of
    the codec's objects with their times as text, and read back as exactly the instants
    saved (microseconds, a time zone other than UTC)."""
    zone = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 11, 22, 15, 30, 0, 123457, tzinfo=zone)
    state = TargetState(
        samples={"cpu": tuple(Sample(at + timedelta(seconds=15 * n), 50.0 + n) for n in range(20))},
        recommendations=tuple(Recommendation(at + timedelta(seconds=15 * n), 4) for n in range(20)),
        events=(ScaleEvent(at, 3, 4),),
    )
    row = json.loads(encode_row(StoredTarget(state)))
    assert row["state"]["samples"]["cpu"][0] == [1795341600123457, 50.0]
    assert row["state"]["recommendations"][1] == [1795341615123457, 4]
    assert row["state"]["events"] == [[1795341600123457, 3, 4]]
    as_objects = len(json.dumps(encode_stored(StoredTarget(state)), separators=(",", ":")))
    assert len(encode_row(StoredTarget(state))) < 0.6 * as_objects
    decoded = decode_document(row, "row", row=True).state
    assert decoded == state and decoded.samples["cpu"][0].at.tzinfo is UTC


@pytest.mark.parametrize(
    ("runs", "problem"),
    [
        ({"samples": {"cpu": [["1795341600123457", 1.0]]}}, "integer"),
        ({"samples": {"cpu": [[1795341600123457.0, 1.0]]}}, "integer"),
        ({"samples": {"cpu": [[1795341600123457]]}}, "2 values"),
        ({"recommendations": [[1795341600123457, 3, 4]]}, "2 values"),
        ({"events": [[]]}, "IndexError"),
        ({"samples": {"cpu": [{"at": "2026-11-22T10:00:00+00:00", "value": 1.0}]}}, "KeyError"),
    ],
)
def test_a_row_with_a_damaged_point_is_an_error_naming_it(
    runs: dict[str, object], problem: str
) -> None:
    document = _row_document(StoredTarget())
    document["state"] = {**document["state"], **runs}  # type: ignore[dict-item]
    with pytest.raises(StateError, match=f"state.db: web: .*{problem}"):
        decode_document(document, "state.db: web", row=True)


def _windows(seed: int) -> list[TargetState]:
    """States as the core moves them on: points added at the back, old ones dropped at
    the front (the same objects), now and then a window re-sorted (equal, new objects),
    emptied, or a metric gone."""
    rng = random.Random(seed)
    state = rich_state()
    states = [state]
    at = T0
    for step in range(200):
        at += timedelta(seconds=15)
        samples = dict(state.samples)
        for metric in ("cpu", "queue depth", "latency"):
            kept = samples.get(metric, ())[rng.randrange(3) :]
            samples[metric] = (*kept, *(Sample(at, rng.random()) for _ in range(rng.randrange(3))))
        if step % 17 == 5:
            samples["cpu"] = tuple(Sample(s.at, s.value) for s in samples["cpu"])
        if step % 23 == 7:
            samples.pop("latency")
        if step % 29 == 3:
            samples["queue depth"] = ()
        recommendations = (*state.recommendations[rng.randrange(2) :], Recommendation(at, step))
        events = state.events if step % 11 else (*state.events, ScaleEvent(at, step, step + 1))
        state = replace(state, samples=samples, recommendations=recommendations, events=events)
        states.append(state)
    return states


@pytest.mark.parametrize("seed", range(3))
def test_a_row_written_from_what_it_wrote_before_is_the_codec_s_json(seed: int) -> None:
    """A target's rows are written through its EncodedRuns, which re-encodes only the
    points added since its last save: each row still is the codec's JSON, and reads back
    as the state saved."""
    runs = EncodedRuns()
    for state in _windows(seed):
        kept = StoredTarget(state, last_record_id="r")
        row = encode_row(kept, runs)
        assert json.loads(row) == json.loads(json.dumps(_row_document(kept)))
        assert decode_document(json.loads(row), "row", row=True).state == state


def _row_as_orjson_writes_the_codec(kept: StoredTarget) -> bytes:
    """The row as scalerd wrote it before rows were joined from remembered runs: orjson's
    encoding of the codec's objects, their datetimes passed to orjson as they are."""
    document = encode_stored(kept)
    document["state"] = encode_row_state(kept.state, time=lambda at: at)
    return orjson.dumps(document)


def _moving(seed: int) -> list[TargetState]:
    """:func:`_windows`, and now and then the rest of the state changed: a cooldown and
    the failures counted, controls equal to the last ones but new objects, a breaker."""
    states = []
    for step, state in enumerate(_windows(seed)):
        if step % 13 == 6:
            until = T0 + timedelta(seconds=step)
            state = replace(state, consecutive_failures=step % 4, scale_out_cooldown_until=until)
        if step % 19 == 9:
            state = replace(state, controls=replace(state.controls))
        if step % 31 == 15:
            state = replace(state, breakers={**state.breakers, "x": BreakerState(True, T0)})
        states.append(state)
    return states


@pytest.mark.parametrize("seed", range(4))
def test_a_row_is_byte_for_byte_what_orjson_writes_of_the_codec_s_objects(seed: int) -> None:
    """The runs, the rest of the state and the stored target's own fields are joined as
    orjson would have written them in one call (the bytes, not just their meaning), and
    the row is what the target's EncodedRuns keeps (not a copy of it beside)."""
    runs = EncodedRuns()
    pending = stored().pending
    in_flight = InFlight("op-1", '{"url": "x"}', T0, 2, 3, 60.0, "P2", ("restarts",))
    for step, state in enumerate(_moving(seed)):
        kept = StoredTarget(
            state,
            pending=pending if step % 7 == 1 else None,
            last_record_id=None if step % 5 == 2 else f"r{step}",
            operation=in_flight if step % 9 == 4 else None,
        )
        row = encode_row(kept, runs)
        assert row == _row_as_orjson_writes_the_codec(kept)
        assert runs._text is row
    # the same instant in two time zones is written with each one's offset
    later = T0.astimezone(timezone(timedelta(hours=1)))
    zones = TargetState(samples={"cpu": (Sample(later, 1.0), Sample(T0, 2.0), Sample(later, 3.0))})
    for kept in (
        stored(),
        StoredTarget(),
        StoredTarget(TargetState(samples={'a"b': ()})),
        StoredTarget(zones),
    ):
        assert encode_row(kept) == _row_as_orjson_writes_the_codec(kept)


def test_a_state_that_cannot_be_written_leaves_what_was_remembered() -> None:
    """A save that fails half way (a value JSON does not know, found after the samples
    were written) leaves the target's EncodedRuns as it was: the rows after it are exact."""
    runs = EncodedRuns()
    states = _windows(0)[:6]
    encode_row(StoredTarget(states[0]), runs)
    odd = Recommendation(T0, object())  # type: ignore[arg-type]
    bad = replace(states[1], recommendations=(*states[1].recommendations, odd))
    with pytest.raises(TypeError):
        encode_row(StoredTarget(bad), runs)
    for state in states[1:]:
        kept = StoredTarget(state)
        assert encode_row(kept, runs) == _row_as_orjson_writes_the_codec(kept)


async def test_a_target_removed_by_a_reload_is_forgotten(tmp_path: Path) -> None:
    """The JSON remembered for a target's rows goes with the target; the store keeps the
    rows of those still configured, and what a renamed target's row held stays on disk."""
    body = replay_target((90, 90, 10), initial=2, maximum=10)
    web = body[body.index("[[targets]]") :].replace('name = "api"', 'name = "web"')
    web = web.replace('actuator = "pool"', 'actuator = "pool-web"')
    web = '[[actuators]]\nname = "pool-web"\nkind = "recording"\ninitial = 2\n\n' + web
    path = write_config(tmp_path, body + web)
    async with Daemon(path, clock=ManualClock(T0)) as daemon:
        assert isinstance(daemon.store, SqliteStateStore)
        await daemon.run_once()
        assert set(daemon.store._runs) == {"api", "web"}
        remembered = daemon.store._runs["api"]
        path.write_text(body)
        assert await daemon.reload()
        assert set(daemon.store._runs) == {"api"}
        assert daemon.store._runs["api"] is remembered  # a target kept keeps its JSON
        await daemon.run_once()
        assert set(daemon.store._runs) == {"api"}
        assert set(await daemon.store.load_all()) == {"api", "web"}


def test_a_metric_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="string"):
        encode_row(StoredTarget(TargetState(samples={1: (Sample(T0, 1.0),)})))  # type: ignore[dict-item]


def test_a_naive_time_is_refused_before_it_is_written() -> None:
    naive = replace(rich_state(), last_active_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        encode_row(StoredTarget(naive))


# --- a database of the earlier row format -------------------------------------------------


async def test_a_database_of_format_1_is_converted_on_opening(tmp_path: Path) -> None:
    """The rows an earlier scalerd wrote (the codec's objects, times as text) read back as
    they were, are rewritten in this format in the opening transaction, and are not
    converted again."""
    path = tmp_path / "state.db"
    kept = {"web": stored(3), "orders-db": StoredTarget(rich_state(), last_record_id="r9")}
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        old.execute("CREATE TABLE targets (name TEXT PRIMARY KEY, document BLOB NOT NULL)")
        old.execute("INSERT INTO meta VALUES ('format', '1'), ('imported_from', '')")
        old.executemany(
            "INSERT INTO targets VALUES (?, ?)",
            [(name, orjson.dumps(encode_stored(each))) for name, each in kept.items()],
        )
    old.close()
    store = SqliteStateStore(path)
    assert await store.load_all() == kept
    await store.aclose()
    with sqlite3.connect(path) as after:
        assert after.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == ("2",)
        rows = dict(after.execute("SELECT name, document FROM targets").fetchall())
    after.close()
    assert rows == {name: encode_row(each) for name, each in kept.items()}
    again = SqliteStateStore(path)
    assert await again.load_all() == kept
    await again.aclose()


async def test_a_damaged_row_of_format_1_stops_the_conversion_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        old.execute("CREATE TABLE targets (name TEXT PRIMARY KEY, document BLOB NOT NULL)")
        old.execute("INSERT INTO meta VALUES ('format', '1')")
        old.execute(
            "INSERT INTO targets VALUES ('web', ?)", (orjson.dumps(encode_stored(stored())),)
        )
        old.execute("INSERT INTO targets VALUES ('api', ?)", (b'{"state": {}}',))
    old.close()
    store = SqliteStateStore(path)
    with pytest.raises(StateError, match=r"state\.db: api"):
        await store.load_all()
    await store.aclose()
    with sqlite3.connect(path) as after:
        assert after.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == ("1",)
        web = after.execute("SELECT document FROM targets WHERE name = 'web'").fetchone()[0]
    after.close()
    assert web == orjson.dumps(encode_stored(stored()))


# --- the import of a FileStateStore document ----------------------------------------------


async def test_a_state_file_is_imported_once_and_kept_as_a_backup(tmp_path: Path) -> None:
    legacy = tmp_path / "state" / "state.json"
    old = FileStateStore(legacy)
    await old.save("web", stored(3))
    await old.save("orders-db", StoredTarget(TargetState(consecutive_failures=1)))
    backup = legacy.read_bytes()

    database = tmp_path / "state" / "state.db"
    store = SqliteStateStore(database, legacy_path=legacy)
    assert await store.load_all() == {
        "web": stored(3),
        "orders-db": StoredTarget(TargetState(consecutive_failures=1)),
    }
    await store.save("web", stored(4))
    await store.aclose()
    assert legacy.read_bytes() == backup  # left as it was

    # the next start does not import again, even if the old file changed meanwhile
    await FileStateStore(legacy).save("web", stored(99))
    again = SqliteStateStore(database, legacy_path=legacy)
    assert (await again.load_all())["web"] == stored(4)
    await again.aclose()


async def test_a_damaged_state_file_stops_the_import_and_imports_nothing(tmp_path: Path) -> None:
    legacy = tmp_path / "state.json"
    legacy.write_text('{"format": 1, "targets": {"web": {"state": {}}}}')
    database = tmp_path / "state.db"
    store = SqliteStateStore(database, legacy_path=legacy)
    with pytest.raises(StateError, match=r"state\.json: web"):
        await store.load_all()
    await store.aclose()

    await FileStateStore(legacy).save("web", stored())  # repaired: imported on the next start
    store = SqliteStateStore(database, legacy_path=legacy)
    assert await store.load_all() == {"web": stored()}
    await store.aclose()


async def test_without_a_state_file_there_is_nothing_to_import(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db", legacy_path=tmp_path / "missing.json")
    assert await store.load_all() == {}
    await store.aclose()


# --- kill -9 through the real tick --------------------------------------------------------

TARGETS = 8
PERIOD = timedelta(minutes=10)  # rate-limit periods: the state keeps 10 min of scale events

CRASH_CONFIG = "".join(
    [
        """
[[sources]]
name = "demand"
kind = "replay"
values = [10, 40]
step = "60s"
"""
    ]
    + [
        f"""
[[actuators]]
name = "pool-{n}"
kind = "recording"

[[targets]]
name = "t{n}"
actuator = "pool-{n}"
interval = "60s"
max = 20
[[targets.track]]
metric = "demand"
type = "total"
target = 5
[targets.behavior.scale_up]
policies = [{{ type = "pods", value = 100, period = "10m" }}]
[targets.behavior.scale_down]
stabilization_window = "0s"
policies = [{{ type = "percent", value = 100, period = "10m" }}]
"""
        for n in range(TARGETS)
    ]
)


class Infrastructure:
    """The scaled thing, outside the process: every change that landed, in one file
    replaced atomically (a change lands, or it does not)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def history(self) -> list[list[object]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    async def current(self) -> Capacity:
        history = self.history()
        return Capacity.steady(int(str(history[-1][2])) if history else 1)

    async def apply(self, decision: Decision) -> Applied:
        time.sleep(0.002)  # a real API takes a while: the kill may land during the call
        change = [decision.at.isoformat(), decision.current.provisioned, decision.desired]
        replace_atomically(self.path, json.dumps([*self.history(), change]).encode())
        return Applied()

    async def aclose(self) -> None:
        pass


async def restart(
    directory: Path, clock: ManualClock | None = None
) -> tuple[list[TargetRuntime], SqliteStateStore]:
    """What ``scalerd run`` does at start: load the state, settle changes in flight."""
    config = load_config(directory / "config.toml")
    store = SqliteStateStore(directory / "state" / "state.db")
    saved = await store.load_all()
    build = BuildContext(base_dir=directory, clock=clock or ManualClock(T0))
    runtimes = []
    for target in config.targets:
        runtime = TargetRuntime(
            target=target,
            sources={
                metric: SOURCES.get(source.kind).build(source, build)
                for metric, source in target.sources.items()
            },
            source_names={metric: source.name for metric, source in target.sources.items()},
            source_timeouts={metric: 5.0 for metric in target.sources},
            actuator=Infrastructure(directory / "infra" / f"{target.name}.json"),
            stored=saved.get(target.name, StoredTarget()),
        )
        await recover_pending(runtime, store, MemorySink())
        runtimes.append(runtime)
    return runtimes, store


async def restarted(directory: Path) -> list[TargetRuntime]:
    runtimes, store = await restart(directory)
    await store.aclose()
    return runtimes


async def tick_until_killed(directory: Path) -> None:
    clock = ManualClock(T0)
    runtimes, store = await restart(directory, clock)
    latest = [r.at for runtime in runtimes for r in runtime.stored.state.recommendations]
    clock.advance(max(latest, default=T0) - T0)
    context = TickContext(
        clock=clock,
        audit=MemorySink(),
        store=store,
        metrics=DaemonMetrics(),
        instance="crash",
        config_version="v",
        dry_run=False,
        state_outage=Outage("state store", clock),
    )
    while True:
        clock.advance(timedelta(seconds=60))
        await asyncio.gather(*(evaluate(runtime, context) for runtime in runtimes))
        print(clock.now().isoformat(), flush=True)  # every target of this pass is saved


CHILD = """
import asyncio, sys
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # stdout: passes only
from tests.daemon.test_sqlite_state import tick_until_killed

asyncio.run(tick_until_killed(Path(sys.argv[1])))
"""


def test_kill_9_at_random_points_loses_and_repeats_no_change(tmp_path: Path) -> None:
    write_config(tmp_path, CRASH_CONFIG)
    rng = random.Random(9)
    for _ in range(3):  # three kills, each followed by a restart, on the same database
        # anywhere in a pass (8 targets: about 30 ms)
        acknowledged, _ = kill_9_after(
            CHILD, str(tmp_path), rng.randint(3, 25), then_wait=rng.uniform(0, 0.04)
        )
        runtimes = asyncio.run(restarted(tmp_path))
        last_pass = datetime.fromisoformat(acknowledged[-1])
        for runtime in runtimes:
            state = runtime.stored.state
            assert runtime.stored.pending is None  # settled at the restart
            # every pass that was acknowledged is in the state
            assert state.recommendations[-1].at >= last_pass
            landed = [
                ScaleEvent(datetime.fromisoformat(str(at)), int(str(b)), int(str(a)))
                for at, b, a in Infrastructure(
                    tmp_path / "infra" / f"{runtime.name}.json"
                ).history()
            ]
            # the state knows each change that landed, once, in order: it keeps the
            # last 10 minutes of them
            assert landed, "the demand alternates: every pass scales"
            kept = [event for event in landed if event.at > landed[-1].at - PERIOD]
            assert list(state.events) == kept
            # and the infrastructure saw each change once: one per pass at most
            assert len({event.at for event in landed}) == len(landed)


async def test_the_daemon_imports_the_state_file_of_an_earlier_version(tmp_path: Path) -> None:
    """Upgrading in place: the default [state] finds state/state.json and carries it over."""
    config = write_config(
        tmp_path,
        CRASH_CONFIG,
        header="[state]\n",  # every default
    )
    earlier = StoredTarget(TargetState(consecutive_failures=4), last_record_id="01a2-77")
    await FileStateStore(tmp_path / "state" / "state.json").save("t0", earlier)
    async with Daemon(config) as daemon:
        assert daemon.runtimes["t0"].stored == earlier
        assert daemon.runtimes["t1"].stored == StoredTarget()
    assert (tmp_path / "state" / "state.db").exists()
    assert (tmp_path / "state" / "state.json").exists()  # the backup
