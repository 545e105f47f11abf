"""/metrics as KEDA users expect: each metric's value and the rules' targets per target,
failed evaluations by cause, and scale actions by direction; a removed target leaves no
series behind. Evaluations run with ``run_once`` (no waiting); the text is parsed with
Prometheus's own parser."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from scalerd.daemon.app import Daemon

from .build import write_config

BODY = """
[[sources]]
name = "demand"
kind = "replay"
values = [45, 5]
step = "1s"

[[sources]]
name = "broken"
kind = "http-json"
url = "http://127.0.0.1:9/never"
path = "value"
timeout = "200ms"

[[actuators]]
name = "pool"
kind = "recording"
initial = 2

[[targets]]
name = "api"
actuator = "pool"
max = 10
[[targets.track]]
metric = "demand"
type = "total"
target = 10
[[targets.threshold]]
when = "demand > 40 avg 1m"
action = "+1"

[[actuators]]
name = "other"
kind = "recording"
initial = 1

[[targets]]
name = "flaky"
actuator = "other"
max = 3
[[targets.track]]
metric = "broken"
type = "total"
target = 5
"""


def _samples(daemon: Daemon) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = daemon.metrics.render().decode()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_metric_values_targets_failures_and_directions(tmp_path: Path) -> None:
    config = write_config(tmp_path, BODY)
    async with Daemon(config) as daemon:
        await daemon.run_once()
        samples = _samples(daemon)
        assert ({"target": "api", "metric": "demand"}, 45.0) in samples["scalerd_metric_value"]
        targets = {
            (labels["target"], labels["metric"], labels["rule"]): value
            for labels, value in samples["scalerd_metric_target"]
        }
        assert targets == {
            ("api", "demand", "demand total target 10"): 10.0,  # the track's target
            ("api", "demand", "demand > 40 avg 1m => +1"): 40.0,  # the threshold's
            ("flaky", "broken", "broken total target 5"): 5.0,
        }
        # the failed read has no value, and counts as a failed evaluation of its target
        assert not [s for s in samples["scalerd_metric_value"] if s[0]["target"] == "flaky"]
        failures = {
            (labels["target"], labels["cause"]): value
            for labels, value in samples["scalerd_failed_evaluations"]
        }
        assert failures == {("flaky", "metric"): 1.0}
        actions = {
            (labels["target"], labels["direction"]): value
            for labels, value in samples["scalerd_scale_actions"]
        }
        assert actions == {("api", "up"): 1.0}  # 2 -> 5

        # a reload that drops a target drops its series
        config.write_text(config.read_text().split('[[actuators]]\nname = "other"')[0])
        assert await daemon.reload()
        samples = _samples(daemon)
        for name in ("scalerd_metric_value", "scalerd_metric_target"):
            assert {labels["target"] for labels, _ in samples[name]} == {"api"}, name
