"""Killing a real process mid-write, for the tests that show kill -9 loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kill_9_after(
    script: str, argument: str, lines: int, *, then_wait: float = 0.0
) -> tuple[list[str], list[str]]:
    """Run ``script`` (Python, with this checkout importable) with ``argument``; SIGKILL it
    once it has printed ``lines`` lines (and ``then_wait`` seconds more, to land the kill
    elsewhere in what it does next). Returns those lines and any it printed after."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, argument],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        # the checkout, and the tests folder the tests import their helpers from
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "tests")))},
    )
    assert child.stdout is not None
    try:
        before = [child.stdout.readline().strip() for _ in range(lines)]
        time.sleep(then_wait)
        child.send_signal(signal.SIGKILL)
        child.wait()
        after = child.stdout.read().split()
    finally:
        child.stdout.close()
    return before, after
