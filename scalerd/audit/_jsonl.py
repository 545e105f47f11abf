"""Durable JSON-lines files: fsynced appends, torn tails dropped, rotation by size.

These helpers block; the async sinks and readers call them through ``asyncio.to_thread``.

A ``kill -9`` in the middle of a write can leave a last line without its newline. That
record was never acknowledged to anyone, so it is dropped: readers ignore an unterminated
last line, and the next append cuts it off first, so it cannot glue itself to the next
record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..files import fsync_dir

__all__ = ["append", "append_bytes", "complete_lines", "remove", "rotate", "rotated"]

_BLOCK = 64 * 1024


def append(path: Path, lines: Sequence[str]) -> int:
    """Append ``lines`` (each without its newline) and fsync; return the new file size."""
    return append_bytes(path, "".join(f"{line}\n" for line in lines).encode())


def append_bytes(path: Path, data: bytes) -> int:
    """Append ``data`` (whole lines, each with its newline) and fsync; return the new file
    size."""
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as file:
        _drop_torn_tail(file)
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
        size = file.tell()
    if created:
        fsync_dir(path.parent)
    return size


def _drop_torn_tail(file: BinaryIO) -> None:
    """Cut the file back to its last newline (a write interrupted by a crash)."""
    end = file.seek(0, os.SEEK_END)
    if end == 0:
        return
    file.seek(end - 1)
    if file.read(1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - _BLOCK)
        file.seek(start)
        newline = file.read(position - start).rfind(b"\n")
        if newline >= 0:
            file.truncate(start + newline + 1)
            return
        position = start
    file.truncate(0)


def complete_lines(path: Path) -> list[str]:
    """Every newline-terminated line of ``path`` (none if it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.decode().split("\n")[:-1]


def rotate(path: Path, keep: int) -> None:
    """``path`` → ``path.1`` → … → ``path.{keep}``; the oldest falls off the end."""
    if keep == 0:
        path.unlink(missing_ok=True)
    else:
        _numbered(path, keep).unlink(missing_ok=True)
        for number in range(keep - 1, 0, -1):
            older = _numbered(path, number)
            if older.exists():
                older.rename(_numbered(path, number + 1))
        path.rename(_numbered(path, 1))
    fsync_dir(path.parent)


def rotated(path: Path) -> list[Path]:
    """``path`` and its rotated copies that exist, oldest first."""
    pattern = re.compile(rf"{re.escape(path.name)}\.(\d+)")
    numbered: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            match = pattern.fullmatch(candidate.name)
            if match:
                numbered.append((int(match.group(1)), candidate))
    files = [candidate for _, candidate in sorted(numbered, reverse=True)]
    return [*files, path] if path.exists() else files


def remove(path: Path) -> None:
    """Delete ``path`` durably (a spool that has been flushed must not come back)."""
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _numbered(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")
