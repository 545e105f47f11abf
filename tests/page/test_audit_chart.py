"""``scalerd audit --chart TARGET --since 6h``: the page's timeline as a PNG, from the
audit file the daemon wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon.build import replay_target, write_config
from page_history import diurnal, make_history

from scalerd.cli import main
from scalerd.config import load_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_chart_draws_the_window_of_one_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, replay_target((30, 60)))
    spec = load_config(config).targets[0].spec
    records = make_history(
        spec,
        "demand",
        diurnal(60),
        end=datetime.now(UTC) - timedelta(minutes=1),
        count=8 * 120,  # eight hours, every 30 s: two of them before the window
        interval=timedelta(seconds=30),
    )
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "audit.jsonl").write_text("".join(r.to_json() + "\n" for r in records))
    out = tmp_path / "api.png"
    assert main(["audit", "--config", str(config), "--chart", "api", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    since = datetime.now(UTC) - timedelta(hours=6)
    in_window = [r for r in records if r.ts >= since]
    scaled = sum(r.action == "scaled" for r in in_window)
    said = capsys.readouterr().out
    assert f"{len(in_window)} decisions of api" in said and f"{scaled} scaled" in said
    assert 0 < len(in_window) < len(records)

    assert main(["audit", "--config", str(config), "--chart", "nope"]) == 1
    assert main(["audit", "--config", str(config), "--chart", "api", "--since", "soon"]) == 2
