"""What the multi-process cluster tests read back and check: the audit stream, the
recording actuators' write log, the leases in Redis."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis


def audit(url: str, stream: str = "scalerd:audit") -> list[dict[str, Any]]:
    with redis.Redis.from_url(url) as client:
        return [json.loads(fields[b"record"]) for _, fields in client.xrange(stream)]


def writes(folder: Path) -> list[dict[str, Any]]:
    path = folder / "writes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def holders(url: str, shards: int, cluster: str = "demo") -> list[str | None]:
    """Who holds each shard's lease now (None: free)."""
    with redis.Redis.from_url(url, socket_timeout=1) as client:
        values = client.mget([f"scalerd:cluster:{cluster}:lease:{s}" for s in range(shards)])
    return [None if v is None else v.decode().partition(":")[2] for v in values]


def members(url: str, cluster: str = "demo") -> set[str]:
    with redis.Redis.from_url(url, socket_timeout=1) as client:
        now_s, now_us = client.time()
        now_ms = now_s * 1000 + now_us // 1000
        live = client.zrangebyscore(f"scalerd:cluster:{cluster}:members", now_ms, "+inf")
    return {m.decode() for m in live}


def ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


def id_time(record_id: str) -> float:
    return int(record_id.split("-")[0], 16) / 1000


def lease_lost(record: dict[str, Any]) -> bool:
    return record["action"] == "skipped" and (record.get("error") or "").startswith("LeaseLost")


def unsaved(record: dict[str, Any]) -> bool:
    """A record whose evaluation could not save the target's state (lease lost, Redis
    away): the next owner's chain continues from the last record that was saved, so such
    records form a side branch that says why."""
    return (
        lease_lost(record)
        or record.get("not_scaled_reason") in ("StateUnavailable", "LeaseLost")
        or any(note.startswith("state not saved") for note in record.get("notes", ()))
    )


def evaluations(records: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """Per target, when it was really evaluated (a replica without its lease does not)."""
    times: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if not lease_lost(record):
            times[record["target"]].append(ts(record))
    return {target: sorted(values) for target, values in times.items()}


def first_after(times: list[float], moment: float) -> float | None:
    return next((t for t in times if t >= moment), None)


@dataclass
class WriteReport:
    accepted: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


def check_writes(log: list[dict[str, Any]], cooldown_s: float, slack_s: float) -> WriteReport:
    """Every accepted write, per target, in the order the resource took them: tokens never
    go back, a token belongs to one replica, nothing is written twice, cooldowns hold."""
    report = WriteReport()
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for write in log:
        if write["refused"]:
            report.refused += 1
        else:
            report.accepted += 1
            by_target[write["actuator"]].append(write)
    holder_of: dict[tuple[str, int], str] = {}
    for target, accepted in by_target.items():
        capacity, highest = 1, 0  # initial = 1
        previous: tuple[float, str, dict[str, Any]] | None = None
        last_desired: tuple[int, int] | None = None
        for write in accepted:
            at = datetime.fromisoformat(write["decided_at"]).timestamp()
            token = write["fence"]
            if token < highest:
                report.problems.append(f"{target}: write under token {token} after {highest}")
            highest = max(highest, token)
            owner = holder_of.setdefault((target, token), write["instance"])
            if owner != write["instance"]:
                report.problems.append(
                    f"{target}: token {token} used by {owner} and {write['instance']}"
                )
            if last_desired == (token, write["desired"]):
                report.problems.append(f"{target}: the same write twice under token {token}")
            direction = "up" if write["desired"] > capacity else "down"
            if previous is not None:
                since = at - previous[0]
                held = previous[1] == "up" or direction == "down"  # AWS: out holds both
                if held and since < cooldown_s - slack_s:
                    report.problems.append(
                        f"{target}: {direction} {since:.2f}s after a {previous[1]} "
                        f"(cooldown {cooldown_s:g}s): {previous[2]} then {write}"
                    )
            previous, capacity = (at, direction, write), write["desired"]
            last_desired = (token, write["desired"])
    return report


def check_chains(
    records: list[dict[str, Any]], kills: list[float], within_s: float
) -> tuple[list[str], dict[str, int]]:
    """Each target's records form a chain: every ``prev`` is a record in the stream (or
    the record lost with a process killed at that moment), and where two records follow
    one, or two start a chain, all but one are records that could not save the state (a
    late ``LeaseLost``, or written while Redis was away: a replica that takes a shard as
    Redis comes back, and cannot yet read the target's state, knows no ``prev``)."""
    problems: list[str] = []
    counts = {
        "dangling_explained": 0,
        "forks_explained": 0,
        "starts_explained": 0,
        "duplicates": 0,
        "redelivered": 0,
    }
    ids: dict[str, dict[str, Any]] = {}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    first: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        twin = ids.get(record["id"])
        if twin == record:  # delivered twice by the audit spool (at least once): one record
            counts["redelivered"] += 1
        elif twin is not None:
            # one evaluation audited twice: by a replica paused between writing a change
            # ahead and making it, and by the owner that settled that change meanwhile
            if any("settled at restart" in " ".join(r["notes"]) for r in (twin, record)):
                counts["duplicates"] += 1
            else:
                problems.append(
                    f"{record['target']}: two records with id {record['id']}: {twin} {record}"
                )
        ids[record["id"]] = record
    for record in ids.values():
        prev = record["prev"]
        if prev is None:
            first[record["target"]].append(record)
            continue
        children[prev].append(record)
        if prev not in ids:
            lost_at = id_time(prev)
            if any(lost_at - 0.5 <= kill <= lost_at + within_s for kill in kills):
                counts["dangling_explained"] += 1
            else:
                problems.append(f"{record['target']}: {record['id']} follows a missing {prev}")
    for target, starts in first.items():
        if sum(1 for r in starts if not unsaved(r)) > 1:
            problems.append(f"{target}: {len(starts)} records start a chain")
        else:
            counts["starts_explained"] += len(starts) - 1
    for prev, followers in children.items():
        if len(followers) > 1:
            if sum(1 for r in followers if not unsaved(r)) > 1:
                problems.append(
                    f"{followers[0]['target']}: {len(followers)} records follow {prev}: "
                    + ", ".join(f"{r['instance']}/{r['action']}" for r in followers)
                )
            else:
                counts["forks_explained"] += 1
    return problems, counts
