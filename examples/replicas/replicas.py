"""Several scalerd replicas and a redis-server on loopback: the cluster demo, and the
harness the cluster tests and ``bench/takeover.py`` drive.

    python examples/replicas/replicas.py                  # 3 replicas, 60 targets, ./replicas-demo
    python examples/replicas/replicas.py --replicas 2 --targets 12 --dir /tmp/demo

It writes ``config.toml`` into the folder (every target scales a recording actuator that
keeps its capacity in ``capacity/`` and logs every write, with the fencing token it
carried, to ``writes.jsonl``), starts ``redis-server`` (append-only file, so a restart
keeps leases' tokens) and the replicas (``replica-1`` … on ports 8081 …), prints where
they listen, and stops everything on Ctrl-C. Then, in another terminal::

    scalerd cluster --config replicas-demo/config.toml     # members, shards, lease ages
    curl -s localhost:8081/api/cluster
    kill -9 <a replica's pid>                               # its shards move within ttl + renew
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Replicas", "write_config"]


def write_config(
    folder: Path,
    *,
    redis_port: int,
    targets: int = 60,
    lease_ttl: str = "3s",
    renew_every: str = "1s",
    interval: str = "2s",
    cooldown: str = "4s",
    shards: int = 64,
) -> Path:
    """A config with ``targets`` targets t00, t01, … on recording actuators."""
    lines = [
        "# written by examples/replicas/replicas.py",
        "[daemon]",
        'log_format = "json"',
        'shutdown_grace = "5s"',
        "watch_config = false",
        "",
        "[redis]",
        f'url = "redis://127.0.0.1:{redis_port}/0"',
        'socket_timeout = "500ms"',
        "",
        "[audit]",
        'sink = "redis"',
        'spool = "spool/{instance}.jsonl"',
        "",
        "[state]",
        'store = "redis"',
        "",
        "[cluster]",
        'name = "demo"',
        f'lease_ttl = "{lease_ttl}"',
        f'renew_every = "{renew_every}"',
        f"shards = {shards}",
        "",
    ]
    # three load shapes, out of phase, so targets scale up and down all the time
    for phase in range(3):
        values = [1, 4, 2, 6, 3, 7, 2, 5]
        values = values[phase:] + values[:phase]
        lines += [
            "[[sources]]",
            f'name = "load-{phase}"',
            'kind = "replay"',
            f"values = {values}",
            'step = "3s"',
            "",
        ]
    for i in range(targets):
        name = f"t{i:02d}"
        lines += [
            "[[actuators]]",
            f'name = "{name}"',
            'kind = "recording"',
            "initial = 1",
            f'persist_to = "capacity/{name}"',
            'log_to = "writes.jsonl"',
            "",
            "[[targets]]",
            f'name = "{name}"',
            f'actuator = "{name}"',
            f'interval = "{interval}"',
            "min = 1",
            "max = 8",
            f'cooldown = {{ up = "{cooldown}", down = "{cooldown}" }}',
            f'metrics = {{ load = "load-{i % 3}" }}',
            'behavior.scale_down = { stabilization_window = "0s" }',
            "[[targets.track]]",
            'metric = "load"',
            'type = "total"',
            "target = 1",
            "",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Replicas:
    """``redis-server`` and ``count`` replicas of ``scalerd run``, each a real process."""

    def __init__(self, folder: Path, *, count: int = 3, **config: object) -> None:
        self.folder = folder
        self.count = count
        self.redis_port = free_port()
        self.ports = [free_port() for _ in range(count)]
        self.config_path = write_config(folder, redis_port=self.redis_port, **config)  # type: ignore[arg-type]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._redis: subprocess.Popen[bytes] | None = None
        (folder / "logs").mkdir(exist_ok=True)

    def instance(self, index: int) -> str:
        return f"replica-{index + 1}"

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    # --- redis ----------------------------------------------------------------------------

    def start_redis(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed")
        self._redis = subprocess.Popen(
            [
                executable,
                *("--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
                *("--dir", str(self.folder), "--logfile", "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        self._wait_for_redis()

    def stop_redis(self) -> None:
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait(timeout=10)
            self._redis = None

    def _wait_for_redis(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    # --- replicas -------------------------------------------------------------------------

    def start(self, index: int) -> None:
        log = (self.folder / "logs" / f"{self.instance(index)}.log").open("ab")
        self.processes[index] = subprocess.Popen(
            [
                sys.executable,
                *("-m", "scalerd", "run", "--config", str(self.config_path)),
                *("--listen", f"127.0.0.1:{self.ports[index]}"),
                *("--instance", self.instance(index)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        log.close()

    def start_all(self) -> None:
        self.start_redis()
        for index in range(self.count):
            self.start(index)

    def signal(self, index: int, sig: signal.Signals) -> None:
        self.processes[index].send_signal(sig)

    def kill(self, index: int) -> None:
        """SIGKILL and reap: no chance to release anything."""
        process = self.processes.pop(index)
        process.kill()
        process.wait(timeout=10)

    def terminate(self, index: int, timeout: float = 20.0) -> int:
        """SIGTERM (graceful: leases released) and wait; the exit code."""
        process = self.processes.pop(index)
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def stop_all(self) -> None:
        for index in list(self.processes):
            self.terminate(index)
        self.stop_redis()

    def __enter__(self) -> Replicas:
        self.start_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--dir", type=Path, default=Path("replicas-demo"))
    args = parser.parse_args()
    replicas = Replicas(args.dir.resolve(), count=args.replicas, targets=args.targets)
    with replicas:
        print(f"redis-server on 127.0.0.1:{replicas.redis_port}; config {replicas.config_path}")
        for index in range(replicas.count):
            pid = replicas.processes[index].pid
            print(f"{replicas.instance(index)}: {replicas.url(index)} (pid {pid})")
        print("Ctrl-C stops them all")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
