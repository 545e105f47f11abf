"""The decision core stays pure: the import-linter contracts in pyproject.toml hold, and no
module under scalerd/core reads a clock, awaits, or logs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "scalerd" / "core"

BANNED_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "sleep"}
BANNED_IMPORTS = {
    "asyncio",
    "logging",
    "time",
    "socket",
    "aiohttp",
    "structlog",
    "redis",
    "azure",
    "httpx",
    "apscheduler",
}


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                assert name.split(".")[0] not in BANNED_IMPORTS, (
                    f"{path.name}:{node.lineno} imports {name}"
                )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in BANNED_CALLS, (
                f"{path.name}:{node.lineno} calls .{node.func.attr}()"
            )
        assert not isinstance(node, ast.Await | ast.AsyncFunctionDef), (
            f"{path.name}:{node.lineno} is async"
        )
