"""The control token: refused at start when empty or short, refused without the ``Bearer``
scheme, required off localhost for the page and the API too (``protect_reads``), and never
in the log, not even when aiohttp quotes a malformed header line. Six configured secrets,
echoed back by the endpoints scalerd reads, appear nowhere in the log or the audit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .build import SCALERD, replay_target, running, write_config

TOKEN = "ctl-0123456789abcdef-token"
# 127.0.0.2 is loopback (the tests never leave the machine) but not "localhost" to scalerd
BEYOND = "127.0.0.2"


def _config(tmp_path: Path, extra: str = "") -> Path:
    """One target, listening beyond localhost, the control token in T_CONTROL_TOKEN."""
    path = write_config(tmp_path, replay_target((30, 30), interval="200ms"))
    text = path.read_text()
    text = text.replace("[daemon]\n", f'[daemon]\ncontrol_token_env = "T_CONTROL_TOKEN"\n{extra}')
    path.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "{BEYOND}:0"'))
    return path


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("", "T_CONTROL_TOKEN, which is not set", id="empty"),
        pytest.param("short-token", "11 characters long; it needs at least 16", id="short"),
    ],
)
def test_an_empty_or_short_token_is_a_start_up_error(
    tmp_path: Path, token: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_CONTROL_TOKEN", token)
    if not token:
        monkeypatch.delenv("T_CONTROL_TOKEN")
    done = subprocess.run(
        [*SCALERD, "run", "--config", str(_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr


def test_the_empty_variable_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Present but empty: it used to switch authentication off (compare_digest("", ""))."""
    monkeypatch.setenv("T_CONTROL_TOKEN", "")
    done = subprocess.run(
        [*SCALERD, "run", "--config", str(_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "0 characters long" in done.stderr


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("T_CONTROL_TOKEN", TOKEN)
    with running(_config(tmp_path)) as child:
        yield child


def test_the_token_needs_the_bearer_scheme_and_guards_reads_off_localhost(daemon: Any) -> None:
    url = daemon.url
    controls = f"{url}/api/targets/api/controls"
    body = {"pause": "scale_in", "pause_for": "5m"}
    assert httpx.post(controls, json=body, timeout=5).status_code == 401
    bare = httpx.post(controls, json=body, headers={"Authorization": TOKEN}, timeout=5)
    assert bare.status_code == 401 and "Bearer" in bare.json()["error"]
    basic = httpx.post(controls, json=body, headers={"Authorization": f"Basic {TOKEN}"}, timeout=5)
    assert basic.status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(controls, json=body, headers=good, timeout=5).status_code == 200
    for path in ("/", "/api/decisions", "/api/targets"):
        assert httpx.get(url + path, timeout=5).status_code == 401, path
        assert httpx.get(url + path, headers=good, timeout=5).status_code == 200, path
    for path in ("/healthz", "/metrics"):  # probes and Prometheus need no token
        assert httpx.get(url + path, timeout=5).status_code == 200, path


def test_protect_reads_off_leaves_the_page_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_CONTROL_TOKEN", TOKEN)
    config = _config(tmp_path, extra="protect_reads = false\n")
    with running(config) as child:
        url = child.url
        assert httpx.get(f"{url}/api/decisions", timeout=5).status_code == 200
        controls = f"{url}/api/targets/api/controls"
        assert httpx.post(controls, json={"pause": None}, timeout=5).status_code == 401


def test_no_token_beyond_localhost_warns_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, replay_target((30, 30), interval="200ms"))
    config.write_text(config.read_text().replace("127.0.0.1:0", f"{BEYOND}:0"))
    with running(config) as child:
        warning = child.wait_for(lambda e: "control endpoints are disabled" in e.get("event", ""))
        assert warning["level"] == "warning"
        assert httpx.post(f"{child.url}/api/targets/api/evaluate", timeout=5).status_code == 403


def test_a_malformed_header_line_with_the_token_never_reaches_the_log(daemon: Any) -> None:
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    for request in (
        f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\x01\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded: {TOKEN}\x00\r\n\r\n",
        f"GET /{TOKEN} HTTP/1.1\x01\r\n\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(request.encode())
            raw.recv(4096)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    log = "".join(daemon.raw)
    assert TOKEN not in log
    for line in daemon.raw:  # library records are JSON lines too, no plain traceback
        json.loads(line)
