"""The code stays typed and tidy: mypy --strict over the package, ruff's lint and format
over everything (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )


def test_mypy_strict() -> None:
    done = _run(str(BIN / "mypy"), "-p", "scalerd")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_lint_and_format() -> None:
    lint = _run(str(BIN / "ruff"), "check", "scalerd", "tests", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = _run(str(BIN / "ruff"), "format", "--check", "scalerd", "tests", "bench")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
