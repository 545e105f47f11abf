"""The secrets a config names by ``*_env`` are found wherever they are, and what many
targets share is looked through once (a 10,000-target start does not walk it 10,000 times)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerd.config import load_config
from scalerd.daemon.app import _env_secrets

from .build import write_config

TARGETS = 50


def _config(tmp_path: Path) -> Path:
    sources = "".join(
        f"""
[[sources]]
name = "queue-{n}"
kind = "http-json"
url = "http://127.0.0.1:9/q{n}"
path = "depth"
token_env = "T_SOURCE_TOKEN_{n}"
"""
        for n in range(3)
    )
    targets = "".join(
        f"""
[[actuators]]
name = "pool-{n}"
kind = "recording"
initial = 1

[[targets]]
name = "app-{n}"
actuator = "pool-{n}"
max = 8

[[targets.track]]
metric = "queue-{n % 3}"
type = "total"
target = 10
"""
        for n in range(TARGETS)
    )
    header = 'control_token_env = "T_CONTROL_TOKEN"\n'
    return write_config(tmp_path, sources + targets, header=header)


def test_every_named_secret_is_found_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CONTROL_TOKEN", "control-token-0123456789abcdef")
    for n in range(3):
        monkeypatch.setenv(f"T_SOURCE_TOKEN_{n}", f"source-token-{n}")
    config = load_config(_config(tmp_path))
    found = _env_secrets(config)
    assert sorted(found) == sorted(
        ["control-token-0123456789abcdef", "source-token-0", "source-token-1", "source-token-2"]
    )


def test_an_env_key_naming_an_unset_variable_gives_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T_CONTROL_TOKEN", raising=False)
    monkeypatch.setenv("T_SOURCE_TOKEN_1", "source-token-1")
    for n in (0, 2):
        monkeypatch.delenv(f"T_SOURCE_TOKEN_{n}", raising=False)
    assert _env_secrets(load_config(_config(tmp_path))) == ["source-token-1"]
