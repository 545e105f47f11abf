"""``scalerd import``: existing KEDA, HPA, Azure autoscale, Container Apps and AWS
definitions turned into a complete ``config.toml``, exact where the semantics match and
saying so, construct by construct, where they do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import aws, azure_autoscale, containerapp, hpa, keda
from .documents import ImportFailure
from .draft import Draft, Note, render

__all__ = ["IMPORTERS", "Draft", "ImportFailure", "Note", "convert", "render"]

# kind → the function that reads a file of that kind into a draft config
IMPORTERS: dict[str, Callable[[Path], Draft]] = {
    "keda": keda.convert,
    "hpa": hpa.convert,
    "azure-autoscale": azure_autoscale.convert,
    "containerapp": containerapp.convert,
    "aws-step": aws.convert,
}


def convert(kind: str, path: Path) -> Draft:
    """Read ``path`` as a definition of ``kind``; raise :class:`ImportFailure` when it
    cannot be read (the message names the file, and the line where it is known)."""
    return IMPORTERS[kind](path)
