"""The CLI people run every day, as commands: ``--version``, ``help``, ``completion``,
``audit`` at 80 columns (and ``--wide``, ``--follow``, ``--action``, ``--reason``),
``explain --at/--id``, ``check`` in words, and ``pause``/``resume``/``override`` against a
running daemon through its API and token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest

from scalerd.audit import ACTIONS
from scalerd.cli import main
from scalerd.commands.audit import ACTIONS_HELP
from scalerd.commands.explain import parse_moment

from .build import SCALERD, audit_records, running, write_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "commands-test-token-0123456789abcdef"

# a long target name and a threshold rule whose "why" is long: the table must still fit
BODY = """
[[sources]]
name = "demand"
kind = "replay"
values = [45, 45]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"
initial = 3

[[targets]]
name = "checkout-api-eu-west"
actuator = "pool"
max = 12
[[targets.track]]
metric = "demand"
type = "total"
target = 10

[[actuators]]
name = "jobs"
kind = "recording"
initial = 2

[[targets]]
name = "jobs"
actuator = "jobs"
max = 4
[[targets.threshold]]
when = "demand > 100 avg 1m"
action = "+1"
"""


def scalerd(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCALERD, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
    )


def in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> subprocess.CompletedProcess[str]:
    """``scalerd ARGS`` in this process (no interpreter start-up), 80 columns wide."""
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose audit file holds two evaluations of two targets."""
    directory = tmp_path_factory.mktemp("audited")
    config = write_config(directory, BODY)
    for _ in range(2):
        done = scalerd("run", "--once", "--config", str(config), cwd=directory)
        assert done.returncode == 0, done.stderr
    return config


