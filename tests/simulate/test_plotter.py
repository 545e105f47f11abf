"""The charts drawn in a child process while the replay runs: the same bytes as drawn in
this process, every failure a line on stderr and exit 1 (never a traceback), and
``--no-plot`` never loading matplotlib."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from scalerd.cli import main
from scalerd.simulate.plotter import Plotter, Replay
from scalerd.simulate.run import Timeline, simulate
from scalerd.simulate.scenario import load_scenario
from scalerd.simulate.scores import score
from scalerd.traces import load_trace

from .test_cli import AZURE, HPA, PNG_SIGNATURE, ROOT, unseen_trace


def _replay(tmp_path: Path) -> Timeline:
    scenario = load_scenario(HPA, target=None, overrides={"peak_replicas": 20})
    return simulate(scenario, load_trace(unseen_trace(tmp_path)))


def _command(
    tmp_path: Path, out: Path, *args: str, before: str = ""
) -> subprocess.CompletedProcess[str]:
    """``scalerd simulate`` in a fresh interpreter (``before`` runs first), which then
    prints whether this process loaded matplotlib."""
    argv = [
        *("simulate", "--config", str(HPA), "--trace", str(unseen_trace(tmp_path))),
        *("--peak-replicas", "20", "--out", str(out), *args),
    ]
    script = textwrap.dedent(
        f"""
        import sys
        {before}
        from scalerd.cli import main
        code = main({argv!r})
        print("matplotlib loaded:", "matplotlib" in sys.modules)
        sys.exit(code)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_chart_drawn_in_the_child_has_the_bytes_of_one_drawn_here(tmp_path: Path) -> None:
    timeline = _replay(tmp_path)
    scores = score(timeline)
    here, there = Plotter.start(fork=False), Plotter.start()
    assert here.pid is None and there.pid is not None
    for plotter, name in ((here, "here"), (there, "there")):
        plotter.timeline(timeline, scores, "t", tmp_path / f"{name}.png", None)
        replays = [Replay("a", timeline, scores), Replay("b", timeline, scores)]
        plotter.comparison(replays, "c", tmp_path / f"{name}-compare.png", (0.0, 3600.0))
        assert plotter.finish() == []
    for name in ("", "-compare"):
        drawn = (tmp_path / f"here{name}.png").read_bytes()
        assert drawn.startswith(PNG_SIGNATURE)
        assert (tmp_path / f"there{name}.png").read_bytes() == drawn


def test_with_other_threads_running_it_draws_in_this_process(tmp_path: Path) -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        plotter = Plotter.start()
    finally:
        release.set()
        thread.join()
    assert plotter.pid is None
    timeline = _replay(tmp_path)
    plotter.timeline(timeline, score(timeline), "t", tmp_path / "here.png", None)
    assert plotter.finish() == []
    assert (tmp_path / "here.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("fork", [True, False])
def test_a_chart_that_cannot_be_written_is_one_line(tmp_path: Path, fork: bool) -> None:
    timeline = _replay(tmp_path)
    (tmp_path / "taken.png").mkdir()
    with Plotter.start(fork=fork) as plotter:
        plotter.timeline(timeline, score(timeline), "t", tmp_path / "taken.png", None)
        plotter.timeline(timeline, score(timeline), "t", tmp_path / "fine.png", None)
        failures = plotter.finish()
    assert failures == [
        f"cannot draw {tmp_path / 'taken.png'}: IsADirectoryError: " + failures[0].split(": ", 2)[2]
    ]
    assert (tmp_path / "fine.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_child_killed_before_drawing_fails_each_chart_it_kept(tmp_path: Path) -> None:
    timeline = _replay(tmp_path)
    plotter = Plotter.start()
    assert plotter.pid is not None
    os.kill(plotter.pid, signal.SIGKILL)
    plotter.timeline(timeline, score(timeline), "t", tmp_path / "lost.png", None)
    failures = plotter.finish()
    assert failures == [
        f"cannot draw {tmp_path / 'lost.png'}: ChildProcessError: "
        f"the plotting process was killed by signal {int(signal.SIGKILL)}"
    ]
    assert not (tmp_path / "lost.png").exists()


def test_the_command_draws_in_the_child_and_says_what_failed(tmp_path: Path) -> None:
    fine = _command(tmp_path, tmp_path / "fine")
    assert fine.returncode == 0, fine.stderr
    assert "matplotlib loaded: False" in fine.stdout  # drawn by the child
    assert (tmp_path / "fine" / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)

    (tmp_path / "taken" / "timeline.png").mkdir(parents=True)
    taken = _command(tmp_path, tmp_path / "taken")
    assert taken.returncode == 1
    assert taken.stderr.startswith(f"cannot draw {tmp_path / 'taken' / 'timeline.png'}: ")
    assert "Traceback" not in taken.stderr
    # the files are written all the same
    assert (tmp_path / "taken" / "timeline.csv").read_bytes() == (
        tmp_path / "fine" / "timeline.csv"
    ).read_bytes()


def test_matplotlib_failing_to_load_in_the_child_is_one_line_per_chart(tmp_path: Path) -> None:
    # None in sys.modules makes `import matplotlib` raise ImportError (the child inherits it)
    run = _command(
        tmp_path,
        tmp_path / "out",
        "--compare",
        str(AZURE),
        before="sys.modules['matplotlib'] = None",
    )
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"cannot draw {tmp_path / 'out' / label}"
        for label in ("hpa-default/timeline.png", "azure-autoscale/timeline.png", "compare.png")
    ]
    assert all("ModuleNotFoundError: import of matplotlib halted" in line for line in lines)


def test_no_plot_never_loads_matplotlib(tmp_path: Path) -> None:
    run = _command(
        tmp_path, tmp_path / "out", "--compare", str(AZURE), "--no-plot", before="import threading"
    )
    assert run.returncode == 0, run.stderr
    assert "matplotlib loaded: False" in run.stdout
    assert not list((tmp_path / "out").rglob("*.png"))
    assert (tmp_path / "out" / "azure-autoscale" / "timeline.csv").is_file()


def test_a_window_with_no_tick_is_still_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = unseen_trace(tmp_path)
    code = main(
        [
            "simulate",
            "--config",
            str(HPA),
            "--trace",
            str(trace),
            "--out",
            str(tmp_path / "o"),
            "--window",
            "20d:21d",
        ]
    )
    assert code == 1
    assert "holds no tick of this replay" in capsys.readouterr().err


def test_leaving_on_an_error_stops_and_reaps_the_child() -> None:
    with pytest.raises(RuntimeError), Plotter.start() as plotter:
        pid = plotter.pid
        assert pid is not None
        raise RuntimeError("the replay failed")
    assert plotter.pid is None and pid is not None
    with pytest.raises(ChildProcessError):  # already waited for: no zombie left
        os.waitpid(pid, os.WNOHANG)


def test_an_output_folder_that_cannot_be_made_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    run = _command(tmp_path, tmp_path / "a-file" / "out", "--no-plot")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"cannot write {tmp_path / 'a-file' / 'out'}: Not a directory"
    ]
