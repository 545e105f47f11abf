"""Where each key of a TOML document is written: key path → line number.

``tomllib`` parses but keeps no positions, and a config error that does not name its line
costs ops a search through a long file. This scanner walks the same text structurally
(tables, arrays of tables, dotted keys, inline tables, arrays) and records the line on
which each key or array element starts. It never decides validity — ``tomllib`` has
already accepted the text — so it can stay small.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

__all__ = ["KeyPath", "TomlLines", "format_path"]

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: Sequence[str | int]) -> str:
    """``("targets", 1, "behavior")`` → ``targets[1].behavior``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _BARE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            quoted = '"' + part.replace('"', '\\"') + '"'
            out += f".{quoted}" if out else quoted
    return out


class TomlLines:
    """The line of every key path in one TOML text (scanned once, on the first look-up:
    a valid config never pays for it)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._newlines: list[int] = []
        self._lines: dict[KeyPath, int] = {}
        self._array_tables: dict[KeyPath, int] = {}
        self._scanned = False

    def line(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest ancestor that is written down (line 1,
        the document, for a top-level key that is not)."""
        if not self._scanned:
            self._scanned = True
            self._newlines = [match.start() for match in re.finditer("\n", self._text)]
            self._scan()
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return 1

    # --- scanning ----------------------------------------------------------------------

    def _line_at(self, pos: int) -> int:
        return bisect.bisect_right(self._newlines, pos - 1) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        self._lines.setdefault(path, self._line_at(pos))

    def _peek(self, count: int = 1) -> str:
        return self._text[self._pos : self._pos + count]

    def _skip_blank(self, newlines: bool) -> None:
        text = self._text
        while self._pos < len(text):
            ch = text[self._pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self._pos += 1
            elif ch == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _scan(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self._pos >= len(self._text):
                return
            start = self._pos
            if self._peek(2) == "[[":
                self._pos += 2
                key = self._key()
                base = (*self._resolve(key[:-1]), *key[-1:])
                index = self._array_tables.get(base, -1) + 1
                self._array_tables[base] = index
                table = (*base, index)
                self._record(base, start)
                self._record(table, start)
                self._expect("]]")
            elif self._peek() == "[":
                self._pos += 1
                table = self._resolve(self._key())
                self._record(table, start)
                self._expect("]")
            else:
                self._key_value(table)

    def _resolve(self, key: tuple[str, ...]) -> KeyPath:
        """Insert the current index of every array of tables along a header path."""
        path: KeyPath = ()
        for part in key:
            path = (*path, part)
            if path in self._array_tables:
                path = (*path, self._array_tables[path])
        return path

    def _expect(self, token: str) -> None:
        self._skip_blank(newlines=False)
        if self._text.startswith(token, self._pos):
            self._pos += len(token)

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            ch = self._peek()
            if ch in ('"', "'"):
                parts.append(self._string_value())
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                if not match:
                    return tuple(parts)
                parts.append(match.group())
                self._pos = match.end()
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._pos += 1

    def _key_value(self, table: KeyPath) -> None:
        start = self._pos
        key = self._key()
        if not key:  # not a key: skip the rest of the line rather than loop forever
            end = self._text.find("\n", self._pos)
            self._pos = len(self._text) if end < 0 else end + 1
            return
        path = (*table, *key)
        for depth in range(len(table) + 1, len(path) + 1):
            self._record(path[:depth], start)
        self._expect("=")
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        self._skip_blank(newlines=False)
        ch = self._peek()
        if ch in ('"', "'"):
            self._string_value()
        elif ch == "{":
            self._pos += 1
            while True:
                self._skip_blank(newlines=True)
                if self._peek() in ("}", ""):
                    self._pos += 1
                    return
                self._key_value(path)
                self._skip_blank(newlines=True)
                if self._peek() == ",":
                    self._pos += 1
        elif ch == "[":
            self._pos += 1
            index = 0
            while True:
                self._skip_blank(newlines=True)
                if self._peek() in ("]", ""):
                    self._pos += 1
                    return
                self._record((*path, index), self._pos)
                self._value((*path, index))
                index += 1
                self._skip_blank(newlines=True)
                if self._peek() == ",":
                    self._pos += 1
        else:
            match = re.compile(r"[^,\]\}\n#]*").match(self._text, self._pos)
            assert match is not None  # the pattern matches the empty string
            self._pos = match.end()

    def _string_value(self) -> str:
        text = self._text
        quote = text[self._pos]
        if text.startswith(quote * 3, self._pos):
            end = text.find(quote * 3, self._pos + 3)
            end = len(text) if end < 0 else end
            while text.startswith(quote, end + 3):  # up to two quotes may close the string
                end += 1
            value = text[self._pos + 3 : end]
            self._pos = end + 3
            return value
        pos = self._pos + 1
        while pos < len(text) and text[pos] != quote:
            pos += 2 if quote == '"' and text[pos] == "\\" else 1
        value = text[self._pos + 1 : pos]
        self._pos = pos + 1
        return value
