"""``[[notify]]`` is validated like the rest of the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from events.build import config_text

from scalerd.config import load_config
from scalerd.errors import ConfigError

SINK = '\n[[notify]]\nname = "hook"\nkind = "webhook"\nurl_env = "U"\nsecret_env = "K"\n'


def test_a_sink_loads_with_every_notice_selected(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(extra=SINK))
    (hook,) = load_config(path).notify.values()
    assert hook.wants("web", "restart_started") and hook.wants("web", "at_max")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('targets = ["nobody"]\n', "notify[0].targets: target 'nobody' is not defined"),
        ('on = ["scaled", "sometimes"]\n', "notify[0].on[1]: must be 'scaled', 'failed'"),
        ("", None),
    ],
)
def test_problems_name_the_key(tmp_path: Path, extra: str, message: str | None) -> None:
    path = tmp_path / "config.toml"
    text = (
        config_text(extra=SINK + extra)
        if extra
        else config_text(extra=SINK.replace('secret_env = "K"\n', ""))
    )
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = [str(issue) for issue in caught.value.issues]
    assert (message or "notify[0].secret_env: missing required key") in problem
