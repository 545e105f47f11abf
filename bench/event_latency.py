"""From the HTTP request of an Azure Monitor alert to the actuator's write, in a real
``scalerd run``: p50 and p99 over N alerts, beside the poll interval an event saves waiting
for, and against the baseline of a bare HTTP round trip (``GET /healthz``) to the same
process in the same run.

Each alert is the real common-schema sample with its ``metricValue`` set to 100 or 25 in
turn, so every evaluation scales a recording pool (2 ↔ 4 replicas) and the pool logs the
time of each write. The alerts go one at a time: each waits for its write, so none is
coalesced with another.

    python bench/event_latency.py [--events 500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    args = parser.parse_args()
    payload = json.loads(ALERT.read_text())
    condition = payload["data"]["alertContext"]["condition"]["allOf"][0]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "config.toml").write_text(textwrap.dedent(CONFIG))
        env = {**os.environ, "BENCH_ALERTS_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "scalerd", "run", "--config", "config.toml"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = _address(daemon)
            writes = work / "writes.jsonl"
            with httpx.Client(base_url=url, timeout=10) as http:
                _wait_ready(http)
                baseline = []
                for _ in range(args.events):
                    started = time.perf_counter()
                    http.get("/healthz").raise_for_status()
                    baseline.append((time.perf_counter() - started) * 1000)
                latencies = []
                log = Writes(writes)
                for number in range(args.events):
                    condition["metricValue"] = 25.0 if number % 2 else 100.0
                    payload["data"]["essentials"]["alertId"] = f"bench-{number}"
                    body = json.dumps(payload).encode()
                    sent = time.time()
                    answer = http.post(
                        "/events/alerts", content=body, headers={"X-Scalerd-Secret": SECRET}
                    )
                    if answer.status_code != 202:
                        raise SystemExit(f"alert {number}: {answer.status_code} {answer.text}")
                    written = log.next()
                    latencies.append((written - sent) * 1000)
        finally:
            daemon.terminate()
            daemon.wait(20)
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    b50, b99 = _percentile(baseline, 0.5), _percentile(baseline, 0.99)
    print(f"alert → actuator write, {args.events} alerts, one target, direct (no forwarding)")
    print(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    print(
        f"{'baseline: GET /healthz round trip':34}{b50:9.2f}{b99:9.2f}{statistics.mean(baseline):9.2f}"
    )
    print(
        f"{'alert POST → actuator write':34}{p50:9.2f}{p99:9.2f}{statistics.mean(latencies):9.2f}"
    )
    print(f"{'ratio to the baseline':34}{p50 / b50:9.1f}{p99 / b99:9.1f}")
    print(
        f"poll interval {INTERVAL}: without the event the decision waits up to {INTERVAL} for the next poll"
    )


def _address(daemon: subprocess.Popen[str]) -> str:
    """The daemon's URL from its log; the log is drained from then on, so it never blocks."""
    assert daemon.stdout is not None
    for line in daemon.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if "listening" in line and found:
            threading.Thread(target=daemon.stdout.read, daemon=True).start()
            return found.group(0)
    raise SystemExit("scalerd did not start listening")


def _wait_ready(http: httpx.Client) -> None:
    for _ in range(200):
        if http.get("/healthz").status_code == 200:
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
