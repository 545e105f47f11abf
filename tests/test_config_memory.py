"""What keeps a 10,000-target config small in memory (issue #9): targets that differ only
in their name and actuator share one validated rule (its nested models, its cached
properties) and their metric bindings, with nothing else changed: every target equals
what validating its entry alone gives, the config version is the same, and a problem in
an entry that has a valid twin is still reported at its file, line and key."""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scalerd import config as config_module
from scalerd.config import Config, TargetConfig, load_config
from scalerd.core.rules import Rule
from scalerd.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from config_load import generate


def _load_validating_every_entry(path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The config as the loader built it before: each entry validated on its own."""
    with monkeypatch.context() as patched:
        patched.setattr(
            config_module._TargetConfigs,
            "validate",
            lambda self, merged: config_module._validate(TargetConfig, merged),
        )
        return load_config(path)


def _varied(tmp_path: Path, count: int) -> Path:
    """The bench's config, with entries that differ beyond their names: a metrics mapping,
    an event gap, a cooldown written out, a rule file with a second override."""
    path = generate(tmp_path, count)
    text = path.read_text()
    text = text.replace(
        'name = "app-00003"\nactuator = "app-00003"\n',
        'name = "app-00003"\nactuator = "app-00003"\nmin_event_gap = "10s"\n',
    )
    text = text.replace(
        'name = "app-00004"\nactuator = "app-00004"\n',
        'name = "app-00004"\nactuator = "app-00004"\ncooldown = { up = "1m" }\n',
    )
    text = text.replace(
        'name = "app-00005"\nactuator = "app-00005"\nrules = "rules/shared.toml"\n',
        'name = "app-00005"\nactuator = "app-00005"\nrules = "rules/shared.toml"\nmin = 2\n',
    )
    text += '\n[[sources]]\nname = "cpu2"\nkind = "replay"\nvalues = [1]\nstep = "60s"\n'
    text = text.replace(
        'name = "app-00006"\nactuator = "app-00006"\n',
        'name = "app-00006"\nactuator = "app-00006"\nmetrics = { cpu = "cpu2" }\n',
    )
    path.write_text(text)
    return path


def test_targets_that_differ_only_in_name_share_their_validated_rule(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path, 200))
    inline = [target for target in config.targets if target.rule_file is None]
    included = [target for target in config.targets if target.rule_file is not None]
    assert len(inline) == len(included) == 100
    first = inline[0].spec.rule
    for target in inline[1:]:
        rule = target.spec.rule
        assert rule is not first and rule.name == target.name  # each target its own
        assert rule.track is first.track and rule.threshold is first.threshold
        assert rule.pacing is first.pacing  # a cached property, computed once
        assert rule.model_fields_set is first.model_fields_set
        assert target.spec.metrics is inline[0].spec.metrics
        assert target.sources is inline[0].sources
    # the rule file's targets differ in max: one validated rule per distinct max
    tracks = {id(target.spec.rule.track) for target in included}
    assert len(tracks) == len({target.spec.rule.maximum for target in included}) == 15


def test_a_shared_load_equals_a_load_that_validates_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _varied(tmp_path, 60)
    shared = load_config(path)
    alone = _load_validating_every_entry(path, monkeypatch)
    assert shared.version == alone.version
    assert len(shared.targets) == len(alone.targets) == 60
    for ours, theirs in zip(shared.targets, alone.targets, strict=True):
        # each load has its own cron calendar (compared by identity)
        assert replace(ours, spec=replace(ours.spec, calendar=theirs.spec.calendar)) == theirs
        assert ours.config.model_fields_set == theirs.config.model_fields_set
        assert ours.config.model_dump(by_alias=True) == theirs.config.model_dump(by_alias=True)
        assert ours.spec.retention == theirs.spec.retention
        assert ours.spec.rule.pacing == theirs.spec.rule.pacing
    varied = {target.name: target for target in shared.targets}
    assert varied["app-00003"].config.min_event_gap is not None
    assert varied["app-00004"].spec.rule.cooldown.up.total_seconds() == 60
    assert varied["app-00005"].spec.rule.minimum == 2
    assert varied["app-00006"].spec.metrics["cpu"].source == "cpu2"
    assert varied["app-00008"].spec.metrics["cpu"].source == "cpu"


@pytest.mark.parametrize(
    ("key", "value"),
    [("name", '"bad name"'), ("name", '""'), ("actuator", '""'), ("actuator", "5")],
)
def test_an_invalid_name_after_a_valid_twin_is_reported_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    path = generate(tmp_path, 6)
    text = path.read_text()
    # app-00004 is inline like app-00000 and app-00002, whose entries validated first
    old = f'{key} = "app-00004"\n'
    at = text.index('[[targets]]\nname = "app-00004"')
    at = text.index(old, at)
    path.write_text(text[:at] + f"{key} = {value}\n" + text[at + len(old) :])
    line = text[:at].count("\n") + 1
    with pytest.raises(ConfigError) as shared:
        load_config(path)
    with pytest.raises(ConfigError) as alone:
        _load_validating_every_entry(path, monkeypatch)
    reported = [str(issue) for issue in shared.value.issues]
    assert reported == [str(issue) for issue in alone.value.issues]
    assert reported[0].startswith(f"{path}:{line}: targets[4].{key}: ")


def test_target_config_reads_its_name_and_actuator_in_no_validator_or_cached_property() -> None:
    """What makes sharing sound (see ``_TargetConfigs``): a validator or cached property of
    TargetConfig's own could depend on the name, and sharing would then be wrong."""

    def functions(model: type[Any]) -> dict[str, set[Any]]:
        decorators = model.__pydantic_decorators__
        return {
            kind: {getattr(d.func, "__func__", d.func) for d in getattr(decorators, kind).values()}
            for kind in ("validators", "field_validators", "root_validators", "model_validators")
        }

    assert functions(TargetConfig) == functions(Rule)
    own = [
        name
        for name, attribute in vars(TargetConfig).items()
        if isinstance(attribute, functools.cached_property | property)
    ]
    assert own == []
