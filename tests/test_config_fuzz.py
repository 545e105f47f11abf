"""A seeded fuzzer over the shipped configs and rule files (issue #8, must show): every
mutation is accepted, or rejected with ``ConfigError`` whose every issue names its file
and line, and its key (a TOML syntax error has no key: the text did not parse). Nothing
else escapes: no ``OverflowError``, ``MemoryError``, ``UnicodeDecodeError`` or traceback.

Accepted configs also go through ``summary_lines``, as ``scalerd check`` prints them.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from scalerd.config import load_config, load_rule_file
from scalerd.errors import ConfigError, ConfigIssue
from scalerd.summary import summary_lines

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([ROOT / "config.toml", *ROOT.glob("examples/*.toml"), *ROOT.glob("rules/*.toml")])
MUTATIONS_PER_FILE = 45  # x 14 files: more than 500 in all
SEED = 20261201

# values a typo, a careless edit or an attacker puts where a value was
BAD_VALUES = (
    '"20"',
    "true",
    "false",
    "inf",
    "-inf",
    "nan",
    '"inf"',
    "9223372036854775807",
    "-9223372036854775808",
    "-1",
    "0",
    "0.5",
    "1e308",
    "-1e308",
    '"99999999999d"',
    f'"{"9" * 30}s"',
    '"P99999999D"',
    '"PT0S"',
    '"0s"',
    '"1ms"',
    '""',
    '"x"',
    "[]",
    "{}",
    '[1, "a"]',
    "[[1]]",
    "{ a = 1 }",
    '"0 0 30 2 *"',
    '"* * * * * *"',
    '"61 25 * * *"',
    "2024-01-01T00:00:00",
    "2024-01-01",
    "12:00:00",
    f'"{"a" * 5000}"',
    '"Mars/Olympus"',
    '"max"',
    '"total"',
    '"=99999999999"',
    '"+1e9"',
    '"cpu > 1e400 avg 5m"',
    f'"cpu > {"9" * 400} avg 5m"',
    "[" * 600 + "]" * 600,
    "{ a = " * 400 + "1" + " }" * 400,
    "[" * 60 + "]" * 60,
    "[" * 250 + "]" * 250,
)
NOISE = ("[", "]]", '"', "=", "{", ",", "\\", "\xff", "\x00", "#", "'''", "\n[[targets]]\n")


def _mutate(text: str, rng: random.Random) -> str | bytes:
    lines = text.splitlines(keepends=True)
    pick = rng.randrange(len(lines))
    choice = rng.randrange(9)
    if choice <= 2:  # a bad value where a value was (the most telling mutation)
        assignments = [
            i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")
        ]
        index = rng.choice(assignments)
        key = lines[index].split("=", 1)[0]
        lines[index] = f"{key}= {rng.choice(BAD_VALUES)}\n"
    elif choice == 3:
        del lines[pick]
    elif choice == 4:
        lines.insert(pick, lines[pick])
    elif choice == 5:
        return text[: rng.randrange(len(text))]
    elif choice == 6:  # a misspelt key or header
        line = lines[pick]
        if line.strip():
            at = rng.randrange(len(line.rstrip("\n")))
            lines[pick] = line[:at] + rng.choice("xz_-.") + line[at + 1 :]
    elif choice == 7:
        other = rng.randrange(len(lines))
        lines[pick], lines[other] = lines[other], lines[pick]
    else:
        noise = rng.choice(NOISE)
        at = rng.randrange(len(text))
        mutated = text[:at] + noise + text[at:]
        return mutated.encode("utf-8").replace("\xff".encode(), b"\xff")
    return "".join(lines)


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _check_issue(issue: ConfigIssue) -> str | None:
    """What is missing from a reported problem, if anything."""
    file = Path(issue.file)
    if not file.is_file():
        return f"names no file it read: {issue}"
    if issue.line is None or issue.line < 1:
        return f"names no line: {issue}"
    lines = max(1, file.read_bytes().count(b"\n") + 1)
    if issue.line > lines:
        return f"names line {issue.line} of a {lines}-line file: {issue}"
    unparsed = issue.message.startswith(("TOML syntax error", "not UTF-8", "a number far too"))
    if not issue.path and not unparsed:
        return f"names no key: {issue}"
    return None


def _loaders(tmp_path: Path, source: Path) -> tuple[Path, list[Callable[[], object]]]:
    """Where the mutated copy of ``source`` goes and how it is loaded: a config as
    ``scalerd check`` does, a rule file alone and included by a target."""
    if source.parent.name == "rules":
        mutated = tmp_path / "rules" / source.name
        wrapper = tmp_path / "config.toml"
        _write(
            wrapper,
            '[[sources]]\nname = "m"\nkind = "replay"\nvalues = [1]\nstep = "60s"\n'
            '[[actuators]]\nname = "a"\nkind = "recording"\n'
            f'[[targets]]\nname = "t"\nactuator = "a"\nrules = "rules/{source.name}"\n',
        )
        return mutated, [lambda: load_rule_file(mutated), lambda: load_config(wrapper)]
    mutated = tmp_path / source.relative_to(ROOT)
    return mutated, [lambda: summary_lines(load_config(mutated))]


@pytest.mark.parametrize("source", SHIPPED, ids=[path.name for path in SHIPPED])
def test_mutations_are_accepted_or_rejected_with_file_line_and_key(
    tmp_path: Path, source: Path
) -> None:
    rng = random.Random(f"{SEED}:{source.name}")
    text = source.read_text(encoding="utf-8")
    mutated, loaders = _loaders(tmp_path, source)
    failures: list[str] = []
    rejected = 0
    for round_ in range(MUTATIONS_PER_FILE):
        content = _mutate(text, rng)
        _write(mutated, content)
        for load in loaders:
            try:
                load()
            except ConfigError as error:
                rejected += 1
                failures += [
                    f"mutation {round_}: {problem}"
                    for problem in map(_check_issue, error.issues)
                    if problem
                ]
                if not error.issues:
                    failures.append(f"mutation {round_}: a ConfigError with no issue")
            except Exception:  # the point of the test: nothing else may escape
                failures.append(f"mutation {round_}:\n{content!r}\n{traceback.format_exc()}")
    assert not failures, "\n".join(failures[:5])
    # the mutations do bite: most are rejected, so the checks above checked something
    assert rejected >= MUTATIONS_PER_FILE // 2


def test_the_fuzzer_covers_every_shipped_file_with_500_mutations() -> None:
    assert len(SHIPPED) >= 14
    assert len(SHIPPED) * MUTATIONS_PER_FILE >= 500
