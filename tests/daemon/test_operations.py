"""A long-running operation in flight is stored state: its codec, and what reads it back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scalerd.daemon.state import InFlight, StoredTarget, decode_stored, encode_stored

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)

IN_FLIGHT = InFlight(
    operation="6f1c0a52-0d1e-4c55-9a8e-0c7b2b1f3e11",
    resume="eyJ2ZXJzaW9uIjoxLCJkYXRhIjp7fX0=",
    started_at=T0,
    before=1,
    after=2,
    cooldown_s=900.0,
    tier="GP_Gen5_4",
    notes=("GP_Gen5_2 -> GP_Gen5_4",),
)

# a target exactly as scalerd stored it before operations were part of the state
EARLIER_VERSION = {
    "state": {
        "samples": {},
        "recommendations": [],
        "events": [],
        "scale_out_cooldown_until": None,
        "scale_in_cooldown_until": None,
        "scale_out_base": None,
        "consecutive_failures": 0,
        "last_active_at": None,
        "controls": {"pause": None, "pause_until": None, "override": None, "override_until": None},
    },
    "pending": None,
    "last_record_id": "01a202b2c57b-7373528799d15ea0",
}


def test_an_operation_in_flight_round_trips_exactly_through_json_text() -> None:
    kept = StoredTarget(operation=IN_FLIGHT, last_record_id="01a202b2c57b-7373528799d15ea0")
    assert decode_stored(json.loads(json.dumps(encode_stored(kept)))) == kept


def test_a_document_of_the_earlier_version_reads_as_no_operation_in_flight() -> None:
    decoded = decode_stored(EARLIER_VERSION)
    assert decoded.operation is None
    assert decoded.last_record_id == "01a202b2c57b-7373528799d15ea0"
    # and what this version writes reads back in the earlier one: the same keys, one more
    assert set(encode_stored(decoded)) == set(EARLIER_VERSION) | {"operation"}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"operation": "x"}, id="incomplete"),
        pytest.param(
            {**encode_stored(StoredTarget(operation=IN_FLIGHT))["operation"], "resume": 7},
            id="token-not-text",
        ),
        pytest.param("x", id="not-an-object"),
    ],
)
def test_a_damaged_operation_is_refused(operation: object) -> None:
    with pytest.raises(ValueError, match="not a stored target"):
        decode_stored({**EARLIER_VERSION, "operation": operation})
