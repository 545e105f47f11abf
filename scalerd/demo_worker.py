"""A tiny worker for process-pool demos: ``python -m scalerd.demo_worker``.

Without ``--queue`` it does real CPU work (SHA-256 over a buffer) for ``duty`` of every
``period`` and sleeps the rest, so N workers show in ``top`` as about N * duty of a core.

With ``--queue KEY`` it is a queue consumer, the worker KEDA's Redis list scaler expects:
it takes one item at a time from the Redis list ``KEY`` (``BLPOP``), spends ``--item-time``
on it (``duty`` of it hashing), and takes the next. The Redis URL is ``--redis-url``, else
the environment variable ``SCALERD_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.

It prints nothing. On SIGTERM or SIGINT it finishes the slice or the item in hand and
exits 0, as a well-behaved worker should when the pool scales in: an item taken from the
list is always finished, never lost.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["main"]

_BLOCK = bytes(64 * 1024)
# BLPOP waits at most this long, so a stop request is seen within it
_POLL_SECONDS = 1


class _StopFlag:
    """Set by SIGTERM or SIGINT; checked between slices so no slice is cut short."""

    def __init__(self) -> None:
        self.requested = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request)

    def _request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    stop = _StopFlag()
    if args.queue is not None:
        return _consume(args, stop)
    busy = args.period * args.duty
    while not stop.requested:
        _hash_for(busy)
        # a signal interrupts the sleep, runs the handler, then the sleep resumes
        # (PEP 475): stopping takes at most one period
        time.sleep(args.period - busy)
    return 0


def _consume(args: argparse.Namespace, stop: _StopFlag) -> int:
    import redis

    url = args.redis_url or os.environ.get("SCALERD_REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, password=os.environ.get("SCALERD_REDIS_PASSWORD"))
    busy = args.item_time * args.duty
    try:
        while not stop.requested:
            try:
                item = client.blpop([args.queue], timeout=_POLL_SECONDS)
            except redis.ConnectionError:
                time.sleep(_POLL_SECONDS)  # Redis away: wait for it, as a worker would
                continue
            if item is None:
                continue
            _hash_for(busy)
            time.sleep(args.item_time - busy)
    finally:
        client.close()
    return 0


def _hash_for(seconds: float) -> None:
    """Chain SHA-256 over a 64 KiB block until ``seconds`` of CPU work are done."""
    digest = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        digest = hashlib.sha256(digest + _BLOCK).digest()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scalerd.demo_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duty", type=_fraction, default=0.2, help="share of each period spent hashing (0..1]"
    )
    parser.add_argument(
        "--period", type=_positive, default=0.1, help="seconds per work+sleep cycle"
    )
    parser.add_argument("--queue", metavar="KEY", help="consume the Redis list KEY (BLPOP)")
    parser.add_argument("--redis-url", help="default: $SCALERD_REDIS_URL or the local Redis")
    parser.add_argument(
        "--item-time", type=_positive, default=0.5, help="seconds spent on each queue item"
    )
    return parser.parse_args(argv)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
