"""Every plugin is registered once, in order, with a typed config and a test module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from scalerd.actuators import ACTUATORS
from scalerd.events import EVENTS, EventConfig
from scalerd.notify import NOTIFY, NotifyConfig
from scalerd.plugins import ActuatorConfig, Plugin, PluginConfig, Registry, SourceConfig
from scalerd.sources import SOURCES

TESTS = Path(__file__).parent
FAMILIES: list[tuple[Registry[Any], type[PluginConfig], str]] = [
    (SOURCES, SourceConfig, "sources"),
    (ACTUATORS, ActuatorConfig, "actuators"),
    (EVENTS, EventConfig, "events"),
    (NOTIFY, NotifyConfig, "notify"),
]
PLUGINS = [
    pytest.param(plugin, base, folder, id=f"{folder}:{plugin.kind}")
    for registry, base, folder in FAMILIES
    for plugin in registry
]


@pytest.mark.parametrize(
    "registry",
    [SOURCES, ACTUATORS, EVENTS, NOTIFY],
    ids=["sources", "actuators", "events", "notify"],
)
def test_kinds_are_unique_and_sorted(registry: Registry[Any]) -> None:
    kinds = [plugin.kind for plugin in registry]

    assert kinds == sorted(set(kinds))
    assert registry.kinds == tuple(kinds)


@pytest.mark.parametrize(("plugin", "base", "folder"), PLUGINS)
def test_config_subclasses_the_family_base_with_its_kind_as_literal(
    plugin: Plugin[Any], base: type[PluginConfig], folder: str
) -> None:
    assert issubclass(plugin.config, base)
    kind = plugin.config.model_fields["kind"]
    assert get_origin(kind.annotation) is Literal
    assert get_args(kind.annotation) == (plugin.kind,)
    assert kind.is_required()  # the kind is what picked this config; it is never implied


@pytest.mark.parametrize(("plugin", "base", "folder"), PLUGINS)
def test_config_is_frozen_and_strict(
    plugin: Plugin[Any], base: type[PluginConfig], folder: str
) -> None:
    assert plugin.config.model_config.get("frozen") is True
    assert plugin.config.model_config.get("extra") == "forbid"


@pytest.mark.parametrize(("plugin", "base", "folder"), PLUGINS)
def test_summary_is_one_line(plugin: Plugin[Any], base: type[PluginConfig], folder: str) -> None:
    assert plugin.summary.strip()
    assert "\n" not in plugin.summary


@pytest.mark.parametrize(("plugin", "base", "folder"), PLUGINS)
def test_each_plugin_has_a_test_module_named_after_it(
    plugin: Plugin[Any], base: type[PluginConfig], folder: str
) -> None:
    module = TESTS / folder / f"test_{plugin.kind.replace('-', '_')}.py"

    assert module.is_file(), f"no tests for {folder} kind {plugin.kind!r}: expected {module}"


def test_a_kind_is_imported_only_when_asked_for_and_must_match_its_module() -> None:
    registry: Registry[Any] = Registry.of_modules(
        "source", "scalerd.sources", {"replay": "replay", "shadowed": "recording_x"}
    )
    assert registry.kinds == ("replay", "shadowed")  # known without importing anything
    assert registry.get("replay").kind == "replay"
    with pytest.raises(ModuleNotFoundError):
        registry.get("shadowed")  # only now is its module looked for
    with pytest.raises(KeyError, match="known kinds: replay, shadowed"):
        registry.get("nope")
    renamed: Registry[Any] = Registry.of_modules("source", "scalerd.sources", {"tape": "replay"})
    with pytest.raises(ValueError, match="kind 'replay', registered as 'tape'"):
        renamed.get("tape")


def test_the_registries_import_no_plugin_module() -> None:
    code = (
        "import sys, scalerd.sources, scalerd.actuators, scalerd.events, scalerd.notify\n"
        "families = ('sources', 'actuators', 'events', 'notify')\n"
        "print(sorted(m for m in sys.modules if m.startswith(tuple(f'scalerd.{f}.' for f in families))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the families' shared bases only
    assert done.stdout.strip() == "['scalerd.events.base', 'scalerd.notify.base']"
