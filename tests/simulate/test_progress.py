"""``simulate --compare`` shows a progress bar per config on a terminal (a real pty), and
nothing of it when its output is piped."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalerd.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "scalerd" / "data" / "alibaba2018_cluster_cpu_day.csv"
COMMAND = [
    *(sys.executable, "-m", "scalerd", "simulate"),
    *("--config", str(ROOT / "rules" / "hpa-default.toml")),
    *("--compare", str(ROOT / "rules" / "azure-autoscale.toml")),
    *("--trace", str(TRACE), "--peak-replicas", "10"),
]


def test_compare_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [*COMMAND, "--out", str(tmp_path / "tty")],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(30) == 0, screen.decode(errors="replace")[-2000:]
    text = screen.decode(errors="replace")
    assert "━" in text  # a bar was drawn
    for label in ("hpa-default", "azure-autoscale"):
        assert label in text.split("config")[0], label  # before the table, as a bar's label
    assert "evaluations" in text and "config" in text  # then the table


def test_no_progress_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "short.csv"
    trace.write_text("t_seconds,value\n" + "".join(f"{60 * i},{i % 7}\n" for i in range(120)))
    args = [*COMMAND[3:], "--out", str(tmp_path / "pipe")]
    args[args.index(str(TRACE))] = str(trace)
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == "" and "━" not in out and out.startswith("config ")


@pytest.mark.parametrize(("env", "bars"), [({"FORCE_COLOR": "1"}, True), ({}, False)])
def test_piped_it_shows_progress_only_when_rich_is_told_to(
    tmp_path: Path, env: dict[str, str], bars: bool
) -> None:
    # a pipe is looked at without loading rich, unless the environment may make it a terminal
    trace = tmp_path / "short.csv"
    trace.write_text("t_seconds,value\n" + "".join(f"{60 * i},{i % 7}\n" for i in range(120)))
    command = [*COMMAND, "--out", str(tmp_path / "pipe")]
    command[command.index(str(TRACE))] = str(trace)
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        command, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert ("━" in done.stderr) is bars
    assert done.stdout.startswith("config ")
