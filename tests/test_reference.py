"""docs/config-reference.md is what ``python -m scalerd.reference`` generates from the
config models today, and it covers every key of every model."""

from __future__ import annotations

from pathlib import Path

from scalerd.actuators import ACTUATORS
from scalerd.config import TargetConfig, _Settings
from scalerd.reference import _model_of, render
from scalerd.sources import SOURCES

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "config-reference.md"


def test_the_reference_page_is_current() -> None:
    generated = render()
    assert PAGE.read_text() == generated, (
        "docs/config-reference.md is stale: run "
        "`.venv/bin/python -m scalerd.reference > docs/config-reference.md`"
    )


def test_every_key_of_every_model_is_on_the_page() -> None:
    page = PAGE.read_text()
    sections = [_model_of(field.annotation) for field in _Settings.model_fields.values()]
    assert all(sections)
    models = [*sections, *(plugin.config for plugin in (*SOURCES, *ACTUATORS)), TargetConfig]
    for model in models:
        assert model is not None
        for name, field in model.model_fields.items():
            if name not in ("kind", "name") or model is TargetConfig:
                assert f"| `{field.alias or name}` |" in page, (model, name)
    for kind in (*SOURCES.kinds, *ACTUATORS.kinds):
        assert f'kind = "{kind}"' in page
    # what the README promises the page documents
    for row in (
        "| `polling_interval` | duration | `15s` |",
        "| `read_timeout` | duration | `30s` |",
    ):
        assert row in page
    schedule = page.split("### [[targets.schedule]]")[1].split("###")[0]
    assert "| `name` | string | required |" in schedule
    prometheus = page.split('### kind = "prometheus"')[1].split("###")[0]
    for key in ("url", "query", "reduce", "token_env"):
        assert f"| `{key}` |" in prometheus
