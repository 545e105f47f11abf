"""structlog for the shell: JSON lines when not on a terminal, a readable console
otherwise, secrets redacted from every string before anything is rendered."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from .redact import redact_event

__all__ = ["configure_logging"]


def configure_logging(
    format: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
) -> None:
    as_json = format == "json" or (format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,  # after exceptions are rendered to text, before output
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
