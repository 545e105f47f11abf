"""ProcGenie: the API and web front end (``rules/procgenie-api.toml``,
``rules/procgenie-web.toml``) and the PostgreSQL and Redis ladders
(``examples/seeds/procgenie/postgres.toml``, ``redis.toml``), as
``examples/seeds/procgenie/config.toml`` wires them, each replayed on the shared trace."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from scalerd.traces import Trace
from seeds.helpers import SEEDS, actions, check, replay, shared_trace

CONFIG = SEEDS / "procgenie" / "config.toml"


def _two_days() -> Trace:
    """The shared day played twice: the ladders' nightly window comes after a busy day."""
    return Trace.from_values(list(shared_trace().values) * 2, shared_trace().step)


def test_the_config_and_its_rule_files_load() -> None:
    out = check(CONFIG)
    assert "6 sources, 4 actuators, 4 targets" in out
    assert "Standard_D2ds_v4 -> Standard_D4ds_v4 -> Standard_D8ds_v4" in out
    assert "ladder: Premium P1 x1 -> Premium P1 x2 -> Premium P2 x2 -> Premium P2 x3" in out
    for name in ("postgres", "redis"):
        check(SEEDS / "procgenie" / f"{name}.toml", rule_file=True)


def test_the_api_waits_5_minutes_between_scale_ins_and_a_minute_before_growing() -> None:
    run = replay(CONFIG, target="api", peak_replicas=24)
    timeline = run.timeline
    changes = actions(timeline)

    assert timeline.metric_failures == 0
    assert run.within_bounds()
    assert (min(timeline.provisioned), max(timeline.provisioned)) == (2, 20)
    ins = [change for change in changes if change.after < change.before]
    assert len(ins) > 5
    assert all(b.seconds - a.seconds >= 300 for a, b in pairwise(ins))
    # the 60 s scale-up window: a rise never goes past the lowest recommendation of the
    # last 45 s (three 15 s ticks back, all inside the window)
    for change in changes:
        if change.after > change.before and change.tick >= 3:
            window = timeline.recommended[change.tick - 3 : change.tick + 1]
            assert change.after <= min(window), change


def test_the_web_front_end_stays_within_2_to_10() -> None:
    run = replay(CONFIG, target="web", peak_replicas=12)

    assert run.timeline.metric_failures == 0
    assert run.within_bounds()
    assert max(run.timeline.provisioned) == 10


def test_postgres_climbs_its_skus_in_order_and_shrinks_only_at_night() -> None:
    run = replay(CONFIG, target="postgres", trace=_two_days(), scale=0.2)
    timeline = run.timeline
    changes = actions(timeline)
    assert timeline.units is not None and timeline.tier_units == (2.0, 4.0, 8.0, 16.0, 32.0)

    assert timeline.metric_failures == 0
    # one SKU at a time: D2ds, D4ds, D8ds, D16ds, D32ds
    assert all(abs(c.after - c.before) == 1 for c in changes)
    assert [c.after for c in changes if c.after > c.before][:4] == [2, 3, 4, 5]
    assert list(dict.fromkeys(timeline.units))[:5] == list(timeline.tier_units)
    # no change starts while the last is in flight (10 minutes)
    assert all(b.seconds - a.seconds >= 10 * 60 for a, b in pairwise(changes))
    # a shrink restarts the server: only inside the 01:00-05:00 UTC window
    downs = [c for c in changes if c.after < c.before]
    assert downs
    assert all(1 <= run.at(c.tick).hour < 5 for c in downs)
    # each change ends with the server down (serving nothing) for its last minute
    for change in changes:
        done = change.tick + 10  # ten 1-minute ticks later
        assert timeline.ready[done - 1] == 0, change
        assert timeline.ready[done] == change.after, change


def test_redis_adds_a_shard_or_a_size_one_step_at_a_time() -> None:
    run = replay(CONFIG, target="redis", trace=_two_days(), scale=0.4)
    timeline = run.timeline
    changes = actions(timeline)
    assert timeline.tier_units == (6, 12, 26, 39)  # GB: P1 x1, P1 x2, P2 x2, P2 x3

    assert timeline.metric_failures == 0
    assert [c.after for c in changes][:3] == [2, 3, 4]
    assert all(abs(c.after - c.before) == 1 for c in changes)
    assert any(c.after < c.before for c in changes)  # and back down when quiet
    # Premium keeps serving while it scales
    assert min(timeline.ready) >= 1
    assert all(
        b.seconds - a.seconds >= timedelta(minutes=20).total_seconds() for a, b in pairwise(changes)
    )
