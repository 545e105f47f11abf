"""structlog for the shell: JSON lines when not on a terminal, a readable console
otherwise, secrets redacted from every string before anything is rendered.

Libraries log through the standard library (aiohttp's "Error handling request" quotes the
request's bad header line, redis-py and the Azure SDK name hosts and URLs, asyncio reports
lost task exceptions). Their records go through the same redaction and the same renderer
(``structlog.stdlib.ProcessorFormatter`` on the root logger), so a JSON log holds only
JSON lines and a token never reaches it in plain text.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict

from .redact import redact_event

__all__ = ["BoundOnce", "configure_logging"]

# libraries whose info lines are one per request or connection
_CHATTY = ("azure", "urllib3", "httpx", "httpcore", "aiohttp.access")


def configure_logging(
    format: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
) -> None:
    as_json = format == "json" or (format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [structlog.processors.add_log_level, _utc_stamp]
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
        logger_factory=_CoalescingFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


class _UtcStamp:
    """structlog's ``TimeStamper(fmt="iso", utc=True)`` without a datetime per line: the
    date and time to the second are formatted once a second (a pass of 10,000 decisions
    logs them within one or two)."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: Any, name: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second, prefix = self._second
        if int(now) != second:
            second = int(now)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)  # one assignment: safe across threads
        micro = int((now - second) * 1_000_000)
        event_dict["timestamp"] = f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"
        return event_dict


_utc_stamp = _UtcStamp()


class BoundOnce:
    """``structlog.get_logger(name)`` bound once per configuration: a lazy proxy binds a
    new logger on every call (a third of a log line's cost), and caching it for good
    would outlive a reconfiguration (``configure_logging``, ``capture_logs``)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._for: tuple[Any, Any, Any] = (None, None, None)
        self._logger: Any = None

    def get(self) -> Any:
        config = structlog.get_config()
        processors, factory, wrapper = self._for
        if (
            config["processors"] is not processors
            or config["logger_factory"] is not factory
            or config["wrapper_class"] is not wrapper
        ):
            self._logger = structlog.get_logger(self._name).bind()
            self._for = (config["processors"], config["logger_factory"], config["wrapper_class"])
        return self._logger


def _json(event: Any, **_: Any) -> str:
    """A log line as orjson writes it (compact; what it cannot write, as its text)."""
    return orjson.dumps(event, default=str).decode()


class _CoalescingFactory:
    """Loggers writing to ``file`` once per turn of the event loop: the lines logged while
    it runs one round of callbacks (a pass's decisions finish together) are written in
    one call at its end rather than a write and a flush each. Off the event loop's thread,
    or with no loop running, a line is written at once; what is waiting is written at exit
    too."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lines: list[str] = []
        self._lock = threading.Lock()
        # the loop a write of what waits is scheduled on (one that closed before running
        # it does not hold lines back: a write on another loop schedules its own)
        self._scheduled: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def __call__(self, *args: Any) -> _CoalescingLogger:
        return _CoalescingLogger(self)

    def write(self, line: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._lines.append(line)
            if loop is not None:
                if self._scheduled is not loop:
                    self._scheduled = loop
                    loop.call_soon(self.flush)
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            self._scheduled = None
            if lines:
                self._file.write("\n".join(lines) + "\n")
                self._file.flush()


class _CoalescingLogger:
    """structlog's ``PrintLogger``, but the line goes to its factory's next write."""

    def __init__(self, factory: _CoalescingFactory) -> None:
        self._factory = factory

    def msg(self, message: str) -> None:
        self._factory.write(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = msg
