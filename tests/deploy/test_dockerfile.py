"""The top-level Dockerfile: hadolint-clean, a slim multi-stage build, and its run contract
replayed outside a container (no image can be pulled here): the same argv, the same uid,
the same paths, laid out under a scratch root, in this virtualenv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scalerd.config import load_config

from .dockerfile import Stage, excluded_by_dockerignore, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
CONFIG = "/etc/scalerd/config.toml"
DATA = "/var/lib/scalerd"
UID = 10001
TOKEN = "contract-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def final() -> Stage:
    return parse_dockerfile(DOCKERFILE)[-1]


def test_hadolint_is_clean() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_slim_non_root_with_volume_and_healthcheck(final: Stage) -> None:
    stages = parse_dockerfile(DOCKERFILE)
    assert len(stages) == 2 and stages[0].name == "build"
    assert all(stage.base.startswith("python:3.12-slim") for stage in stages)
    assert "pip wheel" in " ".join(stages[0].all("RUN"))
    assert final.last("USER") == f"{UID}:{UID}"
    assert final.exec_form("VOLUME") == [DATA]
    assert final.last("EXPOSE") == "8080"
    assert final.exec_form("ENTRYPOINT") + final.exec_form("CMD") == [
        *("scalerd", "run", "--config", CONFIG)
    ]
    options, probe = final.healthcheck()
    assert probe[0] == "python" and "curl" not in " ".join(probe)
    assert "http://127.0.0.1:8080/healthz" in probe[-1]
    assert {"interval", "timeout", "retries"} <= set(options)


def test_dockerignore_keeps_every_copied_source_and_drops_the_rest(final: Stage) -> None:
    ignore = ROOT / ".dockerignore"
    stages = parse_dockerfile(DOCKERFILE)
    sources = [
        s for stage in stages for srcs, _, opt in stage.copies() if "from" not in opt for s in srcs
    ]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not excluded_by_dockerignore(ignore, source), source
    for local in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "audit/audit.jsonl"):
        assert excluded_by_dockerignore(ignore, local), local


def test_the_image_config_is_valid_and_writes_only_under_the_volume() -> None:
    config = load_config(ROOT / "deploy" / "container.toml")
    assert config.daemon.listen == "0.0.0.0:8080"
    assert config.daemon.control_token_env == "SCALERD_CONTROL_TOKEN"
    assert config.audit.path.startswith(DATA + "/")
    assert config.state.location().startswith(DATA + "/")
    assert config.state.import_file.startswith(DATA + "/")


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    """A folder standing for the container's "/", readable by the image's uid (pytest's own
    tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="scalerd-image-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _lay_out(final: Stage, root: Path, listen: str) -> None:
    """What the final stage puts where, under ``root``: its COPYs and its folders."""
    for sources, destination, options in final.copies():
        assert "from" not in options
        target = root / destination.lstrip("/")
        for source in sources:
            if destination.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    config = root / CONFIG.lstrip("/")
    text = config.read_text().replace(f'"{DATA}/', f'"{root}{DATA}/')
    # loopback only in tests: the image's 0.0.0.0:8080 becomes a free local port
    config.write_text(text.replace('listen = "0.0.0.0:8080"', f'listen = "{listen}"'))
    (root / DATA.lstrip("/")).mkdir(parents=True)
    for folder in (root / "etc", root / "var"):
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() == 0:
        os.chown(root / DATA.lstrip("/"), UID, UID)


def _until(condition: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def _as_image_user(argv: list[str], scratch: Path) -> list[str]:
    """``argv`` run as uid:gid 10001 with no other groups, as the image's USER says.

    This interpreter may live below a folder only root may enter (pyenv under ``/root``).
    Then, in a private mount namespace of that command alone, a world-readable stand-in
    holding just the interpreter's folder is laid over it; nothing outside changes.
    """
    if os.geteuid() != 0:
        return argv  # not root: the current user stands in for the image's
    interpreter = Path(os.path.realpath(sys.executable))
    closed = next((p for p in reversed(interpreter.parents) if not p.stat().st_mode & 0o001), None)
    drop = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "--"]
    if closed is None:
        return [*drop, *argv]
    child = interpreter.relative_to(closed).parts[0]
    stand_in = scratch / "stand-in"
    (stand_in / child).mkdir(parents=True, exist_ok=True)
    stand_in.chmod(0o755)
    script = (
        f'mount --bind "{closed / child}" "{stand_in / child}" && '
        f'mount --rbind "{stand_in}" "{closed}" && exec "$@"'
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        *drop,
        *argv,
    ]


def test_entrypoint_contract_outside_a_container(final: Stage, scratch_root: Path) -> None:
    """ENTRYPOINT + CMD as the image runs them (``scalerd`` is the console script this venv
    installed, as pip installs it in the image), as uid 10001 when the test runs as root,
    in WORKDIR, with the image's ENV; the HEALTHCHECK command itself decides health."""
    _lay_out(final, scratch_root, "127.0.0.1:0")
    argv = final.exec_form("ENTRYPOINT") + final.exec_form("CMD")
    argv = [
        str(BIN / argv[0]),
        *(part.replace(CONFIG, f"{scratch_root}{CONFIG}") for part in argv[1:]),
    ]
    workdir = scratch_root / final.last("WORKDIR").lstrip("/")
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(workdir),
        "SCALERD_CONTROL_TOKEN": TOKEN,
        **dict(word.split("=", 1) for word in " ".join(final.all("ENV")).split()),
    }
    process = subprocess.Popen(
        _as_image_user(argv, scratch_root),
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    probe: list[str] = []
    try:
        assert process.stdout is not None
        address, output = None, []
        for line in process.stdout:
            output.append(line)
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "listening":
                address = str(event["address"])
                break
        assert address is not None, "the daemon never listened:\n" + "".join(output)
        port = address.rsplit(":", 1)[1]
        _, healthcheck = final.healthcheck()
        probe = [str(BIN / "python"), *(p.replace(":8080/", f":{port}/") for p in healthcheck[1:])]
        done = subprocess.run(_as_image_user(probe, scratch_root), env=env, timeout=20, check=False)
        assert done.returncode == 0

        audit = workdir / "audit" / "audit.jsonl"
        _until(lambda: audit.exists() and audit.read_text().strip())
        if os.geteuid() == 0:  # the daemon and what it wrote belong to the image's uid
            assert audit.stat().st_uid == UID
            assert (workdir / "state" / "state.db").stat().st_uid == UID
        # the control endpoints answer only with the token the image documents
        url = f"{address}/api/targets/workers/controls"
        assert httpx.post(url, json={"pause": "all"}, timeout=5).status_code == 401
        authorized = httpx.post(
            url, json={"pause": "all"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert authorized.status_code == 200, authorized.text
        # nothing is written beside the read-only config
        assert sorted(p.name for p in (scratch_root / "etc" / "scalerd").iterdir()) == [
            "config.toml",
            "traces",
        ]
    finally:
        process.terminate()
        process.wait(20)
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == 0
    # and the healthcheck fails once the daemon is gone
    assert subprocess.run(probe, timeout=20, check=False, capture_output=True).returncode != 0
