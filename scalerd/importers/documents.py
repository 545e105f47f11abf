"""Reading the files people export from the systems they leave: Kubernetes YAML (several
documents, flow style too) and ARM / AWS JSON, with the line of every key kept, so that a
value scalerd cannot use is reported as ``file:line: key.path: message``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["At", "ImportFailure", "Located", "load_documents", "quantity"]


class ImportFailure(Exception):
    """The file cannot be imported; the message says where and why."""


class Located(dict[Any, Any]):
    """A mapping that remembers the line of each of its keys (YAML only; JSON keeps none)."""

    line: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}


_MISSING: Any = object()


@dataclass(frozen=True)
class At:
    """Where a value was read: the file, its key path and, when known, its line."""

    file: Path
    path: tuple[str | int, ...] = ()
    line: int | None = None

    def down(self, key: str | int, parent: Any = None) -> At:
        line = parent.lines.get(key) if isinstance(parent, Located) else None
        if line is None and isinstance(parent, list) and isinstance(key, int):
            item = parent[key] if key < len(parent) else None
            line = item.line if isinstance(item, Located) else None
        return At(self.file, (*self.path, key), line or self.line)

    @property
    def key(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    def fail(self, message: str) -> ImportFailure:
        line = f":{self.line}" if self.line else ""
        where = f" {self.key}:" if self.path else ""
        return ImportFailure(f"{self.file}{line}:{where} {message}")

    # --- typed reads below this place -----------------------------------------------------

    def get(self, mapping: Any, key: str, default: Any = _MISSING) -> Any:
        if not isinstance(mapping, dict):
            raise self.fail(f"expected a mapping, got {_kind(mapping)}")
        if key not in mapping:
            if default is _MISSING:
                raise self.fail(f"'{key}' is required")
            return default
        return mapping[key]

    def text(self, mapping: Any, key: str, default: Any = _MISSING) -> Any:
        value = self.get(mapping, key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.down(key, mapping).fail(
                f"expected a string, got {_kind(value)}"
                + (" (is this a template with {placeholders}?)" if isinstance(value, dict) else "")
            )
        return str(value)

    def number(self, mapping: Any, key: str, default: Any = _MISSING) -> Any:
        """A number, written as one or as a string (KEDA's metadata, ARM's capacities)."""
        value = self.get(mapping, key, default)
        if value is default and default is not _MISSING:
            return value
        here = self.down(key, mapping)
        if isinstance(value, bool):
            raise here.fail(f"expected a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise here.fail(f"expected a number, got {value!r}") from None
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise here.fail(f"expected a number, got {_kind(value)}")
        return int(value) if float(value).is_integer() else float(value)

    def whole(self, mapping: Any, key: str, default: Any = _MISSING) -> Any:
        value = self.number(mapping, key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int) or value < 0:
            raise self.down(key, mapping).fail(f"expected a whole number ≥ 0, got {value!r}")
        return value

    def mapping(self, mapping: Any, key: str, default: Any = _MISSING) -> Any:
        value = self.get(mapping, key, default)
        if value is None and default is not _MISSING:
            return default
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, dict):
            raise self.down(key, mapping).fail(f"expected a mapping, got {_kind(value)}")
        return value

    def items(self, mapping: Any, key: str) -> Iterator[tuple[Any, At]]:
        """The entries of a list (none when the key is absent or null)."""
        value = self.get(mapping, key, None)
        if value is None:
            return
        here = self.down(key, mapping)
        if not isinstance(value, list):
            raise here.fail(f"expected a list, got {_kind(value)}")
        for index, item in enumerate(value):
            yield item, here.down(index, value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    mapping = Located()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key is a mapping or a list (a template value?)", key_node.start_mark
            ) from None
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_documents(path: Path) -> list[Any]:
    """Every document of ``path`` (JSON, or YAML with ``---`` between documents)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ImportFailure(f"{path}: cannot read: {reason}") from None
    if path.suffix.lower() == ".json" or (text.lstrip().startswith(("{", "[")) and _is_json(text)):
        try:
            return [json.loads(text, object_pairs_hook=Located)]
        except json.JSONDecodeError as error:
            raise ImportFailure(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(part) for part in (error.context, error.problem) if part)
        raise ImportFailure(f"{path}{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ImportFailure(f"{path}: not valid YAML: {error}") from None
    if not documents:
        raise ImportFailure(f"{path}: the file holds no document")
    return documents


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)
_SUFFIX = {
    None: 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity(at: At, mapping: Any, key: str) -> float:
    """A Kubernetes quantity (``500m``, ``100Mi``, ``2``) as a plain number."""
    value = at.get(mapping, key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise at.down(key, mapping).fail(f"not a Kubernetes quantity: {value!r}")
    number = float(match.group(1)) * _SUFFIX[match.group(2)]
    return int(number) if number.is_integer() else number
