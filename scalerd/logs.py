"""structlog for the shell: JSON lines when not on a terminal, a readable console
otherwise, secrets redacted from every string before anything is rendered.

Libraries log through the standard library (aiohttp's "Error handling request" quotes the
request's bad header line, redis-py and the Azure SDK name hosts and URLs, asyncio reports
lost task exceptions). Their records go through the same redaction and the same renderer
(``structlog.stdlib.ProcessorFormatter`` on the root logger), so a JSON log holds only
JSON lines and a token never reaches it in plain text.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from .redact import redact_event

__all__ = ["configure_logging"]

# libraries whose info lines are one per request or connection
_CHATTY = ("azure", "urllib3", "httpx", "httpcore", "aiohttp.access")


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
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    for chatty in _CHATTY:  # request-by-request at info: warnings and errors only
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
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