def test_version_and_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def scalerd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, *args)

    shown = scalerd("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"scalerd {version('scalerd')}"
    overview = scalerd("help")
    assert overview.returncode == 0
    for command in ("run", "check", "simulate", "audit", "explain", "pause", "resume"):
        assert f"    {command} " in overview.stdout, command
    one = scalerd("help", "audit")
    assert one.stdout == scalerd("audit", "--help").stdout and "--wide" in one.stdout
    assert ", ".join(ACTIONS) == ACTIONS_HELP  # `audit --help` lists every action
    imported = scalerd("help", "import")
    assert "KIND FILE" in imported.stdout and imported.stdout == scalerd("import", "--help").stdout
    # the parser, --version and help load no command's machinery: they answer at once
    probe = (
        "import sys; from scalerd.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('scalerd.importers', 'scalerd.daemon', 'scalerd.config', "
        "'azure', 'redis') if m in sys.modules))"
    )
    loaded = subprocess.run([SCALERD[0], "-c", probe], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
    unknown = scalerd("help", "audti")
    assert unknown.returncode == 2 and "no command 'audti'" in unknown.stderr


def _bash_complete(script: str, line: str) -> list[str]:
    words = line.split(" ")
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; _scalerd; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=20, check=True
    )
    return done.stdout.split()


def test_completion_scripts_complete_commands_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bash = in_process(capsys, monkeypatch, "completion", "bash").stdout
    assert _bash_complete(bash, "scalerd au") == ["audit"]
    assert _bash_complete(bash, "scalerd audit --ac") == ["--action"]
    assert _bash_complete(bash, "scalerd pause web --scale-") == ["--scale-in", "--scale-out"]
    assert _bash_complete(bash, "scalerd completion f") == ["fish"]
    (tmp_path / "config.toml").write_text("")
    assert "config.toml" in _bash_complete(bash, f"scalerd check --config {tmp_path}/con")[0]

    zsh = in_process(capsys, monkeypatch, "completion", "zsh").stdout
    fish = in_process(capsys, monkeypatch, "completion", "fish").stdout
    assert zsh.startswith("#compdef scalerd") and "'--wide[" in zsh
    if shutil.which("zsh"):
        (tmp_path / "_scalerd").write_text(zsh)
        check = subprocess.run(["zsh", "-n", str(tmp_path / "_scalerd")], capture_output=True)
        assert check.returncode == 0, check.stderr
    if shutil.which("fish"):
        (tmp_path / "scalerd.fish").write_text(fish)
        done = subprocess.run(
            [
                "fish",
                "--no-config",
                "-c",
                f"source {tmp_path}/scalerd.fish; complete -C 'scalerd au'",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.stdout.split("\t")[0] == "audit", done.stdout + done.stderr
        done = subprocess.run(
            [
                "fish",
                "--no-config",
                "-c",
                f"source {tmp_path}/scalerd.fish; complete -C 'scalerd audit --wi'",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.stdout.startswith("--wide"), done.stdout + done.stderr


def test_audit_fits_80_columns_and_wide_shows_everything(
    audited: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def audit(*extra: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, "audit", "--config", str(audited), *extra)

    table = scalerd("audit", "--config", str(audited), cwd=audited.parent)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("time (UTC)") and len(lines) == 5  # a header, 4 records
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert any(line.endswith("…") for line in lines[1:])  # a long why was cut
    # the columns line up: each record's action starts where the header's does
    start = lines[0].index("action")
    assert all(line[start:].split()[0] in ("scaled", "held") for line in lines[1:])

    wide = audit("--wide")
    assert "NoChangeRecommended" in wide.stdout and "…" not in wide.stdout
    assert "reason" in wide.stdout.splitlines()[0]

    recorded = audit_records(audited.parent)
    for actions in ("held", "scaled,failed"):
        chosen = [r for r in recorded if r["action"] in actions.split(",")]
        rows = audit("--action", actions).stdout.splitlines()[1:]
        assert len(rows) == len(chosen), (actions, rows)
        assert [row.split()[3] for row in rows] == [r["action"] for r in chosen]
    assert any(r["action"] == "held" for r in recorded)  # the filter had something to keep
    reason = audit("--reason", "NoChangeRecommended", "--json")
    records = [json.loads(line) for line in reason.stdout.splitlines()]
    assert records and {r["not_scaled_reason"] for r in records} == {"NoChangeRecommended"}
    wrong = audit("--action", "scald")
    assert wrong.returncode == 2 and "--action: unknown scald; choose from scaled" in wrong.stderr


def test_audit_follow_prints_one_header_and_aligned_lines(tmp_path: Path, audited: Path) -> None:
    """Records appended while it follows (those of ``audited``, as a daemon appends them)."""
    config = write_config(tmp_path, BODY)
    (tmp_path / "audit").mkdir()
    audit_file = tmp_path / "audit" / "audit.jsonl"
    audit_file.write_text("")
    follow = subprocess.Popen(
        [*SCALERD, "audit", "--config", str(config), "--follow"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)  # the header comes first, before any record
        for line in (audited.parent / "audit" / "audit.jsonl").read_text().splitlines():
            with audit_file.open("a") as file:
                file.write(line + "\n")
            time.sleep(0.3)  # one poll or so apart: each is printed on its own
        while len(lines) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follow.terminate()
        follow.wait(10)
        reader.join(5)
        if follow.stdout is not None:
            follow.stdout.close()
    rows = [line.rstrip("\n") for line in lines]
    assert len(rows) == 5, rows
    assert rows[0].startswith("time (UTC)") and not any(r.startswith("time") for r in rows[1:])
    assert all(len(row) <= 80 for row in rows)
    for column in ("target", "action", "capacity", "why"):
        start = rows[0].index(column)
        assert all(row[start - 2 : start] == "  " for row in rows[1:]), column


def test_parse_moment_forms() -> None:
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert parse_moment("02:14", now) == datetime(2026, 3, 1, 2, 14, tzinfo=UTC)
    assert parse_moment("23:50", now) == datetime(2026, 2, 28, 23, 50, tzinfo=UTC)  # yesterday
    assert parse_moment("2026-02-27 02:14:05", now) == datetime(2026, 2, 27, 2, 14, 5, tzinfo=UTC)
    assert parse_moment("2026-02-27T03:14:05+01:00", now) == datetime(
        2026, 2, 27, 2, 14, 5, tzinfo=UTC
    )
    assert parse_moment("45m", now) == datetime(2026, 3, 1, 8, 45, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_moment("soonish", now)


def test_explain_at_a_time_and_by_id(
    audited: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [r for r in audit_records(audited.parent) if r["target"] == "jobs"]
    first, second = records

    def explain(*extra: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, "explain", "jobs", "--config", str(audited), *extra)

    at_first = explain("--at", first["ts"])
    assert at_first.returncode == 0, at_first.stderr
    assert f"record {first['id']}" in at_first.stdout and "In force at" in at_first.stdout
    # a moment between the two records (two runs may fall within one second)
    started, ended = (datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in records)
    just_before_second = explain("--at", (started + (ended - started) / 2).isoformat())
    assert f"record {first['id']}" in just_before_second.stdout, just_before_second.stderr
    at_second = explain("--at", second["ts"])
    assert f"record {second['id']}" in at_second.stdout
    by_id = explain("--id", first["id"])
    assert by_id.returncode == 0 and f"record {first['id']}" in by_id.stdout
    latest = explain()
    assert f"record {second['id']}" in latest.stdout
    too_early = explain("--at", "2001-01-01T00:00:00Z")
    assert (
        too_early.returncode == 1
        and "no decision recorded at or before 2001-01-01" in too_early.stderr
    )
    missing = explain("--id", "nope")
    assert missing.returncode == 1 and "no record with id 'nope'" in missing.stderr
    both = explain("--at", "1m", "--id", first["id"])
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_check_rule_file_in_words_with_warnings(tmp_path: Path) -> None:
    done = scalerd(
        "check",
        "--rule-file",
        "--config",
        str(ROOT / "rules" / "recipe-platform-api.toml"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "valid rule file" in done.stdout and "threshold: when" in done.stdout
    assert "warning: this target can never scale in" in done.stdout
    hpa = scalerd(
        "check", "--rule-file", "--config", str(ROOT / "rules" / "hpa-default.toml"), cwd=tmp_path
    )
    assert "track " in hpa.stdout and "warning" not in hpa.stdout


def test_check_says_which_cooldown_applies_on_a_ladder(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
        [[sources]]
        name = "cpu"
        kind = "replay"
        values = [50]
        step = "60s"

        [[actuators]]
        name = "db"
        kind = "azure-postgres-flexible"
        resource_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shop/providers/Microsoft.DBforPostgreSQL/flexibleServers/shop-db"
        skus = ["Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4"]

        [[targets]]
        name = "db"
        actuator = "db"
        min = 1
        max = 3
        [[targets.threshold]]
        when = "cpu > 80 avg 5m"
        action = "+1"
        cooldown = "5m"
        [[targets.threshold]]
        when = "cpu < 20 avg 5m"
        action = "-1"
        cooldown = "2h"
        """,
    )
    done = scalerd("check", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "cooldown: up 15m, down 1h (the default on a ladder of tiers)" in out
    assert (
        "cooldown after a scale-out by threshold 'cpu > 80 avg 5m => +1': 15m "
        "(the ladder's default scale-out cooldown; the rule's own 5m is shorter)"
    ) in out
    assert (
        "cooldown after a scale-in by threshold 'cpu < 20 avg 5m => -1': 2h "
        "(the rule's own; the ladder's default scale-in cooldown is 1h)"
    ) in out
    assert "warning" not in out


def _until_record(directory: Path, wanted: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [record for record in audit_records(directory) if wanted(record)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no such record; the last was {audit_records(directory)[-1:]}")


def _controls(url: str, target: str) -> dict[str, Any]:
    targets = httpx.get(f"{url}/api/targets", timeout=5).json()["targets"]
    return next(t["controls"] for t in targets if t["name"] == target)


def test_pause_resume_override_against_a_running_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon is a real process; the commands run in this one (they only talk HTTP)."""
    config = write_config(
        tmp_path, BODY, header='control_token_env = "SCALERD_TEST_CONTROL_TOKEN"\n'
    )
    monkeypatch.setenv("SCALERD_TEST_CONTROL_TOKEN", TOKEN)
    target = "checkout-api-eu-west"
    with running(config) as daemon:
        url = daemon.url

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return in_process(capsys, monkeypatch, *args, "--config", str(config), "--url", url)

        _until_record(tmp_path, lambda r: r["target"] == target)  # evaluated once
        monkeypatch.setenv("SCALERD_TEST_CONTROL_TOKEN", "")
        refused = cli("pause", target)
        assert refused.returncode == 1 and "set $SCALERD_TEST_CONTROL_TOKEN" in refused.stderr
        assert _controls(url, target)["pause"] is None
        monkeypatch.setenv("SCALERD_TEST_CONTROL_TOKEN", TOKEN)

        paused = cli("pause", target, "--scale-in", "--for", "30m")
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.startswith(f"{target}: scale-in paused until ")
        controls = _controls(url, target)
        assert controls["pause"] == "scale_in" and controls["pause_until"] is not None

        override = cli("override", target, "11", "--for", "1h")
        assert override.returncode == 0, override.stderr
        assert "scale-in paused until" in override.stdout and "held at 11 until" in override.stdout
        # the daemon evaluates at once: to 11 is a scale-out (from 9 or fewer), which the
        # pause of scale-in lets through
        _until_record(tmp_path, lambda r: r["target"] == target and r["desired"] == 11)

        resumed = cli("resume", target)
        assert resumed.returncode == 0 and resumed.stdout.startswith(f"{target}: held at 11")
        assert _controls(url, target)["pause"] is None and _controls(url, target)["override"] == 11
        cleared = cli("override", target, "0", "--clear")
        assert cleared.stdout.strip() == f"{target}: scaling by its rules"

        unknown = cli("pause", "nope")
        assert unknown.returncode == 1 and "no target named 'nope'" in unknown.stderr
    gone = cli("resume", target)
    assert gone.returncode == 1 and f"no scalerd answers at {url}" in gone.stderr
