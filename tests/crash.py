"""Killing a real process mid-write, for the tests that show kill -9 loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kill_9_after(script: str, argument: str, lines: int) -> tuple[list[str], list[str]]:
    """Run ``script`` (Python, with this checkout importable) with ``argument``; SIGKILL it
    once it has printed ``lines`` lines. Returns those lines and any it printed after."""
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
        child.send_signal(signal.SIGKILL)
        child.wait()
        after = child.stdout.read().split()
    finally:
        child.stdout.close()
    return before, after
