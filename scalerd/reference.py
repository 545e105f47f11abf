"""The configuration reference (``docs/config-reference.md``), generated from the config
models themselves: every key with its type, default, meaning and an example.

    python -m scalerd.reference > docs/config-reference.md

The meaning of a key is the comment written above it in its model (or the model's
docstring for a table); the example is the first value the shipped configs (``config.toml``,
``examples/``, ``rules/``, ``deploy/``) give it, else its default. A test regenerates the
page and compares, so the page cannot fall behind the models.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .core.durations import format_duration

__all__ = ["examples_from", "render", "shipped_configs"]

ROOT = Path(__file__).resolve().parents[1]
# the common envelope of [[sources]] / [[actuators]]: documented once, not per kind
_ENVELOPE = ("kind", "name")


def shipped_configs(root: Path = ROOT) -> list[Path]:
    """The configs that ship with scalerd, in the order examples are taken from."""
    found = [root / "config.toml"]
    for folder in ("examples", "rules", "deploy"):
        found += sorted((root / folder).glob("*.toml"))
    return [path for path in found if path.is_file()]


def examples_from(paths: list[Path]) -> dict[tuple[str, ...], tuple[str, Any]]:
    """(section path, key) → (file, value), first found wins. Plugin entries are keyed by
    their kind; a rule file's keys are a target's."""
    found: dict[tuple[str, ...], tuple[str, Any]] = {}

    def walk(prefix: tuple[str, ...], table: Mapping[str, Any], origin: str) -> None:
        for key, value in table.items():
            if isinstance(value, Mapping):
                walk((*prefix, key), value, origin)
            elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
                for entry in value:
                    walk((*prefix, key), entry, origin)
            else:
                found.setdefault((*prefix, key), (origin, value))

    for path in paths:
        data = tomllib.loads(path.read_text())
        origin = path.name if path.parent == ROOT else f"{path.parent.name}/{path.name}"
        rule_file = path.parent.name == "rules"
        for section, value in data.items():
            if section in ("sources", "actuators") and isinstance(value, list):
                for entry in value:
                    walk((section, str(entry.get("kind"))), entry, origin)
            elif rule_file:
                walk(("targets",), {section: value}, origin)
            elif isinstance(value, Mapping):
                walk((section,), value, origin)
            elif isinstance(value, list):
                for entry in value:
                    if isinstance(entry, Mapping):
                        walk((section,), entry, origin)
    return found


def render(root: Path = ROOT) -> str:
    from .actuators import ACTUATORS
    from .config import TargetConfig, _Settings
    from .sources import SOURCES

    examples = examples_from(shipped_configs(root))
    out: list[str] = [
        "# Configuration reference",
        "",
        "Generated from scalerd's config models by `python -m scalerd.reference` (a test",
        "checks that it is current): every key of `config.toml`, its type, its default and",
        "an example, taken from the shipped configs where one sets it. Durations are written",
        "`30s`, `5m`, `1h30m` or ISO 8601 (`PT5M`); a bare number is an error. Keys that",
        "name an environment variable (`*_env`) hold its name, never a secret.",
        "",
    ]
    for name, field in _Settings.model_fields.items():
        model = _model_of(field.annotation)
        if model is not None:
            out += _table(f"[{name}]", model, (name,), examples, level=2)
    families: list[tuple[str, list[tuple[str, type[BaseModel]]]]] = [
        ("sources", [(plugin.kind, plugin.config) for plugin in SOURCES]),
        ("actuators", [(plugin.kind, plugin.config) for plugin in ACTUATORS]),
    ]
    for section, kinds in families:
        out += [f"## [[{section}]]", "", _common_envelope(section.removesuffix("s"))]
        for kind, model in kinds:
            out += _table(
                f'kind = "{kind}"', model, (section, kind), examples, level=3, skip=_ENVELOPE
            )
    out += _table("[[targets]]", TargetConfig, ("targets",), examples, level=2)
    return "\n".join(out).rstrip() + "\n"


def _common_envelope(what: str) -> str:
    return (
        f"Every {what} has `kind` (which plugin, below) and `name` (how targets refer to it: "
        "letters, digits, `_ . : -`)."
        "\n"
    )


def _table(
    title: str,
    model: type[BaseModel],
    path: tuple[str, ...],
    examples: Mapping[tuple[str, ...], tuple[str, Any]],
    *,
    level: int,
    skip: tuple[str, ...] = (),
) -> list[str]:
    out = [f"{'#' * level} {title}", ""]
    doc = _docstring(model)
    if doc:
        out += [doc, ""]
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel], bool]] = []
    comments = _field_comments(model)
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = field.alias or name
        inner = _model_of(field.annotation)
        meaning = comments.get(name, "")
        kind = _type(field.annotation)
        if inner is not None and _written_as_text(inner):
            # parsed from a string ("cpu > 75 avg 5m", "+2", a SKU name): say so, no table
            kind = "list of strings" if _is_list(field.annotation) else "string"
            meaning = " ".join(part for part in (meaning, _docstring(inner)) if part)
        elif inner is not None:
            nested.append((key, inner, _is_list(field.annotation)))
        example = examples.get((*path, key))
        rows.append(
            f"| `{key}` | {kind} | {_default(field)} | {_cell(meaning)} | {_example(key, example, field)} |"
        )
    if rows:
        out += ["| key | type | default | meaning | example |", "|---|---|---|---|---|", *rows, ""]
    for key, inner, is_list in nested:
        if title.startswith("["):
            sub = f"{title.strip('[]')}.{key}"
            heading = f"[[{sub}]]" if is_list else f"[{sub}]"
        else:  # inside a plugin entry
            heading = f"`{key}` entries" if is_list else f"`{key}`"
        out += _table(heading, inner, (*path, key), examples, level=min(level + 1, 4))
    return out


def _docstring(model: type[BaseModel]) -> str:
    doc = model.__doc__
    if not doc or doc is BaseModel.__doc__ or model.__module__ == "pydantic.main":
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


@cache
def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment lines right above each field in the class bodies of ``model`` and its
    bases (the nearest definition wins)."""
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        source = textwrap.dedent("".join(lines))
        body = source.splitlines()
        tree = ast.parse(source)
        cls = tree.body[0]
        assert isinstance(cls, ast.ClassDef)
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                comment: list[str] = []
                line = node.lineno - 2
                while line >= 0 and body[line].strip().startswith("#"):
                    comment.insert(0, body[line].strip().lstrip("#").strip())
                    line -= 1
                if comment:
                    found[node.target.id] = " ".join(comment)
                else:
                    found.pop(node.target.id, None)
    return found


