"""``[cluster]``: defaults, and errors that name the file, line and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scalerd.config import load_config
from scalerd.errors import ConfigError

BASE = """\
[[sources]]
name = "load"
kind = "replay"
values = [1.0]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"

[[targets]]
name = "web"
actuator = "pool"
min = 1
max = 5
[[targets.track]]
metric = "load"
type = "total"
target = 1
"""


def test_defaults_renew_at_a_third_of_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[cluster]\nlease_ttl = "9s"\n' + BASE)
    cluster = load_config(path).cluster
    assert (cluster.name, cluster.shards, cluster.instance) == ("scalerd", 64, None)
    assert cluster.renew_period == timedelta(seconds=3)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            'lease_ttl = "2s"\nrenew_every = "2s"',
            "config.toml:1: cluster: renew_every must be longer than 0s and shorter than lease_ttl",
        ),
        ("shards = 0", "config.toml:2: cluster.shards: must be greater than or equal to 1 (got 0)"),
        ('name = "a b"', "config.toml:2: cluster.name: String should match pattern"),
    ],
)
def test_bad_cluster_settings_name_the_line(tmp_path: Path, section: str, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[cluster]\n{section}\n" + BASE)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).removeprefix(f"{tmp_path}/").startswith(problem), str(error.value)
