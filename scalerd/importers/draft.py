"""What an importer produces — the sources, actuators and targets of a config, each with
the notes on what did not carry over exactly — and its rendering as ``config.toml``
through tomlkit, comments included."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tomlkit
import yaml
from tomlkit.items import AoT, Array, InlineTable, Table

__all__ = ["Draft", "Note", "Section", "decimal", "render", "seconds"]

# lists of tables that TOML readers expect as [[targets.x]] blocks, not inline
_BLOCKS = frozenset({"track", "threshold", "step", "schedule"})


@dataclass(frozen=True)
class Note:
    """A construct of the source with no exact equivalent.

    ``kept`` is the original block when it was not imported at all: it is written into
    the config as a commented block, so nothing is silently dropped.
    """

    construct: str
    reason: str
    kept: Any = None

    @property
    def dropped(self) -> bool:
        return self.kept is not None


@dataclass
class Section:
    """One ``[[sources]]``, ``[[actuators]]`` or ``[[targets]]`` entry and its notes."""

    values: dict[str, Any]
    notes: list[Note] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.values["name"])


@dataclass
class Draft:
    """A complete config, not yet written."""

    kind: str
    origin: str
    # the rule file under rules/ whose semantics the source system has (for --simulate)
    anchor: str
    sources: list[Section] = field(default_factory=list)
    actuators: list[Section] = field(default_factory=list)
    targets: list[Section] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def all_notes(self) -> list[Note]:
        sections = [*self.sources, *self.actuators, *self.targets]
        notes = [*self.notes, *(note for section in sections for note in section.notes)]
        return _unique(notes)

    def source(self, values: dict[str, Any], *notes: Note) -> str:
        """Add a source (renamed if its name is taken); return its name."""
        taken = {section.name for section in self.sources}
        name, count = str(values["name"]), 2
        while name in taken:
            name, count = f"{values['name']}-{count}", count + 1
        self.sources.append(Section({**values, "name": name}, list(notes)))
        return name


def _unique(notes: list[Note]) -> list[Note]:
    """Each note once (two rules on one metric give the same note twice)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for note in notes:
        if (note.construct, note.reason) not in seen:
            seen.add((note.construct, note.reason))
            unique.append(note)
    return unique


def seconds(value: float) -> str:
    """A duration in the form config.toml takes: ``300s``."""
    return f"{decimal(value)}s"


def decimal(value: float) -> str:
    """A number written out in full (``1000000``, not ``1e+06``, which a condition rejects)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def render(draft: Draft, command: str) -> str:
    """The draft as a ``config.toml`` text, with a header saying where it came from."""
    document = tomlkit.document()
    notes = draft.all_notes
    document.add(tomlkit.comment(f"Imported by `{command}`"))
    document.add(tomlkit.comment(f"from {draft.origin}."))
    if notes:
        dropped = sum(note.dropped for note in notes)
        document.add(
            tomlkit.comment(
                f"{len(notes)} construct(s) without an exact equivalent ({dropped} not imported): "
                "see the 'no exact equivalent' and 'not imported' comments below."
            )
        )
    else:
        document.add(tomlkit.comment("Every construct has an exact equivalent."))
    for note in draft.notes:
        _comment(document, note)
    document.add(tomlkit.nl())
    for key, sections in (
        ("sources", draft.sources),
        ("actuators", draft.actuators),
        ("targets", draft.targets),
    ):
        if not sections:
            continue
        blocks = tomlkit.aot()
        for section in sections:
            blocks.append(_section(section))
        document[key] = blocks
    return tomlkit.dumps(document)


def _section(section: Section) -> Table:
    table = tomlkit.table()
    scalars = {k: v for k, v in section.values.items() if not _is_table(k, v)}
    for key, value in scalars.items():
        table[key] = _item(value)
    for note in _unique(section.notes):
        _comment(table, note)
    for key, value in section.values.items():
        if key in scalars:
            continue
        table[key] = _blocks(value) if key in _BLOCKS else _table(value)
    return table


def _is_table(key: str, value: Any) -> bool:
    return isinstance(value, dict) or (
        key in _BLOCKS and isinstance(value, list) and all(isinstance(v, dict) for v in value)
    )


def _blocks(entries: list[dict[str, Any]]) -> AoT:
    blocks = tomlkit.aot()
    for entry in entries:
        blocks.append(_table(entry))
    return blocks


def _table(values: dict[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in values.items():
        if not isinstance(value, dict):
            table[key] = _item(value)
    for key, value in values.items():
        if isinstance(value, dict):
            table[key] = _table(value)
    return table


def _item(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        array: Array = tomlkit.array()
        for entry in value:
            array.append(_inline(entry) if isinstance(entry, dict) else _item(entry))
        return array
    return value


def _inline(values: dict[str, Any]) -> InlineTable:
    table = tomlkit.inline_table()
    for key, value in values.items():
        table[key] = _item(value)
    return table


def _comment(container: Any, note: Note) -> None:
    if not note.dropped:
        container.add(tomlkit.comment(f"no exact equivalent: {note.construct}: {note.reason}"))
        return
    container.add(tomlkit.comment(f"not imported: {note.construct}: {note.reason}"))
    kept = yaml.safe_dump(_plain(note.kept), sort_keys=False, default_flow_style=False)
    for line in kept.rstrip().splitlines():
        container.add(tomlkit.comment(f"    {line}"))


def _plain(value: Any) -> Any:
    """The original block as plain data (the line-keeping mappings are dict subclasses)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
