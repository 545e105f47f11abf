"""Builders for the importer tests."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from scalerd.config import load_config
from scalerd.importers import convert, render

EXAMPLES = Path(__file__).parent / "examples"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def imported(tmp_path: Path, kind: str, source: Path) -> tuple[str, dict[str, Any]]:
    """Import ``source``, write it as config.toml next to it and load it as ``scalerd run``
    would; return the text and the parsed TOML."""
    draft = convert(kind, source)
    text = render(draft, f"scalerd import {kind} {source.name}")
    path = tmp_path / "config.toml"
    path.write_text(text)
    load_config(path)
    return text, tomllib.loads(text)


def target(toml: dict[str, Any]) -> dict[str, Any]:
    (only,) = toml["targets"]
    return only
