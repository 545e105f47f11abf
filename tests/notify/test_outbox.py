"""The outbox keeps a notice across a restart and never takes one key twice."""

from __future__ import annotations

from pathlib import Path

from scalerd.notify.outbox import Outbox


def test_a_key_is_taken_once_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    row = ("hook:web:scaled:r1", "hook", b"{}", {"Content-Type": "application/json"}, 0.0, 99.0)
    assert outbox.add([row]) == 1
    assert outbox.add([row]) == 0  # the dedupe key
    outbox.close()
    reopened = Outbox(path)
    (pending,) = reopened.due(now=1.0)
    assert (pending.key, pending.headers) == (
        "hook:web:scaled:r1",
        {"Content-Type": "application/json"},
    )
    reopened.mark(pending.key, "delivered", 1)
    assert reopened.due(now=1.0) == [] and reopened.counts() == {("hook", "delivered"): 1}
    reopened.close()
