"""From the HTTP request of an Azure Monitor alert to the actuator's write, in a real
``scalerd run``: p50 and p99 over N alerts, beside the poll interval an event saves waiting
for, and against the baseline of a bare HTTP round trip (``GET /healthz``) to the same
process in the same run.

Each alert is the real common-schema sample with its ``metricValue`` set to 100 or 25 in
turn, so every evaluation scales a recording pool (2 ↔ 4 replicas) and the pool logs the
time of each write. The alerts go one at a time: each waits for its write, so none is
coalesced with another.

    python bench/event_latency.py [--events 500] [--replicas]

With ``--replicas``, two replicas share a private redis-server (state and leases): the
same alerts go to the target's owner, then to the other replica, which forwards them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ALERT = ROOT / "tests" / "events" / "wire" / "azuremonitor_commonschema_metric_static_fired.json"
SECRET = "bench-secret"
INTERVAL = "60s"

CONFIG = f"""
[daemon]
listen = "127.0.0.1:0"
watch_config = false
jitter = 0

[audit]
path = "audit/audit.jsonl"

[[sources]]
name = "cpu"
kind = "replay"
values = [50.0]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"
initial = 2
persist_to = "pool.txt"
log_to = "writes.jsonl"

[[targets]]
name = "web"
actuator = "pool"
interval = "{INTERVAL}"
max = 10
[[targets.track]]
metric = "cpu"
type = "utilization"
target = 50
[targets.behavior.scale_up]
stabilization_window = "0s"
policies = [{{type = "percent", value = 1000, period = "1s"}}]
[targets.behavior.scale_down]
stabilization_window = "0s"
policies = [{{type = "percent", value = 100, period = "1s"}}]

[[events]]
name = "alerts"
kind = "azure-monitor-alert"
secret_env = "BENCH_ALERTS_SECRET"
targets = ["web"]
metric = "cpu"
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument(
        "--replicas",
        action="store_true",
        help="two replicas on a private redis-server: direct to the owner, and forwarded",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        config = textwrap.dedent(CONFIG)
        redis_server = None
        if args.replicas:
            port = _free_port()
            redis_server = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    folder,
                ],
                stdout=subprocess.DEVNULL,
            )
            config += CLUSTER.format(port=port)
        (work / "config.toml").write_text(config)
        daemons = [
            _start(work, ["--instance", name] if args.replicas else [])
            for name in ("a", "b")[: 1 + args.replicas]
        ]
        try:
            urls = [_address(daemon) for daemon in daemons]
            writes = Writes(work / "writes.jsonl")
            with httpx.Client(timeout=10) as http:
                for url in urls:
                    _wait_ready(http, url)
                baseline = _round_trips(http, urls[0], args.events)
                rows = [("baseline: GET /healthz round trip", baseline)]
                if args.replicas:
                    owner = _owner(http, urls[0], "web")
                    direct, other = (urls[0], urls[1]) if owner == "a" else (urls[1], urls[0])
                    rows.append(
                        ("alert to the owner → write", _alerts(http, direct, writes, args.events))
                    )
                    rows.append(
                        ("alert forwarded → write", _alerts(http, other, writes, args.events))
                    )
                else:
                    rows.append(
                        ("alert POST → actuator write", _alerts(http, urls[0], writes, args.events))
                    )
        finally:
            for daemon in daemons:
                daemon.terminate()
                daemon.wait(20)
        audit = work / "audit" / "audit.jsonl"
        if audit.exists():  # what the evaluation itself took, as its records say
            records = [json.loads(line) for line in audit.read_text().splitlines()]
            rows.append(
                (
                    "  of which the evaluation (audit)",
                    [
                        r["duration_ms"]
                        for r in records
                        if (r.get("trigger") or {}).get("type") == "event"
                    ],
                )
            )
            if redis_server is not None:
                redis_server.terminate()
                redis_server.wait(10)
    mode = "two replicas" if args.replicas else "one replica, direct (no forwarding)"
    print(f"alert → actuator write, {args.events} alerts, one target, {mode}")
    print(f"{'':36}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'x base p50':>12}")
    b50 = _percentile(baseline, 0.5)
    for label, values in rows:
        p50, p99 = _percentile(values, 0.5), _percentile(values, 0.99)
        print(f"{label:36}{p50:9.2f}{p99:9.2f}{statistics.mean(values):9.2f}{p50 / b50:12.1f}")
    print(
        f"poll interval {INTERVAL}: without the event the decision waits up to {INTERVAL} for the next poll"
    )


CLUSTER = """
[redis]
url = "redis://127.0.0.1:{port}/0"

[state]
store = "redis"

[cluster]
name = "bench"
lease_ttl = "10s"
shards = 8
"""


def _start(work: Path, extra: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "BENCH_ALERTS_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "scalerd", "run", "--config", "config.toml", *extra],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _round_trips(http: httpx.Client, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        http.get(f"{url}/healthz").raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _alerts(http: httpx.Client, url: str, writes: Writes, count: int) -> list[float]:
    """Alerts one at a time, each at 100 % or 25 % CPU in turn, timed to the pool's write."""
    payload = json.loads(ALERT.read_text())
    condition = payload["data"]["alertContext"]["condition"]["allOf"][0]
    latencies = []
    for number in range(count):
        condition["metricValue"] = 25.0 if number % 2 else 100.0
        payload["data"]["essentials"]["alertId"] = f"bench-{url}-{number}"
        body = json.dumps(payload).encode()
        sent = time.time()
        answer = http.post(
            f"{url}/events/alerts", content=body, headers={"X-Scalerd-Secret": SECRET}
        )
        if answer.status_code != 202:
            raise SystemExit(f"alert {number}: {answer.status_code} {answer.text}")
        latencies.append((writes.next() - sent) * 1000)
    return latencies


def _owner(http: httpx.Client, url: str, target: str) -> str:
    for _ in range(200):
        owner = http.get(f"{url}/api/cluster").json()["targets"].get(target, {}).get("owner")
        if owner in ("a", "b"):
            return str(owner)
        time.sleep(0.05)
    raise SystemExit(f"no replica owns {target}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _address(daemon: subprocess.Popen[str]) -> str:
    """The daemon's URL from its log; the log is drained from then on, so it never blocks."""
    assert daemon.stdout is not None
    for line in daemon.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if "listening" in line and found:
            threading.Thread(target=daemon.stdout.read, daemon=True).start()
            return found.group(0)
    raise SystemExit("scalerd did not start listening")


def _wait_ready(http: httpx.Client, url: str) -> None:
    for _ in range(200):
        if http.get(f"{url}/healthz").status_code == 200:
            return
        time.sleep(0.05)


class Writes:
    """The pool's write log, read from where it was last read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._buffer = b""

    def next(self) -> float:
        """The wall-clock time of the next write logged."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._path.exists():
                with self._path.open("rb") as log:
                    log.seek(self._offset)
                    chunk = log.read()
                self._offset += len(chunk)
                self._buffer += chunk
                if b"\n" in self._buffer:
                    line, _, self._buffer = self._buffer.partition(b"\n")
                    return datetime.fromisoformat(json.loads(line)["at"]).timestamp()
            time.sleep(0.0005)
        raise SystemExit("the alert was not followed by a write within 10 s")


if __name__ == "__main__":
    main()
