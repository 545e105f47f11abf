"""What keeps a large config load fast (issue #9, item 4), as behaviour that can fail:
each included rule file is parsed once, a valid file is never scanned for lines, and a
problem in a large file still names its line. ``bench/config_load.py`` has the timings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import tomli

from scalerd import config as config_module
from scalerd.config import load_config
from scalerd.errors import ConfigError
from scalerd.tomlpaths import TomlLines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from config_load import generate


def test_a_rule_file_included_by_many_targets_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    loads = tomli.loads

    def counting(text: str) -> dict[str, Any]:
        parsed.append(len(text))
        return loads(text)

    monkeypatch.setattr(config_module.tomli, "loads", counting)
    config = load_config(generate(tmp_path, 200))
    assert len(config.targets) == 200
    assert sum(target.rule_file is not None for target in config.targets) == 100
    assert len(parsed) == 2  # config.toml and rules/shared.toml


def test_a_valid_config_is_never_scanned_for_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: TomlLines) -> None:
        raise AssertionError("scanned for lines without a problem to place")

    monkeypatch.setattr(TomlLines, "_scan", refuse)
    assert len(load_config(generate(tmp_path, 50)).targets) == 50


def test_a_problem_in_a_large_file_names_its_line(tmp_path: Path) -> None:
    path = generate(tmp_path, 400)
    text = path.read_text()
    # the last inline target (index 398) gets a bad target value in its second track
    at = text.rindex("target = 100\n")
    path.write_text(text[:at] + "target = inf\n" + text[at + len("target = 100\n") :])
    line = text[:at].count("\n") + 1
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:{line}: targets[398].track[1].target: must be a finite number (got inf)"
    ]


def test_a_problem_in_a_shared_rule_file_is_reported_once(tmp_path: Path) -> None:
    path = generate(tmp_path, 6)
    rules = tmp_path / "rules" / "shared.toml"
    rules.write_text('name = "oops"\n' + rules.read_text())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{rules}:1: name: 'name' belongs in the [[targets]] entry, not in a rule file"
    ]


def test_each_target_of_a_shared_rule_file_gets_its_own_merge(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path, 6))
    included = [target for target in config.targets if target.rule_file is not None]
    # the generator overrides max per target over the shared file's max = 20
    assert [target.spec.rule.maximum for target in included] == [11, 13, 15]
    assert all(target.spec.rule.track[1].aggregation == "p95" for target in included)


def test_the_version_of_a_config_holding_an_integer_beyond_64_bits() -> None:
    """The digest is written with orjson, which knows no integer beyond 64 bits; a plugin
    field that allows one still gets a version (the same one each time), not a crash."""
    from pydantic import BaseModel

    class Huge(BaseModel):
        threshold: int

    huge = {"events": Huge(threshold=2**70)}
    other = {"events": Huge(threshold=2**70 + 1)}
    version = config_module._version(None, huge, {}, [])  # type: ignore[arg-type]
    assert version == config_module._version(None, huge, {}, [])  # type: ignore[arg-type]
    assert version != config_module._version(None, other, {}, [])  # type: ignore[arg-type]
    assert len(version) == 12
