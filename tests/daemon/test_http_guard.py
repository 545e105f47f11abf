"""The control token: refused at start when empty or short, refused without the ``Bearer``
scheme, required off localhost for the page and the API too (``protect_reads``), and never
in the log, not even when aiohttp quotes a malformed header line. Six configured secrets,
echoed back by the endpoints scalerd reads, appear nowhere in the log or the audit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from scalerd.daemon.app import Daemon
from scalerd.errors import StartupError

from .build import SCALERD, audit_records, replay_target, running, write_config
from .conftest import REDIS_PASSWORD

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
        pytest.param(None, "T_CONTROL_TOKEN, which is not set", id="unset"),
        pytest.param("short-token", "11 characters long; it needs at least 16", id="short"),
        pytest.param(" " * 15, "15 characters long", id="blank"),
    ],
)
async def test_an_unset_or_short_token_stops_the_daemon_before_it_listens(
    tmp_path: Path, token: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if token is None:
        monkeypatch.delenv("T_CONTROL_TOKEN", raising=False)
    else:
        monkeypatch.setenv("T_CONTROL_TOKEN", token)
    async with Daemon(_config(tmp_path)) as daemon:
        with pytest.raises(StartupError, match=message):
            await daemon.serve()
        assert daemon.listening_on is None


def test_the_empty_variable_is_a_start_up_error_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Present but empty: it used to switch authentication off (compare_digest("", ""))."""
    monkeypatch.setenv("T_CONTROL_TOKEN", "")
    done = subprocess.run(
        [*SCALERD, "run", "--config", str(_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "scalerd run: the control token in T_CONTROL_TOKEN is 0 characters long; "
        "it needs at least 16"
    )


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


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with the Authorization header it received, where a source will
    quote it back in its error: the worst a misbehaving endpoint can do."""

    def do_GET(self) -> None:
        offered = self.headers.get("Authorization", "")
        if self.path.startswith("/prom"):
            payload = {"status": "error", "errorType": "bad_data", "error": f"no: {offered}"}
        else:
            payload = {"value": offered, "detail": f"token was {offered.split(' ')[-1]}"}
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_six_configured_secrets_appear_nowhere_in_the_log_or_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echo: str, redis_with_password: int
) -> None:
    secrets = {
        "T_CONTROL_TOKEN": TOKEN,
        "T_REDIS_PASSWORD": REDIS_PASSWORD,
        "T_JSON_TOKEN_A": "json-a-7f3e9c1d5b2a4e6f",
        "T_JSON_TOKEN_B": "json-b-0a1b2c3d4e5f6a7b",
        "T_PROM_TOKEN_A": "prom-a-9e8d7c6b5a4f3e2d",
        "T_PROM_TOKEN_B": "prom-b-1122334455667788",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    header = f"""
    [redis]
    url = "redis://127.0.0.1:{redis_with_password}/0"
    password_env = "T_REDIS_PASSWORD"

    [state]
    store = "redis"
    """
    sources = "".join(
        f"""
[[sources]]
name = "{name}"
kind = "{kind}"
url = "{echo}{path}"
{query}token_env = "{variable}"
"""
        for name, kind, path, query, variable in (
            ("a", "http-json", "/a", 'path = "value"\n', "T_JSON_TOKEN_A"),
            ("b", "http-json", "/b", 'path = "detail"\n', "T_JSON_TOKEN_B"),
            ("c", "prometheus", "/prom-c", 'query = "up"\n', "T_PROM_TOKEN_A"),
            ("d", "prometheus", "/prom-d", 'query = "up"\n', "T_PROM_TOKEN_B"),
        )
    )
    body = (
        sources
        + """
[[actuators]]
name = "pool"
kind = "recording"
initial = 2

[[targets]]
name = "api"
actuator = "pool"
interval = "200ms"
max = 8
"""
        + "".join(
            f'[[targets.track]]\nmetric = "{m}"\ntype = "total"\ntarget = 10\n' for m in "abcd"
        )
    )
    config = write_config(tmp_path, body, header=header)
    text = config.read_text().replace(
        "[daemon]\n", '[daemon]\ncontrol_token_env = "T_CONTROL_TOKEN"\n', 1
    )
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "{BEYOND}:0"'))
    with running(config) as child:
        url = child.url
        auth = {"Authorization": f"Bearer {TOKEN}"}
        _until_records(tmp_path, 6)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(f"GET / HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\x01\r\n\r\n".encode())
            raw.recv(4096)
        answers = [
            httpx.get(url + path, headers=auth, timeout=5).text
            for path in ("/", "/api/decisions", "/api/targets", "/readyz", "/metrics")
        ]
        child.signal(signal.SIGTERM)
        assert child.wait() == 0
    records = audit_records(tmp_path)
    assert records and all(r["action"] == "held" for r in records)
    errors = [i["error"] for r in records for i in r["inputs"] if i["error"]]
    assert len(errors) >= 4 * 6  # every source failed, every time, quoting what it got
    everything = "".join(child.raw) + json.dumps(records) + "".join(answers)
    for name, value in secrets.items():
        assert value not in everything, name


def _until_records(directory: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(audit_records(directory)) < count:
        assert time.monotonic() < deadline, "no audit records"
        time.sleep(0.1)
