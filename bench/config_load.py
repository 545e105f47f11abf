"""Config load time at 100, 1,000 and 10,000 targets (issue #9, "a fast config load").

Each generated config has three shared replay sources, a recording actuator per target and
per target three rules: a utilisation track, a p95-over-5m total track and an avg-5m
threshold. Half the targets write their rules inline, half include one shared rule file
(``rules = "rules/shared.toml"``) and override ``max``, so both paths are measured.

The baseline, measured in the same run, is ``tomli.loads`` of the same text (the parser the
load uses; ``tomllib`` is the same code, uncompiled, and three times slower): the ratio
says what validation, includes and binding add over parsing alone.

    python bench/config_load.py [--sizes 100,1000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import tomli

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the working tree, installed or not

from scalerd.config import load_config  # noqa: E402

SOURCES = ("cpu", "requests", "latency")
RULES = """\
interval = "15s"
min = 1
max = 20

[[track]]
metric = "cpu"
type = "utilization"
target = 70

[[track]]
metric = "requests"
type = "total"
target = 100
aggregation = "p95"
window = "5m"

[[threshold]]
when = "latency > 250 avg 5m"
action = "+2"
"""


def generate(folder: Path, targets: int) -> Path:
    """Write ``config.toml`` (and ``rules/shared.toml``) for ``targets`` targets."""
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "rules" / "shared.toml").write_text(RULES)
    parts = ['[daemon]\nlisten = "127.0.0.1:8080"\n']
    for index, name in enumerate(SOURCES):
        values = ", ".join(str(40 + 10 * ((index + step) % 5)) for step in range(12))
        parts.append(
            f'[[sources]]\nname = "{name}"\nkind = "replay"\nvalues = [{values}]\nstep = "60s"\n'
        )
    inline = "\n".join(
        line if not line.startswith("[") else line.replace("[", "[targets.", 1)
        for line in RULES.replace("[[", "[").replace("]]", "]").splitlines()
    )
    inline = inline.replace("[targets.track]", "[[targets.track]]").replace(
        "[targets.threshold]", "[[targets.threshold]]"
    )
    for index in range(targets):
        name = f"app-{index:05d}"
        parts.append(f'[[actuators]]\nname = "{name}"\nkind = "recording"\ninitial = 2\n')
        if index % 2:
            parts.append(
                f'[[targets]]\nname = "{name}"\nactuator = "{name}"\n'
                f'rules = "rules/shared.toml"\nmax = {10 + index % 30}\n'
            )
        else:
            parts.append(f'[[targets]]\nname = "{name}"\nactuator = "{name}"\n{inline}\n')
    path = folder / "config.toml"
    path.write_text("\n".join(parts))
    return path


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'targets':>8} {'load_config':>12} {'per target':>11} {'tomli':>9} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(part) for part in args.sizes.split(",")):
            path = generate(Path(scratch) / str(size), size)
            text = path.read_text()
            config = load_config(path)
            assert len(config.targets) == size, len(config.targets)
            load = best_of(args.repeat, functools.partial(load_config, path))
            parse = best_of(args.repeat, functools.partial(tomli.loads, text))
            print(
                f"{size:>8} {load:>11.3f}s {load / size * 1e6:>9.0f}µs "
                f"{parse:>8.3f}s {load / parse:>6.1f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
