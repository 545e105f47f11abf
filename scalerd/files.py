"""Durable file writes: what a ``kill -9`` or a power cut may not undo or tear."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "replace_atomically"]


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` so that a crash leaves the old file or the new one.

    The temporary file ``.{name}.tmp`` next to it is never read, and is overwritten by
    the next write if a crash left it behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
