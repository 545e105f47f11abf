"""Configs for daemon tests, and a real ``scalerd run`` process to signal and kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

SCALERD = [sys.executable, "-m", "scalerd"]


def write_config(
    directory: Path, body: str, *, header: str = "", name: str = "config.toml"
) -> Path:
    """A config with the file audit sink and the SQLite state store under ``directory``."""
    text = textwrap.dedent(
        """\
        [daemon]
        listen = "127.0.0.1:0"
        shutdown_grace = "3s"
        watch_config = false
        """
    )
    text += textwrap.dedent(header)
    if "[audit]" not in header:
        text += '\n[audit]\npath = "audit/audit.jsonl"\n'
    if "[state]" not in header:
        text += '\n[state]\npath = "state/state.db"\n'
    text += textwrap.dedent(body)
    path = directory / name
    path.write_text(text)
    return path


def replay_target(
    values: tuple[float, ...],
    *,
    step: str = "60s",
    initial: int = 1,
    interval: str | None = None,
    maximum: int = 8,
    target: float = 10,
) -> str:
    """One target, "api", tracking a replayed total ("demand") on a recording pool."""
    every = f'interval = "{interval}"\n' if interval else ""
    return f"""
[[sources]]
name = "demand"
kind = "replay"
values = {list(values)}
step = "{step}"

[[actuators]]
name = "pool"
kind = "recording"
initial = {initial}

[[targets]]
name = "api"
actuator = "pool"
{every}max = {maximum}
[[targets.track]]
metric = "demand"
type = "total"
target = {target}
"""


def audit_records(directory: Path) -> list[dict[str, Any]]:
    path = directory / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    # the daemon may be writing: a last line not yet ended is not a record yet
    text = path.read_text()
    whole = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in whole.splitlines() if line.strip()]


class Running:
    """``scalerd run`` in a child process; its JSON log lines are collected as they come."""

    def __init__(self, config: Path, *extra: str, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [*SCALERD, "run", "--config", str(config), *extra],
            cwd=cwd or config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw.append(line)
            with suppress(ValueError):
                self.events.append(json.loads(line))

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if self.process.poll() is not None and seen == len(self.events):
                break
            time.sleep(0.05)
        raise AssertionError(f"no such log event; the log was:\n{''.join(self.raw)[-4000:]}")

    @property
    def url(self) -> str:
        listening = self.wait_for(lambda event: event.get("event") == "listening")
        return str(listening["address"])

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def signal(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        self._drain()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._drain()

    def _drain(self) -> None:
        self._reader.join(5)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()


@contextmanager
def running(config: Path, *extra: str, cwd: Path | None = None) -> Iterator[Running]:
    child = Running(config, *extra, cwd=cwd)
    try:
        yield child
    finally:
        child.kill()
