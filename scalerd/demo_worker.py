"""A tiny worker for process-pool demos: ``python -m scalerd.demo_worker``.

It does real CPU work (SHA-256 over a buffer) for ``duty`` of every ``period`` and sleeps
the rest, so N workers show in ``top`` as about N * duty of a core and the machine stays
usable. It prints nothing, and on SIGTERM or SIGINT it finishes its current slice and
exits 0, as a well-behaved worker should when the pool scales in.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["main"]

_BLOCK = bytes(64 * 1024)


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
    busy = args.period * args.duty
    while not stop.requested:
        _hash_for(busy)
        # a signal interrupts the sleep, runs the handler, then the sleep resumes
        # (PEP 475): stopping takes at most one period
        time.sleep(args.period - busy)
    return 0


def _hash_for(seconds: float) -> None:
    """Chain SHA-256 over a 64 KiB block until ``seconds`` of CPU work are done."""
    digest = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        digest = hashlib.sha256(digest + _BLOCK).digest()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scalerd.demo_worker", description=__doc__)
    parser.add_argument(
        "--duty", type=_fraction, default=0.2, help="share of each period spent hashing (0..1]"
    )
    parser.add_argument(
        "--period", type=_positive, default=0.1, help="seconds per work+sleep cycle"
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