def _written_as_text(model: type[BaseModel]) -> bool:
    """A model whose "before" validator turns a string into it."""
    validators = model.__pydantic_decorators__.model_validators.values()
    return any(validator.info.mode == "before" for validator in validators)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself, optional, or a list/tuple of it)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if origin is typing.Annotated:
        return _type(arguments[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in arguments)
    if origin in (typing.Union, types.UnionType):
        shown = [_type(a) for a in arguments if a is not type(None)]
        return " \\| ".join(shown) + (" (optional)" if type(None) in arguments else "")
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type(arguments[0])}" if arguments else "list"
    if origin is dict:
        return f"table of {_type(arguments[1])}" if len(arguments) == 2 else "table"
    if annotation is timedelta:
        return "duration"
    if annotation is datetime:
        return "date-time"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "table"
        if issubclass(annotation, Enum):
            return " \\| ".join(f"`{json.dumps(m.value)}`" for m in annotation)
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "computed"
        if field.default_factory.__name__ == "gethostname":
            return "the host name"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return _value(value)


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, datetime):
        return f"`{value.isoformat().replace('+00:00', 'Z')}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (dict, list, tuple)) and not value:
        return "empty"
    return f"`{_toml(value)}`"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def _example(key: str, example: tuple[str, Any] | None, field: FieldInfo) -> str:
    if example is not None:
        origin, value = example
        text = _cell(_toml(value))
        if len(text) > 60:
            text = text[:57] + "…"
        return f"`{key} = {text}` ({origin})"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
